"""A small IoU tracker: stable ids for detections across detector runs.

Why our own and not ultralytics' BYTETrack: BYTETrack wants a Results-like
object and a Kalman filter tuned for 30 fps video with per-frame low-confidence
detections (its second association stage); our hazard worker runs at a few Hz
and only keeps detections above ``hazards.confidence``, so most of BYTETrack's
advantage is unused while its state (frame ids, fps-based buffers) becomes
rate dependent. Greedy IoU matching within a class, with a constant-velocity
prediction for the frames a track is missed, is deterministic, has no
dependencies, and costs microseconds for the handful of objects in a street
view.

Class flips: a detector often calls the same object by a neighbouring class
from one frame to the next (a bus seen close up becomes "train" or "truck";
measured on the bus zoom clip). Announcements must be about objects, so
(1) detections of different classes overlapping at IoU >= ``duplicate_iou``
are one object (the most confident is kept), (2) a detection that no track of
its class takes may continue a track of another class at IoU >=
``relabel_iou``, and (3) a track's label is its confidence-weighted majority
vote, so a few "train" frames do not rename a bus.

Fast lateral movers: a person crossing close in front moves about one body
width per detector run, so consecutive boxes barely overlap (measured on the
night street clip: IoU 0 between runs at 15 Hz) and pure IoU matching gives
a new id every run, which never confirms. A last stage therefore matches the
leftovers of the same class by the distance between centres (of the predicted
box), measured in box heights, with similar sizes: a crossing pedestrian
moves a fraction of their height per run; a different object rarely fits.

Trade-off: two same-class objects crossing each other may swap ids. For
warnings that costs at most one extra announcement, which the per-class
cool-down absorbs.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from assist.core.detection import Detection

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    if inter <= 0.0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One tracked object.

    ``streak`` counts consecutive detector runs in which the track was matched
    (reset by a miss): confirmation rules use it so that an object seen one
    frame in five never counts as confirmed. ``history`` holds (t, bbox) of the
    matched runs, newest last, for growth (time-to-contact) estimates.
    """

    track_id: int
    label: str
    bbox: Box
    confidence: float
    class_id: int
    first_seen: float
    last_seen: float
    hits: int = 1
    streak: int = 1
    missed: int = 0
    history: deque[tuple[float, Box]] = field(default_factory=lambda: deque(maxlen=64))
    votes: dict[str, float] = field(default_factory=dict)

    def observe(self, det: Detection, t: float) -> None:
        """Record a matched detection: box, confidence, label vote, counters, history."""
        self.bbox, self.confidence, self.last_seen = det.bbox, det.confidence, t
        self.votes[det.label] = self.votes.get(det.label, 0.0) + det.confidence
        best = max(self.votes, key=lambda k: self.votes[k])
        if best != self.label:
            self.label, self.class_id = best, det.class_id if det.label == best else self.class_id
        self.hits += 1
        self.streak = self.streak + 1 if self.missed == 0 else 1
        self.missed = 0
        self.history.append((t, det.bbox))

    @property
    def visible(self) -> bool:
        """Matched in the latest update."""
        return self.missed == 0

    def predicted(self, t: float) -> Box:
        """The box extrapolated to time ``t`` from the last two observations (for matching after misses)."""
        if len(self.history) < 2:
            return self.bbox
        (t0, b0), (t1, b1) = self.history[-2], self.history[-1]
        dt = t1 - t0
        if dt <= 0:
            return self.bbox
        # Damped: extrapolate at most half a second so a lost track does not fly away.
        k = min(t - t1, 0.5) / dt
        return tuple(b1[i] + (b1[i] - b0[i]) * k for i in range(4))  # type: ignore[return-value]

    def as_detection(self) -> Detection:
        """The track's latest box as a Detection carrying its track id."""
        return Detection(self.label, self.confidence, self.bbox, self.class_id, self.track_id)


