"""Where an object is, read from its normalised box: the one place for the
direction bands, the clock position, the nearness bands and the class tiers.

The hazard policy, the ``--image`` command and the caption text all ask here,
so "ahead", "near" and "a hazard class" mean the same thing everywhere.
Thresholds come from ``[hazards]`` in config.toml (:class:`HazardConfig`).
"""

from __future__ import annotations

from assist.config import HazardConfig

PROXIMITIES = ("far", "near", "very near")
DIRECTIONS = ("left", "ahead", "right")
TIERS = ("low", "medium", "high")

CAMERA_HFOV_DEG = 70.0  # assumed horizontal field of view for clock positions
# A nearness band is left only below threshold * this, so a box hovering at a
# threshold does not flap (chosen on synthetic sequences with 3 % box jitter).
HYSTERESIS = 0.85


def direction_of(center_x: float, ahead_width: float) -> str:
    """left / ahead / right from a horizontal centre in 0..1 and the ahead band width."""
    half = ahead_width / 2.0
    if center_x < 0.5 - half:
        return "left"
    if center_x > 0.5 + half:
        return "right"
    return "ahead"


def clock_of(center_x: float, hfov_deg: float = CAMERA_HFOV_DEG) -> str:
    """Clock position ("11 o'clock") of a horizontal centre, for a camera with that field of view."""
    angle = (center_x - 0.5) * hfov_deg
    hour = round(12 + angle / 30.0)
    hour = (hour - 1) % 12 + 1
    return f"{hour} o'clock"


def proximity_of(height: float, cfg: HazardConfig, current: str | None = None) -> str:
    """far / near / very near from the box height (a fraction of the frame:
    resolution independent). ``current``, the band a track is confirmed in,
    adds the hysteresis; a single image has none."""
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


__all__ = ["CAMERA_HFOV_DEG", "DIRECTIONS", "HYSTERESIS", "PROXIMITIES", "TIERS", "clock_of", "direction_of",
           "proximity_of", "tier_map", "warned_labels"]
