"""Scene-change gate: decide, frame by frame, when the scene should be described.

Hazard detection is never gated by this; it only decides when the captioner
runs. Per frame (median 0.78 ms, fastest 0.59 ms at 640x480 on one core of the
shared 2-core dev machine, see ``bench/gate_bench.py``; half of it is the one
full-resolution gray + area-downscale pass):

1. **Analysis frame.** The frame is shrunk (area averaging, which also averages
   sensor noise away) to ``analysis_width_px``, turned gray, blurred a little
   and normalised to zero mean and unit contrast, so auto-exposure and
   ±30 % brightness steps barely change it.
2. **Motion score** (``score``): how far the view shifted, in percent of the
   frame width, between this frame and the one ``motion_window_s`` earlier.
   The shift comes from phase correlation (a global translation estimate), so
   it means the same for a textured street and a plain room; a change that is
   not a shift (cut, zoom, a hand over the lens) scores 100. A view is
   *moving* when the score is at least ``motion_threshold_pct`` AND the median
   change over a 8x6 grid of regions is at least ``motion_min_change``: the
   median ignores a person walking through less than half the view (that is
   the hazard worker's job) and a flat wall's noise.
3. **Settle.** After the last moving frame the view must stay still for
   ``settle_s``; only then (state ``still``) may the gate fire, so a new scene
   is described once, after a pan, never during it.
4. **New scene?** The still frame is compared with the frame that was last
   described, by a gradient-sign hash (see :func:`scene_hash` for the
   measurement that chose it). It fires when the hash distance exceeds
   ``new_scene_threshold``, not sooner than ``min_interval_s`` after the last
   firing; and, with ``max_interval_s`` > 0, it re-describes an unchanged
   still view that often.
5. **Quality.** Too dark (mean brightness below ``dark_threshold``) or too
   blurred (sharpness below ``blur_threshold``, judged only while the view is
   not moving, so motion blur during a pan is not a quality problem) never
   fires. The reported ``quality`` changes only after the new quality has held
   for ``quality_hold_s`` (and leaving "too dark" needs 25 % more light than
   entering it), so the pipeline's one spoken notice per transition
   (``quality_changed``) cannot flicker.

6. **Startup.** A user who just started the agent wants to know where they
   are, walking or not. Until the first firing the gate keeps the sharpest
   frame seen so far whose quality is ok (by :func:`sharpness`, which motion
   blur lowers); if no still view has fired ``startup_s`` after the first
   frame, it fires on that frame (reason ``startup``, the frame in
   ``GateDecision.frame``), so the first description starts within about 3 s
   even on a walk that never settles. Later descriptions are the gate's
   usual decisions.

The gate records the frame it fires on as the last described one itself (no
``mark_captioned`` call): the pipeline captions the frame the gate fires on
(``decision.frame`` when set, else the frame it was given).
Time comes only from ``frame.t_capture``, so the gate behaves the same on the
live clock and on the deterministic video-time clock.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from assist.config import SceneConfig
from assist.core.frames import Frame

log = logging.getLogger(__name__)

# Times are compared with this tolerance, so frame times like 6.8 = 68 / 10
# do not miss a boundary by a rounding error.
_EPS_S = 1e-6
# Phase-correlation peak response below which the change is "not a shift".
# Measured on 79 COCO photos at 64 px (bench of this module's development):
# true shifts (pans, shake, noise, exposure steps) gave 0.75..1.14; a cut to
# another photo gave -0.29..0.51. 0.6 sits between.
_MIN_SHIFT_RESPONSE = 0.6
# Contrast normalisation floor (0..1 gray units): a flat or dark view's noise
# is not stretched into fake texture.
_STD_FLOOR = 0.03
# Region grid for the robust (median) change measure.
_GRID = (8, 6)
# Leaving "too dark" needs this much more brightness than entering it.
_DARK_HYSTERESIS = 1.25
# Blur is judged only where there is some contrast: a plain wall is not "blurred".
_BLUR_MIN_STD = 0.04

# Gate reason -> the caption event's ``trigger`` (DESIGN.md, round 2). The
# other triggers come from outside the gate: ``image`` (a folder of photos,
# each its own scene) and ``request`` (the user asked).
TRIGGERS = {"first": "startup", "startup": "startup", "new_scene": "scene_change",
            "walking_refresh": "walking", "refresh": "refresh"}


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided about one frame.

    ``fire``: caption this frame. ``score``: motion score (percent of the frame
    width the view shifted within ``motion_window_s``; 100 = changed, not
    shifted). ``change``: median regional change (contrast units).
    ``diff_from_last``: hash distance (0..1) to the last described frame, None
    before the first. ``state``: moving / settling / still. ``quality``: ok /
    too_dark / too_blurred (the held, reported quality). ``quality_changed``:
    True on the one frame where ``quality`` changed. ``reason``: "first",
    "startup", "new_scene", "refresh", "walking_refresh" when firing, else "".
    ``brightness`` (0..1) and ``sharpness``: the raw quality measures.
    ``frame``: the frame to describe when it is not the one just given (the
    sharpest startup frame), else None.
    """

    fire: bool
    score: float
    change: float
    diff_from_last: float | None
    state: str
    quality: str
    quality_changed: bool
    reason: str
    brightness: float
    sharpness: float
    frame: Frame | None = None

    @property
    def trigger(self) -> str:
        """The caption event's ``trigger`` for this firing (startup, scene_change, walking, refresh), else ""."""
        return TRIGGERS.get(self.reason, "")

    def as_log_fields(self) -> dict[str, Any]:
        """Fields for the ``gate`` event (``--log-gate``); no t/type/frame/text keys."""
        return {
            "fire": self.fire,
            "reason": self.reason,
            "state": self.state,
            "score": round(self.score, 3),
            "change": round(self.change, 4),
            "diff_from_last": None if self.diff_from_last is None else round(self.diff_from_last, 4),
            "quality": self.quality,
            "quality_changed": self.quality_changed,
            "brightness": round(self.brightness, 4),
            "sharpness": round(self.sharpness, 4),
        }


