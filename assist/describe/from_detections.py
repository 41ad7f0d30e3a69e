"""Descriptions from detections: one sentence a person would say, no captioner needed.

Used when no captioner weights are available (offline) or the captioner
fails. The sentence is built by general rules over the 80 COCO classes, never
by phrases matched to particular photos (the agent describes views it has
never seen):

1. **Keep what is sure.** Detections under ``MIN_CONFIDENCE`` are ignored;
   boxes of one class that overlap almost entirely are one object (the detector
   sometimes boxes one person twice). A class is counted only by its
   confident members (``COUNT_CONFIDENCE``), so a dog at 0.59 and a cat the
   detector calls "dog" at 0.40 make "a dog", not "two dogs".
2. **Keep what matters.** Each class group gets a salience: the square root of
   its largest box area (big is near), times a centrality factor (what is in
   front of the user counts more) and a class weight (people, vehicles and
   animals over cutlery and books), plus a little for each further member.
   Groups far below the most salient one are left out; at most
   ``MAX_GROUPS``.
3. **Name the place** when the objects imply it: each class carries evidence
   weights for a few kinds of place (a refrigerator is strong evidence of a
   kitchen, a sink weak evidence of a kitchen or a bathroom, a traffic light
   strong evidence of a street). The place with the most evidence is named
   when that evidence reaches ``PLACE_MIN_EVIDENCE`` and clearly beats the
   runner-up; otherwise no place word is said.
4. **Say it as a sentence**: "A kitchen with a refrigerator and an oven.",
   "A street with two cars and a bus on the right.", "A person on a
   motorcycle.", "A group of people." At most ``MAX_WORDS`` words; each noun
   once; counts agree with their nouns; the side is said only for a large
   person, vehicle or animal that is clearly off to one side.

Languages other than English keep the list form built from the hazard phrase
tables (counts and sides), which the phrase tables already translate.

A description can leave out what was warned about moments ago
(``recently_warned``): the user has just heard "Bus ahead", so the
description names the place and the rest, not the bus again. And it can be
made from the detector runs of the last moment (:func:`merge_recent`), not
one run alone: the detector flickers on real footage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assist.core.detection import Detection
from assist.describe.caption_text import DEFAULT_AHEAD_WIDTH, english_name
from assist.hazards.geometry import direction_of
from assist.speech import phrases

# Below this confidence a box is more often wrong than right on real photos
# (the detector's own threshold is lower, for hazards, where a miss costs more).
MIN_CONFIDENCE = 0.3
# Only boxes this sure are counted; a group kept for a less sure box is "a X".
COUNT_CONFIDENCE = 0.5
# Same-class boxes overlapping at least this much (intersection over union) are
# one object boxed twice; the detector's own suppression lets pairs up to 0.7
# through. A box inside another (a child in front of an adult) is not merged.
DUPLICATE_IOU = 0.6
MAX_GROUPS = 3
MAX_WORDS = 15
# A group is kept when its salience is at least this share of the most salient one's.
KEEP_SHARE = 0.3
# Boxes smaller than this share of the frame are background detail.
MIN_AREA = 0.002
PLACE_MIN_EVIDENCE = 2.0
# The best place must beat the runner-up by this factor, or no place is named.
PLACE_MARGIN = 1.3

# Class weights for salience: what a listener wants to hear about first.
_BIG_MOVERS = {"person", "bicycle", "car", "motorcycle", "bus", "train", "truck", "boat", "airplane"}
_ANIMALS = {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
_SMALL_THINGS = {"fork", "knife", "spoon", "cup", "bottle", "wine glass", "book", "clock", "vase", "remote",
                 "cell phone", "mouse", "toothbrush", "scissors", "tie", "handbag", "backpack", "sports ball",
                 "potted plant", "traffic light", "bowl", "chair"}

# Place evidence: class -> {place: weight}. Weight 2 or more: the object alone
# names the place (nobody keeps a refrigerator outside a kitchen, a bed outside
# a bedroom); below 1: supporting evidence only. Counted once per class, with
# a small bonus for more members (three cars are more street than one).
PLACE_EVIDENCE: dict[str, dict[str, float]] = {
    "refrigerator": {"kitchen": 2.5}, "oven": {"kitchen": 2.5}, "microwave": {"kitchen": 1.5},
    "toaster": {"kitchen": 1.5}, "sink": {"kitchen": 1.0, "bathroom": 1.2},
    "toilet": {"bathroom": 2.5}, "toothbrush": {"bathroom": 1.0}, "hair drier": {"bathroom": 1.0},
    "bed": {"bedroom": 2.5}, "teddy bear": {"bedroom": 0.3},
    "couch": {"living room": 2.2}, "tv": {"living room": 1.0, "desk": 0.8}, "remote": {"living room": 1.0},
    "laptop": {"desk": 1.0}, "keyboard": {"desk": 1.5}, "mouse": {"desk": 1.5},
    "dining table": {"table": 1.5, "kitchen": 0.3},
    "traffic light": {"street": 2.0}, "stop sign": {"street": 2.0}, "parking meter": {"street": 2.0},
    "fire hydrant": {"street": 2.0}, "car": {"street": 1.2}, "bus": {"street": 1.5}, "truck": {"street": 1.2},
    "motorcycle": {"street": 0.6}, "bicycle": {"street": 0.4},
}
# Food and tableware on a table make it a meal table; chairs and plants make rooms a little likelier.
for _cls in ("pizza", "sandwich", "cake", "donut", "hot dog", "broccoli", "carrot", "banana", "apple", "orange",
             "fork", "knife", "spoon", "wine glass", "cup", "bowl", "bottle"):
    PLACE_EVIDENCE.setdefault(_cls, {}).update({"table": 0.4})
for _cls in ("chair", "potted plant", "vase", "book", "clock"):
    PLACE_EVIDENCE.setdefault(_cls, {}).update({"living room": 0.3})
PLACE_EVIDENCE["book"]["desk"] = 0.3
PLACE_EVIDENCE["chair"]["desk"] = 0.3
PLACE_EVIDENCE["cup"]["desk"] = 0.2

# Spoken name of each place, with its article.
PLACE_NAMES: dict[str, str] = {
    "kitchen": "a kitchen", "bathroom": "a bathroom", "bedroom": "a bedroom", "living room": "a living room",
    "desk": "a desk", "table": "a table", "street": "a street",
}
# Classes that are the place itself once it is named ("a table with a table" never).
_PLACE_ITSELF: dict[str, str] = {"table": "dining table"}

# Person + object relations read from the boxes: someone *on* a thing they
# ride or stand on, someone *with* a thing they hold.
_RIDDEN_TALL = {"bicycle", "motorcycle", "horse", "elephant"}
_RIDDEN_FLAT = {"skateboard", "skis", "snowboard", "surfboard"}
_HELD = {"tennis racket", "baseball bat", "baseball glove", "umbrella", "frisbee", "kite", "cell phone",
         "surfboard", "skateboard", "skis", "snowboard", "handbag", "backpack", "suitcase", "sports ball"}

# Sides are said for these (a listener needs to know where a bus is, not a cup).
_SIDE_WORTHY = _BIG_MOVERS | _ANIMALS
# Said only when the group's boxes fill at least this share of the frame (near enough to matter).
_SIDE_MIN_AREA = 0.03

_NOTHING = {
    "en": "Nothing recognisable in view.",
    "fr": "Rien de reconnaissable en vue.",
    "de": "Nichts Erkennbares in Sicht.",
    "es": "Nada reconocible a la vista.",
}
_NOTHING_ELSE = {
    "en": "Nothing else recognisable in view.",
    "fr": "Rien d'autre de reconnaissable en vue.",
    "de": "Sonst nichts Erkennbares in Sicht.",
    "es": "Nada más reconocible a la vista.",
}
_EN_DIRECTIONS = {"ahead": "ahead", "left": "on the left", "right": "on the right"}
_EN_NUMBERS = {2: "two", 3: "three", 4: "four"}
# Names that take no "a" in the singular (mass nouns, pairs): "some broccoli", "skis".
_NO_ARTICLE = {"broccoli": "some broccoli", "skis": "skis", "scissors": "scissors"}


@dataclass(frozen=True)
class WarnedObject:
    """An object the user was just warned about: its class, box (0..1) and when (seconds, same clock as ``now``)."""

    label: str
    bbox: tuple[float, float, float, float]
    t: float


@dataclass
class _Group:
    """All kept detections of one class, with its salience and counted size."""

    label: str
    members: list[Detection]
    salience: float
    count: int
    direction: str | None  # one side for every member, or None


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _dedupe(dets: Iterable[Detection]) -> list[Detection]:
    """Confident detections, most confident first, without same-class duplicates."""
    out: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.confidence):
        if d.confidence < MIN_CONFIDENCE or d.area <= 0:
            continue
        if any(o.label == d.label and _iou(o.bbox, d.bbox) >= DUPLICATE_IOU for o in out):
            continue
        out.append(d)
    return out


def _class_weight(label: str) -> float:
    if label in _BIG_MOVERS or label in _ANIMALS:
        return 1.3
    if label in _SMALL_THINGS:
        return 0.6
    return 1.0


def _salience(d: Detection) -> float:
    """sqrt(area) (near is big) x centrality (0.6 at an edge .. 1 in the middle) x class weight."""
    centrality = 1.0 - 0.8 * abs(d.center_x - 0.5)
    return math.sqrt(d.area) * centrality * _class_weight(d.label)


def _groups(dets: Sequence[Detection], ahead_width: float) -> list[_Group]:
    """Class groups ordered by salience, the minor ones dropped."""
    by_label: dict[str, list[Detection]] = {}
    for d in dets:
        by_label.setdefault(d.label, []).append(d)
    groups = []
    for label, members in by_label.items():
        sal = sorted((_salience(d) for d in members), reverse=True)
        count = max(1, sum(1 for d in members if d.confidence >= COUNT_CONFIDENCE))
        sides = {direction_of(d.center_x, ahead_width) for d in members}
        groups.append(_Group(label, members, sal[0] + 0.15 * sum(sal[1:]), count,
                             sides.pop() if len(sides) == 1 else None))
    groups.sort(key=lambda g: (-g.salience, g.label))
    return groups


def _keep(groups: Sequence[_Group], max_groups: int, also: _Group | None = None) -> list[_Group]:
    """The most salient group, those near it in salience (and not tiny), and ``also``; at most ``max_groups``."""
    if not groups:
        return []
    top = groups[0].salience
    kept = [g for g in groups
            if g is groups[0] or g is also
            or (g.salience >= KEEP_SHARE * top and max(d.area for d in g.members) >= MIN_AREA)]
    if also is not None and also in kept[max(1, max_groups):]:
        kept.remove(also)
        kept.insert(1, also)
    return kept[:max(1, max_groups)]


def infer_place(dets: Sequence[Detection]) -> str | None:
    """The kind of place the objects imply ("kitchen", "street", ...) or None when the evidence is weak.

    Each class counts once (with +25 % per further member, up to +50 %), so
    one strong object names the place and weak ones must add up; the winner
    must beat the runner-up by ``PLACE_MARGIN``.
    """
    counts: dict[str, int] = {}
    for d in dets:
        counts[d.label] = counts.get(d.label, 0) + 1
    scores: dict[str, float] = {}
    for label, n in counts.items():
        for place, w in PLACE_EVIDENCE.get(label, {}).items():
            scores[place] = scores.get(place, 0.0) + w * (1.0 + min(0.5, 0.25 * (n - 1)))
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    best, score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if score < PLACE_MIN_EVIDENCE or score < PLACE_MARGIN * runner_up:
        return None
    return best


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def count_phrase(label: str, count: int) -> str:
    """"a dog", "an oven", "two people", "a group of people", "many cars": count and noun agree."""
    if count <= 1:
        return _NO_ARTICLE.get(label) or _article(english_name(label, 1))
    plural = english_name(label, count)
    if count in _EN_NUMBERS:
        return f"{_EN_NUMBERS[count]} {plural}"
    return f"a group of {plural}" if label == "person" else f"many {plural}"


def _rides(person: Detection, thing: Detection) -> bool:
    """The person's box stands on the thing: feet inside its box, horizontally over it."""
    px1, py1, px2, py2 = person.bbox
    tx1, ty1, tx2, ty2 = thing.bbox
    overlap = max(0.0, min(px2, tx2) - max(px1, tx1))
    if overlap < 0.3 * (px2 - px1) or py1 >= ty1:
        return False
    if thing.label in _RIDDEN_TALL:
        # Seated above it: feet clearly above the thing's bottom (someone
        # standing beside a bike has their feet on the same ground line).
        return ty1 <= py2 <= ty2 - 0.1 * (ty2 - ty1)
    margin = 0.1 * (py2 - py1)
    return ty1 - margin <= py2 <= ty2 + margin


