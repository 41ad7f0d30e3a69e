"""Hazard announcement policy: which tracked objects to warn about, when, and how urgently.

Per track, each detector run updates the object's record in the world model
(``assist.hazards.world``): direction (the box centre against a central
"ahead" band ``hazards.ahead_width`` wide), clock position, distance in metres
from the box and a per-class size prior (``assist.hazards.geometry``), the
proximity band from that distance (``hazards.near_m``, ``hazards.very_near_m``,
with 15 % hysteresis) and "approaching" from the time to contact (the fitted
change of distance over the last ~1.2 s; box sides cut by the frame edge are
not measured, so an object sliding into view is not approaching). A dog
therefore reads near at the size a bus reads far.

Relevance per tier: high (vehicles) when near, or approaching at any
distance (it comes, or the user walks to it); medium (people, animals) when
near or approaching; low (obstacles) when very near. A vehicle standing far
away is not news even straight ahead in the walking path: it becomes news
when the distance starts to close. ``verbose`` widens each: high also when
far ahead, medium also ahead in the walking path (a 1.5 m corridor straight
ahead) at any distance, low also when near.

A measured state (proximity band, approaching) only becomes the track's state
once the detections backing it add up to ``hazards.confirm_evidence`` in confidence
within ``hazards.confirm_window_s`` (assist/hazards/confirm.py), so one
noisy frame never speaks.

Announcements rank the confirmed state: 0 present (far or near), 1
approaching, 2 very near. A track is announced when it first becomes relevant
for its tier, and again only when its rank rises above the highest rank
already announced (-> approaching -> very near); nothing is repeated while
nothing gets worse, and a track that backs off and comes back does not repeat
either; nor does an object re-acquired after its track ended (a look away
and back, a cut): it inherits what the user was told about the same class
in the same direction (``assist.hazards.world``, ``TOLD_MEMORY_S``) as its
announced rank, so only a worse state speaks. far -> near alone is not news worth a second phrase: an object that
comes nearer by itself or by the user walking to it shows as approaching.

Per-class cool-down: the same news (class and rank) is not spoken twice within
``class_cooldown_s``: after "Person ahead, very near", a second person turning
very near a second later stays silent (its state is recorded, as told in
the world model, so it speaks only if it gets worse still), while "Car coming ahead" after "Car ahead"
is new and spoken. Tracks of one class that become relevant together are one
phrase ("Three people ahead").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from assist.config import HazardConfig
from assist.core.detection import Detection
from assist.core.priority import Priority
from assist.hazards.confirm import min_runs
from assist.hazards.geometry import (
    DEFAULT_ASPECT,
    DEFAULT_HFOV_DEG,
    DIRECTIONS,
    PROXIMITIES,
    clock_of,
    direction_of,
    tier_map,
)
from assist.hazards.tracker import IouTracker, Track
from assist.hazards.world import ObjectState, WorldModel, box_sizes, growth_rate
from assist.speech.phrases import hazard_phrase

log = logging.getLogger(__name__)

__all__ = ["Announcement", "HazardPolicy", "TrackView", "box_sizes", "clock_of", "direction_of", "growth_rate"]


@dataclass
class Announcement:
    """One hazard warning decision (what the agent says or would say)."""

    text: str
    priority: Priority
    label: str
    track_id: int
    direction: str
    proximity: str
    approaching: bool
    confidence: float
    bbox: tuple[float, float, float, float]
    frame: int
    t_capture: float
    clock: int = 12
    distance_m: float = 0.0
    ttc_s: float | None = None
    count: int = 1
    track_ids: tuple[int, ...] = ()

    def event_fields(self) -> dict:
        """Exactly the extra fields of a ``hazard`` event in the event log (../shared/DESIGN.md)."""
        return {
            "label": self.label,
            "track_id": self.track_id,
            "direction": self.direction,
            "proximity": self.proximity,
            "approaching": self.approaching,
            "confidence": round(float(self.confidence), 3),
            "bbox": [round(float(v), 4) for v in self.bbox],
            "distance_m": round(float(self.distance_m), 2),
            "clock": int(self.clock),
            "ttc_s": None if self.ttc_s is None else round(float(self.ttc_s), 2),
        }


@dataclass
class TrackView:
    """A live track as the overlay and the caption grounding see it."""

    track_id: int
    label: str
    bbox: tuple[float, float, float, float]
    confidence: float
    tier: str | None
    direction: str
    proximity: str
    approaching: bool
    ttc_s: float | None
    distance_m: float | None = None
    clock: int | None = None


@dataclass
class _Decision:
    """What the policy decided about one track (the measured state lives in the world model)."""

    announced_rank: int = -1


class HazardPolicy:
    """Tracks detections and decides hazard announcements (one instance per hazard worker).

    ``update`` is called once per detector run with that run's detections, the
    capture time of its frame (seconds, any monotonic origin: the video time in
    --every-frame mode), the frame index and the frame's aspect ratio (width /
    height, for distances). ``world`` is the world model it keeps: the
    announcer composes words from it. ``verbosity`` (``speech.verbosity``):
    ``verbose`` also warns about people and animals ahead in the walking path
    at any distance, and obstacles when near; ``quiet`` is applied by the
    announcer (it speaks urgent warnings only).
    """

    def __init__(self, cfg: HazardConfig, language: str = "en", tracker: IouTracker | None = None, *,
                 hfov_deg: float = DEFAULT_HFOV_DEG, verbosity: str = "normal") -> None:
        self.cfg = cfg
        self.language = language
        self.verbosity = verbosity
        self.tracker = tracker or IouTracker()
        self.world = WorldModel(cfg, hfov_deg, assess=self._assess)
        self._decisions: dict[int, _Decision] = {}
        self._class_last: dict[str, tuple[float, int]] = {}  # label -> (time, rank) of its last announcement
        self._views: list[TrackView] = []
        self._tiers = tier_map(cfg)

    # ----------------------------------------------------------------- queries
    def tier_of(self, label: str) -> str | None:
        """high / medium / low for a hazard class, None for other classes."""
        return self._tiers.get(label)

    @property
    def tracks(self) -> list[TrackView]:
        """The tracks seen in the latest update, with tier and measured state (for the overlay)."""
        return list(self._views)

    def reset(self) -> None:
        """Forget all tracks (after the camera was lost); class cool-downs are kept."""
        self.tracker.reset()
        self.world.reset()
        self._decisions.clear()
        self._views = []

    # ---------------------------------------------------------------- policy
    def _big_enough(self, rec: ObjectState) -> bool:
        """Boxes shorter than hazards.min_height are too far away (and too unreliable) to warn about."""
        return rec.bbox[3] - rec.bbox[1] >= self.cfg.min_height

    @staticmethod
    def _rank(proximity: str, approaching: bool) -> int:
        if proximity == "very near":
            return 2
        return 1 if approaching else 0

    def _relevant(self, tier: str | None, proximity: str, approaching: bool, direction: str,
                  in_path: bool = False) -> bool:
        verbose = self.verbosity == "verbose"
        if tier == "high":
            # Far away, only what closes in (it comes, or the user walks to it): a car parked
            # 15 m down the road in the walking path is not news until the distance shrinks.
            # Measured on the shared street footage: saying every far vehicle in the path
            # gave talk shares of 0.56-0.69 (bench/RESULTS.md, "After merging issue 17").
            # Verbose also names far vehicles ahead.
            return proximity != "far" or approaching or (verbose and direction == "ahead")
        if tier == "medium":
            return proximity != "far" or approaching or (verbose and direction == "ahead" and in_path)
        if tier == "low":
            return proximity == "very near" or (verbose and proximity == "near")
        return False

    def _urgent(self, tier: str | None, proximity: str, approaching: bool, direction: str) -> bool:
        if proximity == "very near":
            return True
        return tier == "high" and direction == "ahead" and (approaching or proximity == "near")

    def _assess(self, rec: ObjectState) -> tuple[bool, bool]:
        """(hazard, urgent) for a world record now: what a speaker checks before it speaks."""
        tier = self.tier_of(rec.label)
        if tier is None or not self._big_enough(rec):
            return False, False
        hazard = self._relevant(tier, rec.proximity, rec.approaching, rec.direction, rec.in_path)
        return hazard, hazard and self._urgent(tier, rec.proximity, rec.approaching, rec.direction)

    # ------------------------------------------------------------------ update
    def update(self, detections: list[Detection], t_capture: float, frame_index: int,
               aspect: float = DEFAULT_ASPECT) -> list[Announcement]:
        """Track one detector run's detections and return the announcements it triggers."""
        cfg = self.cfg
        tracks = self.tracker.update(list(detections), t_capture)
        records = {r.track_id: r for r in self.world.update(tracks, t_capture, aspect)}
        live = {tr.track_id for tr in tracks}
        for tid in list(self._decisions):
            if tid not in live:
                del self._decisions[tid]
        views: list[TrackView] = []
        wanting: list[tuple[Track, ObjectState, int]] = []  # (track, record, rank) that want to speak
        for tr in tracks:
            rec = records.get(tr.track_id)
            if rec is None:
                continue  # missed this run
            tier = self.tier_of(tr.label)
            views.append(TrackView(tr.track_id, tr.label, tr.bbox, tr.confidence, tier, rec.direction,
                                   rec.proximity, rec.approaching, rec.ttc_s, rec.distance_m, rec.clock))
            dec = self._decisions.get(tr.track_id)
            if dec is None:
                # A re-acquired object (see WorldModel._claim): already announced at what it was told.
                told = rec.told
                dec = self._decisions[tr.track_id] = _Decision(
                    -1 if told is None else self._rank(told.proximity, told.approaching))
            if (tier is None or tr.streak < min_runs(cfg) or not rec.confirmed or not self._big_enough(rec)
                    or not self._relevant(tier, rec.proximity, rec.approaching, rec.direction, rec.in_path)):
                continue
            rank = self._rank(rec.proximity, rec.approaching)
            if rank > dec.announced_rank:
                wanting.append((tr, rec, rank))
        self._views = views
        return self._announce(wanting, tracks, records, t_capture, frame_index)

    def _announce(self, wanting: list[tuple[Track, ObjectState, int]], tracks: list[Track],
                  records: dict[int, ObjectState], t: float, frame_index: int) -> list[Announcement]:
        cfg = self.cfg
        # member = (track, record, rank, proximity, approaching): confirmed values for
        # the tracks that want to speak, measured values for their companions.
        by_label: dict[str, list[tuple[Track, ObjectState, int, str, bool]]] = {}
        for tr, rec, rank in wanting:
            by_label.setdefault(tr.label, []).append((tr, rec, rank, rec.proximity, rec.approaching))
        out: list[Announcement] = []
        for label, members in by_label.items():
            tier = self.tier_of(label)
            first_only = all(self._decisions[m[0].track_id].announced_rank < 0 for m in members)
            # Companions: same-class tracks seen long enough whose *measured* state is
            # already relevant but not yet confirmed. Counting them now gives "Two people
            # ahead" instead of "Person ahead" followed by a cooled-down silence.
            if first_only:
                ids = {m[0].track_id for m in members}
                for tr in tracks:
                    rec = records.get(tr.track_id)
                    dec = self._decisions.get(tr.track_id)
                    if (tr.track_id in ids or rec is None or dec is None or dec.announced_rank >= 0
                            or tr.label != label or tr.streak < min_runs(cfg) or not self._big_enough(rec)):
                        continue
                    if self._relevant(tier, rec.raw_proximity, rec.raw_approaching, rec.direction, rec.in_path):
                        members.append((tr, rec, self._rank(rec.raw_proximity, rec.raw_approaching),
                                        rec.raw_proximity, rec.raw_approaching))
            members.sort(key=lambda m: (-m[2], m[1].distance_m))
            lead_tr, lead = members[0][0], members[0][1]
            prox = max((m[3] for m in members), key=PROXIMITIES.index)
            appr = any(m[4] for m in members)
            dirs = [m[1].direction for m in members]
            # Most common direction; ties go to the most severe member's.
            direction = max(DIRECTIONS, key=lambda d: (dirs.count(d), d == dirs[0]))
            urgent = any(self._urgent(tier, m[3], m[4], d) for m, d in zip(members, dirs, strict=True))
            for m in members:
                dec = self._decisions[m[0].track_id]
                dec.announced_rank = max(dec.announced_rank, m[2])
            rank = members[0][2]
            last = self._class_last.get(label)
            if last is not None and last[1] >= rank and t - last[0] < cfg.class_cooldown_s:
                log.debug("hazard %s #%d rank %d suppressed by the class cool-down", label, lead_tr.track_id, rank)
                # Covered by the news just said about its class: to the world model it was told
                # (so it is not news either when it comes back after a look away).
                for m in members:
                    self.world.mark_told(m[0].track_id, t)
                continue
            self._class_last[label] = (t, rank)
            count = len(members)
            text = hazard_phrase(label, count, direction, prox, appr, self.language)
            out.append(Announcement(
                text=text, priority=Priority.IMPORTANT if urgent else Priority.MESSAGE, label=label,
                track_id=lead_tr.track_id, direction=direction, proximity=prox, approaching=appr,
                confidence=lead_tr.confidence, bbox=lead_tr.bbox, frame=frame_index, t_capture=t,
                clock=lead.clock, distance_m=lead.distance_m, ttc_s=lead.ttc_s, count=count,
                track_ids=tuple(m[0].track_id for m in members)))
        out.sort(key=lambda a: a.priority)
        return out