# --------------------------------------------------------------------------- measures

def analysis_frames(image: np.ndarray, width_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(gray 0..1 at 2x analysis width, normalised gray at analysis width).

    Area averaging from the full frame is the one full-resolution pass; it is
    what keeps the gate far under a millisecond at 640x480.
    """
    h, w = image.shape[:2]
    w2 = min(w, 2 * width_px)
    h2 = max(2, round(w2 * h / w))
    if image.ndim == 3:
        # gray first: measured 0.23 ms for gray + area resize at 640x480 against 0.34 ms the other way round
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    image = cv2.resize(image, (w2, h2), interpolation=cv2.INTER_AREA)
    gray2 = image.astype(np.float32) * (1.0 / 255.0)
    aw = min(width_px, w2)
    ah = max(2, round(aw * h / w))
    small = cv2.GaussianBlur(cv2.resize(gray2, (aw, ah), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    mean, std = cv2.meanStdDev(small)
    return gray2, (small - float(mean[0, 0])) / max(float(std[0, 0]), _STD_FLOOR)


def sharpness(gray: np.ndarray) -> float:
    """Ratio of second- to first-derivative energy (0..~2): falls as the view blurs.

    Dividing by the gradient makes it independent of brightness and contrast,
    so a dim sharp room is not "blurred"; a view with almost no contrast gets
    a neutral 1.0 (a plain wall is not blurred, only featureless).
    """
    if float(gray.std()) < _BLUR_MIN_STD:
        return 1.0
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=1)
    return float(np.abs(lap).mean() / (np.abs(gx).mean() + np.abs(gy).mean() + 1e-6))


def regional_change(a: np.ndarray, b: np.ndarray) -> float:
    """Median over an 8x6 grid of regions of the mean absolute difference (contrast units)."""
    d = cv2.absdiff(a, b)
    gx, gy = _GRID
    cells = cv2.resize(d, (gx, gy), interpolation=cv2.INTER_AREA)
    return float(np.median(cells))


def scene_hash(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A gradient-sign hash: (sign bits, significance mask), 12x9 cells, both directions.

    Picked by measurement (79 COCO photos, 640x480, distance = share of
    differing significant bits): the same view under brightness x0.7 / x1.3,
    noise sigma 8 and 15, shifts of 3 and 6 px, JPEG quality 20, a person
    (55 % of the height) pasted in, and all of those combined differed by at
    most 0.19; 400 pairs of different photos by at least 0.37 (1st percentile
    0.39). Alternatives measured the same way: 8x8 dHash (0.22 vs 0.28),
    64-bit pHash (0.38 vs 0.29: overlaps), SSIM at 64x48 (0.41 vs 0.37:
    overlaps, exposure steps hurt it), contrast-normalised mean difference
    (0.61 vs 0.72). Signs of gradients survive exposure changes by design.
    A gradient too small to have a reliable sign (flat sky, a dark frame's
    noise) is not significant and does not count.
    """
    s = cv2.resize(gray, (13, 10), interpolation=cv2.INTER_AREA)
    dx = s[:-1, 1:] - s[:-1, :-1]
    dy = s[1:, :-1] - s[:-1, :-1]
    g = np.concatenate([dx.ravel(), dy.ravel()])
    return g > 0, np.abs(g) > 2.0 / 255.0


def hash_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Share (0..1) of the bits significant in either hash whose signs differ."""
    sig = a[1] | b[1]
    n = int(sig.sum())
    if n == 0:
        return 0.0
    return float(((a[0] != b[0]) & sig).sum() / n)


# --------------------------------------------------------------------------- gate

class SceneGate:
    """Scene-change gate; one instance per stream, called on every frame in order.

    Not thread-safe: the capture thread owns it.
    """

    def __init__(self, cfg: SceneConfig) -> None:
        self.cfg = cfg
        self._history: deque[tuple[float, np.ndarray]] = deque()
        self._window: np.ndarray | None = None
        self._t_last_motion: float | None = None
        self._t_unsettled_since: float | None = None  # start of the current stretch without a still view
        self._last_hash: tuple[np.ndarray, np.ndarray] | None = None
        self._t_last_fire: float | None = None
        self.last_fired_index: int | None = None
        self._quality = "ok"
        self._candidate = "ok"
        self._t_candidate: float = 0.0
        self.fire_count = 0
        self._t_first: float | None = None
        # (sharpness, frame, hash) of the sharpest usable frame before the first firing
        self._startup_best: tuple[float, Frame, tuple[np.ndarray, np.ndarray]] | None = None

    def reset(self) -> None:
        """Forget motion history and the last described scene (e.g. a new source)."""
        self.__init__(self.cfg)  # type: ignore[misc]

    def _motion(self, t: float, small: np.ndarray) -> tuple[float, float]:
        """(score in % of width, regional change) against the frame motion_window_s ago."""
        ref = None
        for entry in self._history:  # oldest first
            if entry[0] > t - self.cfg.motion_window_s + _EPS_S:
                break
            ref = entry
        if ref is None and self._history:
            ref = self._history[0]  # stream younger than the window: compare with its first frame
        while self._history and self._history[0] is not ref:
            self._history.popleft()  # older than the reference: never needed again
        self._history.append((t, small))
        if ref is None or ref[1].shape != small.shape:
            return 100.0, float("inf")  # nothing to compare with: treat as "just changed"
        a = ref[1]
        if self._window is None or self._window.shape != small.shape:
            self._window = cv2.createHanningWindow((small.shape[1], small.shape[0]), cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(a, small, self._window)
        score = 100.0 if response < _MIN_SHIFT_RESPONSE else 100.0 * float(np.hypot(dx, dy)) / small.shape[1]
        return min(score, 100.0), regional_change(a, small)

    def _update_quality(self, t: float, raw: str) -> bool:
        """Hold-time filter on the quality; True when the reported quality changed now."""
        if raw != self._candidate:
            self._candidate, self._t_candidate = raw, t
        if self._candidate != self._quality and t - self._t_candidate >= self.cfg.quality_hold_s - _EPS_S:
            self._quality = self._candidate
            return True
        return False

    def update(self, frame: Frame) -> GateDecision:
        """Score one frame and decide whether to describe it (records it as described when it fires)."""
        cfg, t = self.cfg, frame.t_capture
        gray2, small = analysis_frames(frame.image, cfg.analysis_width_px)
        score, change = self._motion(t, small)
        moving = score >= cfg.motion_threshold_pct and change >= cfg.motion_min_change
        if moving or self._t_last_motion is None:
            self._t_last_motion = t
        if moving:
            state = "moving"
        elif t - self._t_last_motion >= cfg.settle_s - _EPS_S:
            state = "still"
        else:
            state = "settling"

        brightness = float(gray2.mean())
        sharp = sharpness(gray2)
        dark_limit = cfg.dark_threshold * (_DARK_HYSTERESIS if self._quality == "too_dark" else 1.0)
        if brightness < dark_limit:
            raw = "too_dark"
        elif moving:
            # motion blur is expected while moving: keep the blur verdict we had
            raw = "too_blurred" if self._quality == "too_blurred" else "ok"
        else:
            raw = "too_blurred" if sharp < cfg.blur_threshold else "ok"
        quality_changed = self._update_quality(t, raw)

        h = scene_hash(gray2)
        diff = None if self._last_hash is None else hash_distance(h, self._last_hash)
        reason = ""
        if raw == "ok" and state == "still":
            since = None if self._t_last_fire is None else t - self._t_last_fire
            if since is None:
                reason = "first"
            elif since >= cfg.min_interval_s - _EPS_S:
                if cfg.enabled and diff is not None and diff > cfg.new_scene_threshold:
                    reason = "new_scene"
                elif cfg.max_interval_s > 0 and since >= cfg.max_interval_s - _EPS_S:
                    reason = "refresh"
        # Walking: a worn camera that keeps moving never settles, and a user
        # walking down a street would never hear a description. Once the view
        # has been unsettled for walking_refresh_s (far longer than any turn
        # or pan, so "never mid-pan" holds) and differs from the last
        # described view, describe it anyway, on a frame that is at least
        # not a fast shift (score under twice the motion threshold).
        if state == "still":
            self._t_unsettled_since = None
        elif self._t_unsettled_since is None:
            self._t_unsettled_since = t
        if (not reason and raw == "ok" and cfg.walking_refresh_s > 0 and self._t_unsettled_since is not None
                and t - self._t_unsettled_since >= cfg.walking_refresh_s - _EPS_S
                and (self._t_last_fire is None or t - self._t_last_fire >= cfg.walking_refresh_s - _EPS_S)
                and score < 2.0 * cfg.motion_threshold_pct
                and (diff is None or diff > cfg.new_scene_threshold)):
            reason = "walking_refresh"
        picked: Frame | None = None
        if self._t_last_fire is None and not reason:
            reason, picked, h = self._startup(frame, t, sharp, raw == "ok", h)
        fire = bool(reason)
        if fire:
            self._last_hash, self._t_last_fire = h, t
            self.last_fired_index = (picked or frame).index
            self.fire_count += 1
            self._startup_best = None
            log.debug("gate fires on frame %d (%s, diff %s)", self.last_fired_index, reason, diff)
        return GateDecision(fire=fire, score=score, change=change if change != float("inf") else 0.0,
                            diff_from_last=diff, state=state, quality=self._quality,
                            quality_changed=quality_changed, reason=reason,
                            brightness=brightness, sharpness=sharp,
                            frame=picked if picked is not None and picked is not frame else None)

    def _startup(self, frame: Frame, t: float, sharp: float, usable: bool,
                 h: tuple[np.ndarray, np.ndarray]) -> tuple[str, Frame | None, tuple[np.ndarray, np.ndarray]]:
        """Before the first firing: remember the sharpest usable frame (not too dark, not a still
        blurred view: ``raw`` quality ok); once ``startup_s`` has
        passed since the first frame, ("startup", that frame, its hash), else ("", None, h)."""
        if self._t_first is None:
            self._t_first = t
        if self.cfg.startup_s <= 0:
            return "", None, h
        if usable and (self._startup_best is None or sharp > self._startup_best[0]):
            self._startup_best = (sharp, frame, h)
        # Not while the current verdict is "too blurred" or "too dark" (a still, defocused
        # view is never described: the user hears the quality notice instead).
        if not usable or self._startup_best is None or t - self._t_first < self.cfg.startup_s - _EPS_S:
            return "", None, h
        _sharp, best, best_hash = self._startup_best
        return "startup", best, best_hash
