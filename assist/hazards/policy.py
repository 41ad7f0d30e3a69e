"""Hazard announcement policy: which tracked objects to warn about, when, and how urgently.

Per track, each detector run measures three things from the normalised box:

- direction: the box centre against a central "ahead" band ``hazards.ahead_width``
  wide (plus an optional clock position, assuming a ~70 degree camera);
- proximity: the box height as a fraction of the frame height (``near_height``,
  ``very_near_height``), with a 15 % hysteresis so a box hovering at a
  threshold does not flap;
- approaching: time to contact from the growth of the box. For an object of
  fixed size closing at constant speed the apparent size s ~ 1/distance, so
  d(ln s)/dt = 1/TTC. The slope of ln(sqrt(w*h)) over the last ~1.2 s is
  estimated with Theil-Sen (median of pairwise slopes), which ignores single
  outlier boxes; growth must also exceed a minimum so that box jitter on a
  still object never reads as an approach, and box sides cut by the frame
  edge are not measured (an object sliding into view is not approaching).

A measured state (proximity band, approaching, the track itself) only becomes
the track's state once the detections backing it add up to
``hazards.confirm_evidence`` in confidence within ``hazards.confirm_window_s``
(assist/hazards/confirm.py), so one noisy frame never speaks.

Announcements rank the confirmed state: 0 present (far or near), 1
approaching, 2 very near. A track is announced when it first becomes relevant
for its tier, and again only when its rank rises above the highest rank
already announced (-> approaching -> very near); nothing is repeated while
nothing gets worse, and a track that backs off and comes back does not repeat
either. far -> near alone is not news worth a second phrase: an object that
comes nearer by itself or by the user walking to it shows as approaching.

Per-class cool-down: the same news (class and rank) is not spoken twice within
``class_cooldown_s``: after "Person ahead, very near", a second person turning
very near a second later stays silent (its state is recorded, so it speaks
only if it gets worse still), while "Car ahead, approaching" after "Car ahead"
is new and spoken. Tracks of one class that become relevant together are one
phrase ("Three people ahead").
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

from assist.config import HazardConfig
from assist.core.detection import Detection
from assist.core.priority import Priority
from assist.hazards.confirm import Confirmed, ConfirmRule
from assist.hazards.geometry import DIRECTIONS, PROXIMITIES, clock_of, direction_of, proximity_of, tier_map
from assist.hazards.tracker import IouTracker, Track
from assist.speech.phrases import hazard_phrase

log = logging.getLogger(__name__)

# Tunables that are properties of the method, not of the user's taste (config
# holds the latter). Chosen on synthetic sequences with 3 % box jitter and the
# bus zoom clip; see tests/test_hazard_policy.py.
GROWTH_WINDOW_S = 1.2      # time span of box samples used for the growth slope
MIN_GROWTH_SPAN_S = 0.4    # need at least this much history before judging an approach
MIN_GROWTH_SAMPLES = 4
MIN_GROWTH = 0.08          # ln-size must have grown this much over the window (8 %)
RELEASE_TTC_FACTOR = 1.5   # stop "approaching" only when TTC exceeds threshold * this
EDGE_MARGIN = 0.01         # a box side this close to the frame border is cut by it


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
    clock: str | None = None
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


@dataclass
class _TrackState:
    proximity: Confirmed = field(default_factory=lambda: Confirmed(value=None))
    approaching: Confirmed = field(default_factory=lambda: Confirmed(value=False))
    present: Confirmed = field(default_factory=lambda: Confirmed(value=False))
    raw_proximity: str = "far"
    raw_approaching: bool = False
    ttc_s: float | None = None
    centers: deque[float] = field(default_factory=lambda: deque(maxlen=3))
    announced_rank: int = -1


def growth_rate(samples: list[tuple[float, float]]) -> float | None:
    """Theil-Sen slope of ln(size) against time, or None when the history is too short.

    ``samples`` are (t, size>0). Returns d ln(size)/dt in 1/s (= 1/TTC when > 0).
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
    slopes.sort()
    n = len(slopes)
    return slopes[n // 2] if n % 2 else 0.5 * (slopes[n // 2 - 1] + slopes[n // 2])


def box_sizes(history: list[tuple[float, tuple[float, float, float, float]]]) -> list[tuple[float, float]]:
    """(t, apparent size) for a window of boxes, measured only on sides the frame does not cut.

    Both width and height scale with 1/distance, and their geometric mean
    halves the effect of jitter on either. But a box cut by the frame edge
    grows as the object slides into view (a parked car entering the side of
    the frame while the user turns) without coming any closer: a dimension
    that touches the frame anywhere in the window is left out, and with both
    cut there is no estimate.
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


class HazardPolicy:
    """Tracks detections and decides hazard announcements (one instance per hazard worker).

    ``update`` is called once per detector run with that run's detections, the
    capture time of its frame (seconds, any monotonic origin: the video time in
    --every-frame mode) and the frame index.
    """

    def __init__(self, cfg: HazardConfig, language: str = "en", tracker: IouTracker | None = None) -> None:
        self.cfg = cfg
        self.language = language
        self.tracker = tracker or IouTracker()
        self.rule = ConfirmRule.from_config(cfg)
        self._states: dict[int, _TrackState] = {}
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
        self._states.clear()
        self._views = []

    # ---------------------------------------------------------------- measure
    def _measure(self, tr: Track, st: _TrackState) -> None:
        cfg = self.cfg
        h = max(0.0, tr.bbox[3] - tr.bbox[1])
        st.centers.append((tr.bbox[0] + tr.bbox[2]) / 2.0)
        # Proximity with hysteresis relative to the confirmed band.
        st.raw_proximity = proximity_of(h, cfg, st.proximity.value or "far")
        t_now = tr.last_seen
        samples = box_sizes([(t, b) for t, b in tr.history if t_now - t <= GROWTH_WINDOW_S])
        rate = growth_rate(samples)
        grown = math.log(samples[-1][1] / samples[0][1]) if len(samples) >= 2 else 0.0
        st.ttc_s = (1.0 / rate) if rate and rate > 0 else None
        if st.approaching.value:
            # Hysteresis: keep approaching until the estimate is clearly slower.
            st.raw_approaching = rate is not None and rate > 0 and st.ttc_s is not None \
                and st.ttc_s < cfg.approach_ttc_s * RELEASE_TTC_FACTOR
        else:
            st.raw_approaching = st.ttc_s is not None and st.ttc_s < cfg.approach_ttc_s and grown >= MIN_GROWTH

    def _direction(self, st: _TrackState) -> str:
        cx = sum(st.centers) / len(st.centers)
        return direction_of(cx, self.cfg.ahead_width)

    def _big_enough(self, tr: Track) -> bool:
        """Boxes shorter than hazards.min_height are too far away (and too unreliable) to warn about."""
        return tr.bbox[3] - tr.bbox[1] >= self.cfg.min_height

    @staticmethod
    def _rank(proximity: str, approaching: bool) -> int:
        if proximity == "very near":
            return 2
        return 1 if approaching else 0

    def _relevant(self, tier: str | None, proximity: str, approaching: bool, direction: str) -> bool:
        if tier == "high":
            return proximity != "far" or approaching or direction == "ahead"
        if tier == "medium":
            return proximity != "far" or approaching
        if tier == "low":
            return proximity == "very near"
        return False

    def _urgent(self, tier: str | None, proximity: str, approaching: bool, direction: str) -> bool:
        if proximity == "very near":
            return True
        return tier == "high" and direction == "ahead" and (approaching or proximity == "near")

    # ------------------------------------------------------------------ update
    def update(self, detections: list[Detection], t_capture: float, frame_index: int) -> list[Announcement]:
        """Track one detector run's detections and return the announcements it triggers."""
        tracks = self.tracker.update(list(detections), t_capture)
        live = {tr.track_id for tr in tracks}
        for tid in list(self._states):
            if tid not in live:
                del self._states[tid]
        views: list[TrackView] = []
        wanting: list[tuple[Track, _TrackState, int]] = []  # (track, state, rank) that want to speak
        for tr in tracks:
            st = self._states.setdefault(tr.track_id, _TrackState())
            if not tr.visible:
                continue  # a missed run neither confirms nor breaks the confirmed state
            self._measure(tr, st)
            for state, raw in ((st.proximity, st.raw_proximity), (st.approaching, st.raw_approaching),
                               (st.present, True)):
                state.push(raw, t_capture, tr.confidence, self.rule)
            tier = self.tier_of(tr.label)
            direction = self._direction(st)
            views.append(TrackView(tr.track_id, tr.label, tr.bbox, tr.confidence, tier, direction,
                                   st.proximity.value or st.raw_proximity, bool(st.approaching.value), st.ttc_s))
            if tier is None or st.proximity.value is None or not st.present.value or not self._big_enough(tr):
                continue
            prox, appr = str(st.proximity.value), bool(st.approaching.value)
            if not self._relevant(tier, prox, appr, direction):
                continue
            rank = self._rank(prox, appr)
            if rank > st.announced_rank:
                wanting.append((tr, st, rank))
        self._views = views
        return self._announce(wanting, tracks, t_capture, frame_index)

    def _announce(self, wanting: list[tuple[Track, _TrackState, int]], tracks: list[Track],
                  t: float, frame_index: int) -> list[Announcement]:
        cfg = self.cfg
        # member = (track, state, rank, proximity, approaching): confirmed values for
        # the tracks that want to speak, measured values for their companions.
        by_label: dict[str, list[tuple[Track, _TrackState, int, str, bool]]] = {}
        for tr, st, rank in wanting:
            by_label.setdefault(tr.label, []).append(
                (tr, st, rank, str(st.proximity.value), bool(st.approaching.value)))
        out: list[Announcement] = []
        for label, members in by_label.items():
            tier = self.tier_of(label)
            first_only = all(m[1].announced_rank < 0 for m in members)
            # Companions: same-class tracks seen long enough whose *measured* state is
            # already relevant but not yet confirmed. Counting them now gives "Two people
            # ahead" instead of "Person ahead" followed by a cooled-down silence.
            if first_only:
                ids = {m[0].track_id for m in members}
                for tr in tracks:
                    st = self._states.get(tr.track_id)
                    if (tr.track_id in ids or st is None or not tr.visible or st.announced_rank >= 0
                            or tr.label != label or not st.present.value or not self._big_enough(tr)):
                        continue
                    if self._relevant(tier, st.raw_proximity, st.raw_approaching, self._direction(st)):
                        members.append((tr, st, self._rank(st.raw_proximity, st.raw_approaching),
                                        st.raw_proximity, st.raw_approaching))
            members.sort(key=lambda m: (-m[2], -m[0].confidence))
            lead_tr, lead_st = members[0][0], members[0][1]
            prox = max((m[3] for m in members), key=PROXIMITIES.index)
            appr = any(m[4] for m in members)
            dirs = [self._direction(m[1]) for m in members]
            # Most common direction; ties go to the most severe member's.
            direction = max(DIRECTIONS, key=lambda d: (dirs.count(d), d == dirs[0]))
            urgent = any(self._urgent(tier, m[3], m[4], d) for m, d in zip(members, dirs, strict=True))
            for m in members:
                m[1].announced_rank = max(m[1].announced_rank, m[2])
            rank = members[0][2]
            last = self._class_last.get(label)
            if last is not None and last[1] >= rank and t - last[0] < cfg.class_cooldown_s:
                log.debug("hazard %s #%d rank %d suppressed by the class cool-down", label, lead_tr.track_id, rank)
                continue
            self._class_last[label] = (t, rank)
            count = len(members)
            text = hazard_phrase(label, count, direction, prox, appr, self.language)
            cx = sum(lead_st.centers) / len(lead_st.centers)
            out.append(Announcement(
                text=text, priority=Priority.IMPORTANT if urgent else Priority.MESSAGE, label=label,
                track_id=lead_tr.track_id, direction=direction, proximity=prox, approaching=appr,
                confidence=lead_tr.confidence, bbox=lead_tr.bbox, frame=frame_index, t_capture=t,
                clock=clock_of(cx), count=count, track_ids=tuple(m[0].track_id for m in members)))
        out.sort(key=lambda a: a.priority)
        return out