def _holds(person: Detection, thing: Detection) -> bool:
    """The thing's centre lies within the person's box widened by a quarter of its width."""
    px1, py1, px2, py2 = person.bbox
    pad = 0.25 * (px2 - px1)
    cx, cy = thing.center_x, (thing.bbox[1] + thing.bbox[3]) / 2.0
    return px1 - pad <= cx <= px2 + pad and py1 <= cy <= py2 + 0.1 * (py2 - py1)


def _relation(groups: Sequence[_Group]) -> tuple[str, _Group] | None:
    """("on" | "with", the thing's group) when one person rides or holds a salient thing."""
    people = [g for g in groups if g.label == "person"]
    if not people or people[0].count != 1:
        return None
    person = max(people[0].members, key=lambda d: d.area)
    for g in groups:
        if g.label == "person" or g.count != 1:
            continue
        thing = max(g.members, key=lambda d: d.area)
        if (g.label in _RIDDEN_TALL or g.label in _RIDDEN_FLAT) and _rides(person, thing):
            return "on", g
        if g.label in _HELD and _holds(person, thing):
            return "with", g
    return None


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _with_side(g: _Group) -> str:
    """The group's phrase, with its side when that helps a listener (a big mover clearly off to one side)."""
    text = count_phrase(g.label, g.count)
    if (g.label in _SIDE_WORTHY and g.direction in ("left", "right")
            and sum(d.area for d in g.members) >= _SIDE_MIN_AREA):
        text += " " + _EN_DIRECTIONS[g.direction]
    return text


