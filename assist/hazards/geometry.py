"""Where an object is, from its box alone: direction, clock position, distance
in metres, nearness bands and the class tiers.

One place for the geometry every stage uses (the world model, the policy, the
``--image`` command, the caption text, the announcer's words), so "ahead",
"near" and "a hazard class" mean the same thing everywhere. Thresholds come
from ``[hazards]`` and ``camera.hfov_deg`` in config.toml. Boxes are
(x1, y1, x2, y2) normalised to 0..1.

Camera model and what it assumes:

- a pinhole camera with square pixels and no lens distortion, level with the
  ground (worn at chest height, looking ahead), horizontal field of view
  ``camera.hfov_deg`` across the frame width (70 degrees by default: a
  typical webcam or phone main camera). The vertical focal length in frame
  heights follows from the frame's aspect ratio:
  ``f_y = (width / height) * 0.5 / tan(hfov / 2)``;
- objects stand upright and their box is tight around them;
- each class has a typical real height and width (``HEIGHT_PRIOR_M``,
  ``WIDTH_PRIOR_M``), so ``distance = real_height * f_y / box_height``.
  Priors are averages: a child or a small car reads farther than it is, a
  tall person or an SUV nearer, by their ratio to the average (typically
  +-20 %). Widths are frontal or rear views (what is in a walker's path):
  a car seen from the side is wider, so it reads nearer than it is, the safe
  side of the error;
- a box side that touches the frame border is cut: the object goes on
  beyond the frame, so that side underestimates the apparent size. The
  distance comes from the side the frame does not cut (height first: widths
  vary more with the viewing angle). When both are cut the object fills the
  view; the estimate from the larger visible side is an upper bound and is
  used as is (the truth is nearer still, which only makes warnings earlier).

Estimates are clamped to 0.2..200 m: nearer than 0.2 m the box is the whole
frame anyway, and beyond 200 m nothing is big enough to be detected.
"""

from __future__ import annotations

import math

from assist.config import HazardConfig

Box = tuple[float, float, float, float]

PROXIMITIES = ("far", "near", "very near")
DIRECTIONS = ("left", "ahead", "right")
TIERS = ("low", "medium", "high")

DEFAULT_HFOV_DEG = 70.0
CAMERA_HFOV_DEG = DEFAULT_HFOV_DEG  # the default camera.hfov_deg (older name)
# A nearness band is left only beyond its threshold by this factor, so a box
# hovering at a threshold does not flap (chosen on synthetic sequences with 3 % box jitter).
HYSTERESIS = 0.85
DEFAULT_ASPECT = 4.0 / 3.0  # width / height of a frame when the caller does not know it (640x480 webcams)
EDGE_MARGIN = 0.01  # a box side this close to the frame border is cut by it
MIN_DISTANCE_M = 0.2
MAX_DISTANCE_M = 200.0

# Typical real heights in metres (standing adults, cars, buses, ...).
HEIGHT_PRIOR_M: dict[str, float] = {
    "person": 1.7, "bicycle": 1.1, "car": 1.5, "motorcycle": 1.2, "bus": 3.2, "train": 3.8, "truck": 3.0,
    "boat": 1.5, "traffic light": 0.9, "fire hydrant": 0.7, "stop sign": 0.75, "parking meter": 1.3,
    "bench": 0.8, "bird": 0.25, "cat": 0.3, "dog": 0.5, "horse": 1.6, "sheep": 0.9, "cow": 1.4,
    "elephant": 3.0, "bear": 1.2, "zebra": 1.4, "giraffe": 4.5, "backpack": 0.5, "umbrella": 1.0,
    "suitcase": 0.65, "skateboard": 0.15, "chair": 0.9, "couch": 0.85, "potted plant": 0.6, "bed": 0.6,
    "dining table": 0.75, "toilet": 0.75, "tv": 0.6, "refrigerator": 1.8, "oven": 0.9, "sink": 0.9,
}
# Typical real widths seen from the front or back (the walker's view of something in the path).
WIDTH_PRIOR_M: dict[str, float] = {
    "person": 0.5, "bicycle": 0.6, "car": 1.8, "motorcycle": 0.8, "bus": 2.55, "train": 3.0, "truck": 2.5,
    "boat": 2.0, "traffic light": 0.3, "fire hydrant": 0.4, "stop sign": 0.75, "parking meter": 0.3,
    "bench": 1.6, "bird": 0.2, "cat": 0.2, "dog": 0.3, "horse": 0.6, "sheep": 0.5, "cow": 0.7,
    "elephant": 1.5, "bear": 0.7, "zebra": 0.5, "giraffe": 1.0, "backpack": 0.35, "umbrella": 1.0,
    "suitcase": 0.45, "skateboard": 0.25, "chair": 0.5, "couch": 2.0, "potted plant": 0.4, "bed": 1.6,
    "dining table": 1.2, "toilet": 0.4, "tv": 1.0, "refrigerator": 0.8, "oven": 0.6, "sink": 0.6,
}
DEFAULT_HEIGHT_M = 1.0  # an unknown class: about a metre (its distance is a guess, said as such by rounding)
DEFAULT_WIDTH_M = 0.7


def direction_of(center_x: float, ahead_width: float) -> str:
    """left / ahead / right from a horizontal centre in 0..1 and the ahead band width."""
    half = ahead_width / 2.0
    if center_x < 0.5 - half:
        return "left"
    if center_x > 0.5 + half:
        return "right"
    return "ahead"


def bearing_deg(center_x: float, hfov_deg: float = DEFAULT_HFOV_DEG) -> float:
    """Angle right of straight ahead (negative = left) of a horizontal position 0..1 (pinhole, not linear)."""
    half = math.radians(hfov_deg) / 2.0
    return math.degrees(math.atan((center_x - 0.5) * 2.0 * math.tan(half)))


