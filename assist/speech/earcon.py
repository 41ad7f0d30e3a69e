"""Earcons: a short tone before an urgent warning, panned to the hazard's side.

A listener turns towards a sound before the words "bus, left" are over, so the
tone carries the direction in the first ~150 ms. It is a plain numpy sine pair
(two short rising beeps, easy to tell apart from speech) with a constant-power
pan: "left" is loud in the left ear and quiet (not silent) in the right one,
so it still works with one earbud in.
"""

from __future__ import annotations

import math

import numpy as np

#: Sample rate of earcons; espeak-ng also speaks at 22050 Hz, so one output
#: device setting suits both.
EARCON_RATE = 22050

#: Pan position per direction word: -1 = full left, +1 = full right. Not full
#: (0.8) so the far ear still hears something.
_PAN = {"left": -0.8, "right": 0.8, "ahead": 0.0, "center": 0.0, "centre": 0.0}


def pan_position(direction: str | None) -> float:
    """Pan position (-1 left .. +1 right) for a direction such as ``left``,
    ``ahead``, ``right`` or a clock position (``10 o'clock`` is left)."""
    if not direction:
        return 0.0
    d = direction.lower().strip()
    if d in _PAN:
        return _PAN[d]
    if "left" in d:
        return _PAN["left"]
    if "right" in d:
        return _PAN["right"]
    digits = "".join(ch for ch in d if ch.isdigit())
    if digits and ("o'clock" in d or "oclock" in d):
        hour = int(digits) % 12
        # 9..11 o'clock = left, 1..3 = right, 12 = ahead.
        return float(np.clip(math.sin(hour / 12.0 * 2.0 * math.pi), -1.0, 1.0)) * 0.8
    return 0.0


def make_earcon(direction: str | None, *, sample_rate: int = EARCON_RATE, duration_s: float = 0.16,
                freq_hz: float = 880.0, volume: float = 0.5) -> np.ndarray:
    """A stereo float32 tone shaped ``(n, 2)`` (left, right), panned by ``direction``.

    Two beeps (``freq_hz`` then a fifth above) fill ``duration_s``; each has
    5 ms raised-cosine fades so there is no click. ``volume`` is the peak
    amplitude (0..1) of the centre-panned tone.
    """
    n = max(1, int(round(sample_rate * duration_s)))
    half = n // 2
    t = np.arange(n, dtype=np.float64) / sample_rate
    freqs = np.where(np.arange(n) < half, freq_hz, freq_hz * 1.5)
    tone = np.sin(2.0 * np.pi * freqs * t)
    fade = max(1, int(sample_rate * 0.005))
    env = np.ones(n)
    for start, stop in ((0, half), (half, n)):
        k = min(fade, (stop - start) // 2)
        if k > 0:
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))
            env[start:start + k] *= ramp
            env[stop - k:stop] *= ramp[::-1]
    mono = tone * env * float(np.clip(volume, 0.0, 1.0))
    # Constant-power pan: angle 0..pi/2 from full left to full right; the
    # centre gets cos(pi/4) = 0.707 per side, so loudness is the same anywhere.
    angle = (pan_position(direction) + 1.0) * math.pi / 4.0
    left, right = math.cos(angle) * math.sqrt(2.0), math.sin(angle) * math.sqrt(2.0)
    stereo = np.stack([mono * left, mono * right], axis=1)
    return np.clip(stereo, -1.0, 1.0).astype(np.float32)


def earcon_duration(samples: np.ndarray, sample_rate: int = EARCON_RATE) -> float:
    """Length of an earcon in seconds."""
    return len(samples) / float(sample_rate)