class IouTracker:
    """Greedy IoU matching, same class first, then across classes for label flips.

    ``iou_threshold``: minimum IoU to continue a track of the same class (0.2
    keeps a box that grows fast when approaching: on the bus zoom clip at 8 Hz
    consecutive boxes overlap 0.75-0.95). ``relabel_iou``: minimum IoU to
    continue a track of another class. ``duplicate_iou``: overlapping
    detections of different classes above this are one object.
    ``lost_after_s``: how long a track survives unmatched (a time, not a frame
    count, so it means the same at every detector rate); ``max_missed`` bounds
    it in runs as well.
    """

    def __init__(self, iou_threshold: float = 0.2, lost_after_s: float = 1.0, max_missed: int = 30,
                 relabel_iou: float = 0.5, duplicate_iou: float = 0.7, centre_gate: float = 0.6,
                 size_ratio: float = 1.5) -> None:
        self.centre_gate = centre_gate  # max centre distance, in box heights, for the distance stage
        self.size_ratio = size_ratio  # max height ratio for the distance stage
        self.iou_threshold = iou_threshold
        self.relabel_iou = relabel_iou
        self.duplicate_iou = duplicate_iou
        self.lost_after_s = lost_after_s
        self.max_missed = max_missed
        self._tracks: dict[int, Track] = {}
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """Live tracks (including briefly missed ones), oldest id first."""
        return list(self._tracks.values())

    def reset(self) -> None:
        """Forget every track (for example after the camera was lost); ids keep increasing."""
        self._tracks.clear()

    def _dedupe(self, detections: list[Detection]) -> list[Detection]:
        """Drop a detection that overlaps a more confident one of another class (same object, two names)."""
        kept: list[Detection] = []
        for det in sorted(detections, key=lambda d: -d.confidence):
            if all(k.label == det.label or iou(k.bbox, det.bbox) < self.duplicate_iou for k in kept):
                kept.append(det)
        return kept

    def _match(self, detections: list[Detection], t: float, used_tracks: set[int], used_dets: set[int],
               same_label: bool, threshold: float) -> None:
        candidates: list[tuple[float, int, int]] = []
        for tid, tr in self._tracks.items():
            if tid in used_tracks:
                continue
            pred = tr.predicted(t)
            for di, det in enumerate(detections):
                if di in used_dets or (det.label == tr.label) != same_label:
                    continue
                # Best of the last box and the predicted one: the prediction helps
                # fast movers after a miss, the last box guards against a bad velocity.
                score = max(iou(tr.bbox, det.bbox), iou(pred, det.bbox))
                if score >= threshold:
                    candidates.append((score, tid, di))
        self._assign(sorted(candidates, key=lambda c: -c[0]), detections, t, used_tracks, used_dets)

    def _assign(self, ranked: list[tuple[float, int, int]], detections: list[Detection], t: float,
                used_tracks: set[int], used_dets: set[int]) -> None:
        """Greedy assignment: best (cost, track, detection) pairs first, each side used once."""
        for _cost, tid, di in ranked:
            if tid in used_tracks or di in used_dets:
                continue
            used_tracks.add(tid)
            used_dets.add(di)
            self._tracks[tid].observe(detections[di], t)

    def _match_by_centre(self, detections: list[Detection], t: float, used_tracks: set[int],
                         used_dets: set[int]) -> None:
        """Same-class leftovers whose centres are close in units of box height."""
        candidates: list[tuple[float, int, int]] = []
        for tid, tr in self._tracks.items():
            if tid in used_tracks:
                continue
            pred = tr.predicted(t)
            ph = pred[3] - pred[1]
            for di, det in enumerate(detections):
                if di in used_dets or det.label != tr.label:
                    continue
                dh = det.bbox[3] - det.bbox[1]
                scale = (ph + dh) / 2.0
                if scale <= 0 or max(ph, dh) > self.size_ratio * min(ph, dh):
                    continue
                dx = (pred[0] + pred[2] - det.bbox[0] - det.bbox[2]) / 2.0
                dy = (pred[1] + pred[3] - det.bbox[1] - det.bbox[3]) / 2.0
                dist = (dx * dx + dy * dy) ** 0.5 / scale
                if dist <= self.centre_gate:
                    candidates.append((dist, tid, di))
        self._assign(sorted(candidates), detections, t, used_tracks, used_dets)

    def update(self, detections: list[Detection], t: float) -> list[Track]:
        """Match ``detections`` taken at time ``t`` to tracks; return the live tracks."""
        detections = self._dedupe(list(detections))
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        self._match(detections, t, used_tracks, used_dets, True, self.iou_threshold)
        self._match(detections, t, used_tracks, used_dets, False, self.relabel_iou)
        self._match_by_centre(detections, t, used_tracks, used_dets)
        for tid, tr in list(self._tracks.items()):
            if tid in used_tracks:
                continue
            tr.missed += 1
            tr.streak = 0
            if tr.missed > self.max_missed or t - tr.last_seen > self.lost_after_s:
                del self._tracks[tid]
        for di, det in enumerate(detections):
            if di in used_dets:
                continue
            tr = Track(self._next_id, det.label, det.bbox, det.confidence, det.class_id, t, t,
                       votes={det.label: det.confidence})
            tr.history.append((t, det.bbox))
            self._tracks[self._next_id] = tr
            self._next_id += 1
        return self.tracks