def _sentence(place: str | None, phrases_: list[str]) -> str:
    text = _join(phrases_)
    if place is not None:
        text = PLACE_NAMES[place] + (" with " + text if text else "")
    return text[:1].upper() + text[1:] + "."


def _compose_en(groups: list[_Group], place: str | None, max_groups: int) -> str:
    """English sentence from the salient groups, trimmed to MAX_WORDS by dropping the least salient.

    A thing the main person rides or holds is kept however small it is: it
    says what the person is doing ("a person with a tennis racket")."""
    if place is not None:
        itself = _PLACE_ITSELF.get(place)
        groups = [g for g in groups if g.label != itself]
    rel = _relation([g for g in groups if max(d.area for d in g.members) >= MIN_AREA])
    groups = _keep(groups, max_groups, rel[1] if rel is not None else None)
    parts: list[str] = []
    for g in groups:
        if rel is not None and g is rel[1]:
            continue
        if rel is not None and g.label == "person":
            parts.append(f"{count_phrase('person', 1)} {rel[0]} {count_phrase(rel[1].label, 1)}")
        else:
            parts.append(_with_side(g))
    while len(parts) > 1 and len(_sentence(place, parts).split()) > MAX_WORDS:
        parts.pop()
    return _sentence(place, parts)


def _same_object(label: str, bbox: Sequence[float], d: Detection) -> bool:
    """Same class and the boxes overlap (IoU >= 0.2) or their centres are within 0.15 of the frame."""
    if label != d.label:
        return False
    cx, cy = (bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0
    dcy = (d.bbox[1] + d.bbox[3]) / 2.0
    return _iou(bbox, d.bbox) >= 0.2 or math.hypot(cx - d.center_x, cy - dcy) <= 0.15


def merge_recent(runs: Sequence[Sequence[Detection]]) -> list[Detection]:
    """One detection list from the detector runs of the last moment (oldest first).

    The detector flickers on real footage (a bus seen in one run, missed in
    the next two): a description made from one run alone says "Nothing
    recognisable" right after "Bus on the left". The newest run is kept whole;
    an older detection is added when no newer one is the same object
    (:func:`_same_object`), so an object seen in several runs counts once.
    """
    out: list[Detection] = []
    for run in reversed(runs):
        fresh = [d for d in run if not any(_same_object(o.label, o.bbox, d) for o in out)]
        out.extend(fresh)
    return out


def remember_warned(warned: Sequence[WarnedObject], announcements: Sequence[Any],
                    boxes: dict[int, tuple[float, float, float, float]], window_s: float) -> list[WarnedObject]:
    """``warned`` (the last ``window_s`` of it) plus what ``announcements`` (hazard
    decisions: label, track_id(s), bbox, t_capture) warned about; a group warning
    ("Four people on the left") covers every track it counted, at its box in ``boxes``."""
    t_now = max(a.t_capture for a in announcements)
    out = [w for w in warned if w.t >= t_now - window_s]
    for a in announcements:
        for tid in getattr(a, "track_ids", ()) or (a.track_id,):
            out.append(WarnedObject(a.label, boxes.get(tid, tuple(a.bbox)), a.t_capture))
    return out


def drop_recently_warned(dets: Sequence[Detection], warned: Iterable[WarnedObject], *, now: float,
                         window_s: float = 5.0, ahead_width: float = DEFAULT_AHEAD_WIDTH) -> list[Detection]:
    """The detections that are not objects the user was warned about within ``window_s`` before ``now``.

    A detection is the warned object when the class is the same and either the
    boxes match (:func:`_same_object`: the object moved a little) or it is on
    the same side (left / ahead / right) the warning named: a user walking on
    shifts every box, and "Bus on the left" followed by "a bus on the left"
    tells them nothing new. A bus on the other side is news and is kept.
    """
    recent = [w for w in warned if now - window_s <= w.t <= now + 1e-6]
    if not recent:
        return list(dets)

    def warned_about(d: Detection) -> bool:
        side = direction_of(d.center_x, ahead_width)
        return any(_same_object(w.label, w.bbox, d)
                   or (w.label == d.label and direction_of((w.bbox[0] + w.bbox[2]) / 2.0, ahead_width) == side)
                   for w in recent)

    return [d for d in dets if not warned_about(d)]


def describe_detections(detections: Iterable[Detection] | None, language: str = "en", *,
                        ahead_width: float = DEFAULT_AHEAD_WIDTH, max_groups: int = MAX_GROUPS,
                        recently_warned: Sequence[WarnedObject] = (), now: float = 0.0,
                        warned_window_s: float = 5.0) -> str:
    """One spoken sentence about what the detector sees (see the module doc for the rules).

    ``recently_warned`` objects (warned within ``warned_window_s`` before
    ``now``) are not named again; the place they imply still is. When
    everything in view was just warned about and no place can be named:
    "Nothing else recognisable in view." (the warnings said it all, and the
    user learns that nothing else is there). Nothing detected at all:
    "Nothing recognisable in view." (in the language).
    """
    lang = language if language in _NOTHING else "en"
    dets = _dedupe(detections or [])
    if not dets:
        return _NOTHING[lang]
    fresh = drop_recently_warned(dets, recently_warned, now=now, window_s=warned_window_s, ahead_width=ahead_width)
    if lang != "en":
        return _describe_list(fresh, lang, ahead_width, max_groups) if fresh else _NOTHING_ELSE[lang]
    place = infer_place(dets)
    groups = _groups(fresh, ahead_width)
    if not groups and place is None:
        return _NOTHING_ELSE[lang]
    return _compose_en(groups, place, max_groups)


def _describe_list(dets: Sequence[Detection], lang: str, ahead_width: float, max_groups: int) -> str:
    """Other languages: "[count] class side" groups from the hazard phrase tables, most salient first."""
    groups: dict[tuple[str, str], list[Detection]] = {}
    for d in dets:
        groups.setdefault((d.label, direction_of(d.center_x, ahead_width)), []).append(d)
    order = sorted(groups.items(), key=lambda kv: (-max(_salience(d) for d in kv[1]), kv[0]))
    parts: list[str] = []
    for (label, direction), members in order[:max(1, max_groups)]:
        n = max(1, sum(1 for d in members if d.confidence >= COUNT_CONFIDENCE))
        part = phrases.hazard_phrase(label, n, direction, "far", False, lang)
        keep_capital = lang == "de" and n == 1  # German nouns keep the capital: "Bus rechts", "zwei Personen"
        parts.append(part if keep_capital or not parts else part[:1].lower() + part[1:])
    text = ", ".join(parts)
    return text[:1].upper() + text[1:] + "."