def clock_hour(center_x: float, hfov_deg: float = DEFAULT_HFOV_DEG) -> int:
    """Clock position 1..12 of a horizontal position (12 = straight ahead, each hour 30 degrees)."""
    hour = round(12 + bearing_deg(center_x, hfov_deg) / 30.0)
    return (hour - 1) % 12 + 1


def clock_of(center_x: float, hfov_deg: float = DEFAULT_HFOV_DEG) -> str:
    """Clock position ("11 o'clock") of a horizontal centre, for a camera with that field of view."""
    return f"{clock_hour(center_x, hfov_deg)} o'clock"


def proximity_of(height: float, cfg: HazardConfig, current: str | None = None) -> str:
    """far / near / very near from the box height alone (a fraction of the frame), for
    ``--image`` and the caption text; tracked objects use :func:`proximity_band` on
    their distance. ``current``, the band a track is confirmed in, adds the hysteresis."""
    near_t, very_t = cfg.near_height, cfg.very_near_height
    if current == "very near":
        very_t *= HYSTERESIS
    if current in ("near", "very near"):
        near_t *= HYSTERESIS
    return "very near" if height >= very_t else "near" if height >= near_t else "far"


def tier_map(cfg: HazardConfig) -> dict[str, str]:
    """Class label -> high / medium / low. Later tiers win when a class is
    listed twice, so list order in the config is irrelevant; the most cautious
    (high) is applied last."""
    tiers: dict[str, str] = {}
    for tier in TIERS:
        for label in getattr(cfg, tier):
            tiers[label] = tier
    return tiers


def warned_labels(cfg: HazardConfig) -> tuple[str, ...]:
    """The classes warned about before they are very near (high and medium
    tiers): a caption that leaves one of them out, close ahead, gets it added."""
    return tuple(cfg.high) + tuple(cfg.medium)


def focal_lengths(hfov_deg: float = DEFAULT_HFOV_DEG, aspect: float = DEFAULT_ASPECT) -> tuple[float, float]:
    """(f_x in frame widths, f_y in frame heights) of a pinhole camera with square pixels."""
    fx = 0.5 / math.tan(math.radians(hfov_deg) / 2.0)
    return fx, fx * aspect


def cut_sides(bbox: Box) -> tuple[bool, bool]:
    """(width cut, height cut): whether the frame border cuts the box horizontally / vertically."""
    x1, y1, x2, y2 = bbox
    return (x1 <= EDGE_MARGIN or x2 >= 1.0 - EDGE_MARGIN), (y1 <= EDGE_MARGIN or y2 >= 1.0 - EDGE_MARGIN)


def height_prior(label: str) -> float:
    """Typical real height of a class in metres."""
    return HEIGHT_PRIOR_M.get(label, DEFAULT_HEIGHT_M)


def width_prior(label: str) -> float:
    """Typical real width (front or back view) of a class in metres."""
    return WIDTH_PRIOR_M.get(label, DEFAULT_WIDTH_M)


def distance_m(label: str, bbox: Box, hfov_deg: float = DEFAULT_HFOV_DEG, aspect: float = DEFAULT_ASPECT) -> float:
    """Estimated distance in metres to an object of class ``label`` with this box (see module doc)."""
    fx, fy = focal_lengths(hfov_deg, aspect)
    w = max(1e-6, bbox[2] - bbox[0])
    h = max(1e-6, bbox[3] - bbox[1])
    w_cut, h_cut = cut_sides(bbox)
    from_h = height_prior(label) * fy / h
    from_w = width_prior(label) * fx / w
    if not h_cut:
        d = from_h
    elif not w_cut:
        d = from_w
    else:
        d = min(from_h, from_w)  # both are upper bounds; the smaller is the tighter one
    return min(MAX_DISTANCE_M, max(MIN_DISTANCE_M, d))


def proximity_band(distance: float, current: str | None, near_m: float, very_near_m: float,
                   hysteresis: float = HYSTERESIS) -> str:
    """far / near / very near from a distance, with hysteresis relative to the ``current`` band.

    A band is left only when the distance is beyond its threshold / ``hysteresis``
    (15 % farther by default), so an object hovering at a threshold does not flap.
    """
    very_t, near_t = very_near_m, near_m
    if current == "very near":
        very_t /= hysteresis
    if current in ("near", "very near"):
        near_t /= hysteresis
    if distance <= very_t:
        return "very near"
    if distance <= near_t:
        return "near"
    return "far"


def in_walking_path(bbox: Box, distance: float, hfov_deg: float = DEFAULT_HFOV_DEG,
                    half_width_m: float = 0.75) -> bool:
    """Whether any part of the object is within ``half_width_m`` of the line straight ahead.

    The lateral offset of each box side is ``distance * tan(bearing)``; the
    walking corridor is a body width plus a margin (1.5 m in all). An object
    the camera looks at straight on is in the path at any distance.
    """
    left = distance * math.tan(math.radians(bearing_deg(bbox[0], hfov_deg)))
    right = distance * math.tan(math.radians(bearing_deg(bbox[2], hfov_deg)))
    return left <= half_width_m and right >= -half_width_m


__all__ = ["CAMERA_HFOV_DEG", "DEFAULT_ASPECT", "DEFAULT_HFOV_DEG", "DIRECTIONS", "HEIGHT_PRIOR_M", "HYSTERESIS",
           "PROXIMITIES", "TIERS", "WIDTH_PRIOR_M", "bearing_deg", "clock_hour", "clock_of", "cut_sides",
           "direction_of", "distance_m", "focal_lengths", "height_prior", "in_walking_path", "proximity_band",
           "proximity_of", "tier_map", "warned_labels", "width_prior"]
