"""The world model: one record per tracked object, updated by every detector run.

Each record holds what the agent believes about one object now: class,
clock position, distance in metres (``assist.hazards.geometry``), time to
contact, whether it is in the walking path, its proximity band and
"approaching" (each confirmed by evidence over time, ``assist.hazards.confirm``, so one
noisy box never speaks), whether the policy counts it as a hazard now, and
what the user was last told about it. Announcements are decisions about
these objects; the words are composed from the record as it is when they
are about to be spoken (``assist.speech.announcer``).

Time to contact from the change of distance: for an object closing at
constant speed, d(t) = v * (T - t), so d ln d / dt = -1 / TTC. The slope of
ln d over the last ~1.2 s is fitted with Theil-Sen (median of pairwise
slopes), which ignores single outlier boxes. Because the distance is
prior * f / size, ln d = const - ln size: the fit only needs the box side the
frame does not cut, consistently over the window (a side cut anywhere in the
window is left out, so an object sliding into view is not approaching). The
class prior cancels out: a wrong prior scales the distance but not the TTC.
TTC is None when the object is not closing (or the history is too short).

What the user was told outlives the track (Soundscape's callout history): a
track that ends (the view turned away, a cut, the detector lost it) leaves
its last told state behind, keyed by class and the directions it was seen
in (a zoom or a turn moves an object across the view: where it was last
seen need not be where it comes back), for ``hazards.told_memory_s``
(default ``TOLD_MEMORY_S``) after it was last seen. A new track of the same
class in one of those directions claims one such memory (one object each;
see ``_claim``) and starts with it as its ``told``: the policy then
treats it as the object already announced, so a glance away and back is not
news unless the object's state got worse (nearer, approaching). A camera
outage (``reset``) forgets it all: what comes back is warned about afresh.

Thread safety: the hazard worker updates, the speech thread reads (when it
composes an utterance); every access takes the model's lock and readers get
copies.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from assist.config import HazardConfig
from assist.hazards.confirm import Confirmed, ConfirmRule
from assist.hazards.geometry import (
    DEFAULT_ASPECT,
    DEFAULT_HFOV_DEG,
    EDGE_MARGIN,
    clock_hour,
    direction_of,
    distance_m,
    in_walking_path,
    proximity_band,
)
from assist.hazards.tracker import Track

Box = tuple[float, float, float, float]

# Properties of the method, not of the user's taste (config holds the latter).
# Chosen on synthetic sequences with 3 % box jitter and the bus zoom clip; see
# tests/test_hazard_policy.py and tests/test_world.py.
HYSTERESIS = 0.85          # a band is left only beyond threshold / this
GROWTH_WINDOW_S = 1.2      # time span of box samples used for the distance slope
MIN_GROWTH_SPAN_S = 0.4    # need at least this much history before judging an approach
MIN_GROWTH_SAMPLES = 4
MIN_GROWTH = 0.08          # ln-distance must have shrunk this much over the window (8 %)
RELEASE_TTC_FACTOR = 1.5   # stop "approaching" only when TTC exceeds threshold * this
DISTANCE_SMOOTHING = 3     # median of this many latest distance estimates
# How long what the user was told about an object outlives its track (from when it
# was last seen): hazards.told_memory_s, this by default. A look away and back, or a
# cut in the footage, is seconds; after this long the scene may have changed, and a
# warning is worth repeating. The dense clip (bench/dense_clip.py) returns to the bus
# 5 s after leaving it.
TOLD_MEMORY_S = 10.0


@dataclass(frozen=True)
class Told:
    """What the user was last told about an object (set when the words are composed)."""

    proximity: str
    approaching: bool
    distance_m: float
    t: float


@dataclass(frozen=True)
class Recall:
    """What the user was told about an object whose track ended (see module doc)."""

    label: str
    directions: frozenset[str]  # every direction the object was seen in
    told: Told
    t_seen: float  # when the object was last seen


@dataclass
class ObjectState:
    """One tracked object as the agent believes it to be now (a copy: safe to keep)."""

    track_id: int
    label: str
    bbox: Box
    confidence: float
    t_seen: float            # capture time of the latest detector run that saw it
    visible: bool            # seen in the latest detector run
    streak: int              # consecutive runs it was seen
    distance_m: float
    clock: int               # 1..12, 12 = straight ahead
    direction: str           # left / ahead / right
    ttc_s: float | None      # time to contact, None when not closing
    in_path: bool
    proximity: str           # confirmed band (far / near / very near)
    approaching: bool        # confirmed
    raw_proximity: str = "far"
    raw_approaching: bool = False
    confirmed: bool = False  # the proximity band has been confirmed at least once
    hazard: bool = False     # the policy counts it as worth a warning now
    urgent: bool = False     # ... an urgent one
    told: Told | None = None


@dataclass
class _Entry:
    record: ObjectState | None = None
    proximity: Confirmed = field(default_factory=lambda: Confirmed(value=None))
    approaching: Confirmed = field(default_factory=lambda: Confirmed(value=False))
    present: Confirmed = field(default_factory=lambda: Confirmed(value=False))
    centers: deque[float] = field(default_factory=lambda: deque(maxlen=3))
    distances: deque[float] = field(default_factory=lambda: deque(maxlen=DISTANCE_SMOOTHING))
    told: Told | None = None
    fresh: bool = True  # not measured yet: a new track may claim a Recall
    directions: set[str] = field(default_factory=set)  # every direction it was seen in


def growth_rate(samples: list[tuple[float, float]]) -> float | None:
    """Theil-Sen slope of ln(size) against time, or None when the history is too short.

    ``samples`` are (t, size>0). Returns d ln(size)/dt in 1/s (= -d ln(distance)/dt
    = 1/TTC when > 0).
    """
    if len(samples) < MIN_GROWTH_SAMPLES or samples[-1][0] - samples[0][0] < MIN_GROWTH_SPAN_S:
        return None
    logs = [(t, math.log(s)) for t, s in samples if s > 0]
    slopes = []
    for i in range(len(logs)):
        for j in range(i + 1, len(logs)):
            dt = logs[j][0] - logs[i][0]
            if dt > 1e-6:
                slopes.append((logs[j][1] - logs[i][1]) / dt)
    if not slopes:
        return None
    return statistics.median(slopes)


def box_sizes(history: list[tuple[float, Box]]) -> list[tuple[float, float]]:
    """(t, apparent size) for a window of boxes, measured only on sides the frame does not cut.

    Both width and height scale with 1/distance, and their geometric mean
    halves the effect of jitter on either. A dimension that touches the frame
    anywhere in the window is left out (an object sliding into view grows
    without coming closer); with both cut there is no estimate.
    """
    if not history:
        return []
    w_clean = all(b[0] > EDGE_MARGIN and b[2] < 1 - EDGE_MARGIN for _, b in history)
    h_clean = all(b[1] > EDGE_MARGIN and b[3] < 1 - EDGE_MARGIN for _, b in history)
    out = []
    for t, b in history:
        w, h = max(1e-6, b[2] - b[0]), max(1e-6, b[3] - b[1])
        if w_clean and h_clean:
            out.append((t, math.sqrt(w * h)))
        elif h_clean:
            out.append((t, h))
        elif w_clean:
            out.append((t, w))
    return out


Assess = Callable[[ObjectState], tuple[bool, bool]]


class WorldModel:
    """One record per tracked object, updated by every detector run (see module doc).

    ``assess(record) -> (hazard, urgent)`` is the policy's judgement, stored
    in each record so that a speaker can check, at the moment it speaks,
    whether an object is still worth a warning.
    """

    def __init__(self, cfg: HazardConfig, hfov_deg: float = DEFAULT_HFOV_DEG, assess: Assess | None = None) -> None:
        self.cfg = cfg
        self.hfov_deg = hfov_deg
        self.assess = assess
        self.rule = ConfirmRule.from_config(cfg)  # evidence over time (assist/hazards/confirm.py)
        self._entries: dict[int, _Entry] = {}
        self._recalls: list[Recall] = []  # told states of ended tracks, oldest first
        self._lock = threading.Lock()
        self.t_latest: float | None = None

    # ----------------------------------------------------------------- update
    def update(self, tracks: list[Track], t: float, aspect: float = DEFAULT_ASPECT) -> list[ObjectState]:
        """Measure every live track at time ``t``; return copies of the records of the visible ones."""
        cfg = self.cfg
        live = {tr.track_id for tr in tracks}
        out: list[ObjectState] = []
        with self._lock:
            self.t_latest = t
            for tid in list(self._entries):
                if tid not in live:
                    self._forget(self._entries.pop(tid))
            self._recalls = [r for r in self._recalls if t - r.t_seen <= cfg.told_memory_s]
            measured: list[tuple[_Entry, ObjectState, float]] = []  # (entry, record, confidence)
            for tr in tracks:
                entry = self._entries.setdefault(tr.track_id, _Entry())
                if not tr.visible:
                    # A missed run neither confirms nor breaks the confirmed state.
                    if entry.record is not None:
                        entry.record.visible = False
                        entry.record.streak = 0
                    continue
                measured.append((entry, self._measure(tr, entry, t, aspect), tr.confidence))
            self._claim([(e, r) for e, r, _ in measured if e.fresh])
            for entry, rec, confidence in measured:
                entry.fresh = False
                entry.directions.add(rec.direction)
                for state, raw in ((entry.proximity, rec.raw_proximity), (entry.approaching, rec.raw_approaching),
                                   (entry.present, True)):
                    state.push(raw, t, confidence, self.rule)
                rec.proximity = str(entry.proximity.value or rec.raw_proximity)
                rec.approaching = bool(entry.approaching.value)
                rec.confirmed = entry.proximity.value is not None and bool(entry.present.value)
                rec.told = entry.told
                if self.assess is not None:
                    # Still a hazard by its confirmed state, or by what is measured now
                    # (a group warning counts members whose state is not confirmed yet).
                    rec.hazard, rec.urgent = self.assess(rec)
                    if not rec.hazard:
                        rec.hazard = self.assess(dataclasses.replace(
                            rec, proximity=rec.raw_proximity, approaching=rec.raw_approaching))[0]
                entry.record = rec
                out.append(dataclasses.replace(rec))
        return out

    def _measure(self, tr: Track, entry: _Entry, t: float, aspect: float) -> ObjectState:
        cfg = self.cfg
        entry.centers.append((tr.bbox[0] + tr.bbox[2]) / 2.0)
        cx = sum(entry.centers) / len(entry.centers)
        entry.distances.append(distance_m(tr.label, tr.bbox, self.hfov_deg, aspect))
        dist = statistics.median(entry.distances)
        current = entry.proximity.value if isinstance(entry.proximity.value, str) else None
        raw_prox = proximity_band(dist, current, cfg.near_m, cfg.very_near_m, HYSTERESIS)
        samples = box_sizes([(ts, b) for ts, b in tr.history if t - ts <= GROWTH_WINDOW_S])
        rate = growth_rate(samples)
        grown = math.log(samples[-1][1] / samples[0][1]) if len(samples) >= 2 else 0.0
        ttc = (1.0 / rate) if rate and rate > 0 else None
        if entry.approaching.value:
            # Hysteresis: keep approaching until the estimate is clearly slower.
            raw_appr = ttc is not None and ttc < cfg.approach_ttc_s * RELEASE_TTC_FACTOR
        else:
            raw_appr = ttc is not None and ttc < cfg.approach_ttc_s and grown >= MIN_GROWTH
        return ObjectState(
            track_id=tr.track_id, label=tr.label, bbox=tr.bbox, confidence=tr.confidence, t_seen=t,
            visible=True, streak=tr.streak, distance_m=dist, clock=clock_hour(cx, self.hfov_deg),
            direction=direction_of(cx, cfg.ahead_width), ttc_s=ttc,
            in_path=in_walking_path(tr.bbox, dist, self.hfov_deg), proximity=raw_prox, approaching=False,
            raw_proximity=raw_prox, raw_approaching=raw_appr)

    def _forget(self, entry: _Entry) -> None:
        """A track ended: keep what the user was told about it (caller holds the lock)."""
        rec = entry.record
        if entry.told is not None and rec is not None:
            self._recalls.append(Recall(rec.label, frozenset(entry.directions), entry.told, rec.t_seen))

    def _claim(self, new: list[tuple[_Entry, ObjectState]]) -> None:
        """New tracks inherit the told state (and directions) of ended objects of their class
        seen in their direction, one ended object each (caller holds the lock).

        A greedy matching: the new track with the fewest candidates chooses first, and
        takes the most specific candidate (fewest directions), then the most recently
        seen; so four people back in view after a cut find the four that left.
        """
        if not new or not self._recalls:
            return

        def candidates(rec: ObjectState) -> list[Recall]:
            return [r for r in self._recalls if r.label == rec.label and rec.direction in r.directions]

        for entry, rec in sorted(new, key=lambda er: len(candidates(er[1]))):
            options = candidates(rec)
            if not options:
                continue
            best = min(options, key=lambda r: (len(r.directions), -r.t_seen))
            self._recalls.remove(best)
            entry.told = best.told
            entry.directions.update(best.directions)

    # ----------------------------------------------------------------- queries
    def get(self, track_id: int) -> ObjectState | None:
        """A copy of the object's latest record, or None when it is no longer tracked."""
        with self._lock:
            entry = self._entries.get(track_id)
            if entry is None or entry.record is None:
                return None
            return dataclasses.replace(entry.record, told=entry.told)

    @property
    def objects(self) -> list[ObjectState]:
        """Copies of every tracked object's latest record (briefly missed ones included)."""
        with self._lock:
            return [dataclasses.replace(e.record, told=e.told) for e in self._entries.values() if e.record is not None]

    def mark_told(self, track_id: int, t: float) -> None:
        """Remember that the user has just been told the object's current state."""
        with self._lock:
            entry = self._entries.get(track_id)
            if entry is not None and entry.record is not None:
                r = entry.record
                entry.told = Told(r.proximity, r.approaching, r.distance_m, t)

    @property
    def recalls(self) -> list[Recall]:
        """What the user was told about objects whose tracks ended recently (oldest first)."""
        with self._lock:
            return list(self._recalls)

    def reset(self) -> None:
        """Forget every object and what the user was told (after the camera was lost)."""
        with self._lock:
            self._entries.clear()
            self._recalls.clear()
