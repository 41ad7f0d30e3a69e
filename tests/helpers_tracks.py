"""Synthetic detection sequences for policy and tracker tests.

Each generator returns a list of (t, [Detection]) steps as a hazard worker at
``rate_hz`` would see them. Boxes follow simple physics: an object of fixed
size closing at constant speed has an apparent height h(t) = h0 * T0 / (T0 - t)
where T0 is its time to contact at t = 0. Jitter is multiplicative noise on the
box size and additive noise on its centre, like a real detector's.
"""

from __future__ import annotations

import random

from assist.core.detection import Detection

Step = tuple[float, list[Detection]]


def box(cx: float, cy: float, h: float, aspect: float = 0.45) -> tuple[float, float, float, float]:
    """A normalised (x1, y1, x2, y2) box of height ``h`` and width ``aspect * h`` around a centre, clipped."""
    w = aspect * h
    return (max(0.0, cx - w / 2), max(0.0, cy - h / 2), min(1.0, cx + w / 2), min(1.0, cy + h / 2))


def approach(label: str = "person", *, h0: float = 0.12, ttc0: float = 5.0, duration: float = 6.0,
             rate_hz: float = 8.0, cx: float = 0.5, aspect: float = 0.45, max_h: float = 0.95,
             jitter: float = 0.02, seed: int = 0, conf: float = 0.8) -> list[Step]:
    """An object closing at constant speed; its height saturates at ``max_h`` (it fills the view) and stays."""
    rng = random.Random(seed)
    steps: list[Step] = []
    n = int(duration * rate_hz)
    for i in range(n):
        t = i / rate_hz
        h = h0 * ttc0 / (ttc0 - t) if t < ttc0 * (1 - h0 / max_h) else max_h
        h = min(max_h, h) * (1 + rng.gauss(0, jitter))
        c = cx + rng.gauss(0, jitter * 0.2)
        cy = 1.0 - min(0.5, h / 2 + 0.02) if h < 0.96 else 0.5  # feet on the ground line
        steps.append((t, [Detection(label, conf, box(c, cy, h, aspect))]))
    return steps


def still(label: str = "person", *, h: float = 0.4, cx: float = 0.5, duration: float = 10.0,
          rate_hz: float = 8.0, jitter: float = 0.03, seed: int = 0, conf: float = 0.8,
          t0: float = 0.0) -> list[Step]:
    """A stationary object with detector jitter."""
    rng = random.Random(seed)
    steps: list[Step] = []
    for i in range(int(duration * rate_hz)):
        hh = h * (1 + rng.gauss(0, jitter))
        steps.append((t0 + i / rate_hz, [Detection(label, conf, box(cx + rng.gauss(0, jitter * 0.2), 0.6, hh))]))
    return steps


def flicker(steps: list[Step], every: int = 5) -> list[Step]:
    """Keep the detections of one step in ``every``; the others see nothing (a spurious, flickering object)."""
    return [(t, dets if i % every == 0 else []) for i, (t, dets) in enumerate(steps)]


def merge(*sequences: list[Step]) -> list[Step]:
    """Combine sequences step by step (same times), concatenating their detections."""
    out: dict[float, list[Detection]] = {}
    for seq in sequences:
        for t, dets in seq:
            out.setdefault(round(t, 6), []).extend(dets)
    return sorted(out.items())


def run(analyzer, steps: list[Step]) -> list:  # noqa: ANN001 - HazardPolicy, kept loose for reuse
    """Feed steps to ``analyzer.update`` and return every announcement, in order."""
    out = []
    for i, (t, dets) in enumerate(steps):
        out.extend(analyzer.update(dets, t, i))
    return out
