"""Earcons: short, stereo, panned towards the hazard, click-free; survive a WAV round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assist.speech.earcon import EARCON_RATE, make_earcon, pan_position
from assist.speech.wav import channel_rms, read_wav, rms, write_wav


def _lr(samples: np.ndarray) -> tuple[float, float]:
    return rms(samples[:, 0]), rms(samples[:, 1])


def test_earcon_is_short_stereo_and_audible():
    tone = make_earcon("left")
    assert tone.ndim == 2 and tone.shape[1] == 2 and tone.dtype == np.float32
    assert 0.05 <= len(tone) / EARCON_RATE <= 0.3
    assert np.abs(tone).max() <= 1.0
    assert max(_lr(tone)) > 0.1


@pytest.mark.parametrize("direction, louder", [("left", 0), ("right", 1), ("9 o'clock", 0), ("2 o'clock", 1),
                                               ("front-left", 0)])
def test_earcon_is_panned_towards_the_hazard(direction: str, louder: int):
    left, right = _lr(make_earcon(direction))
    levels = (left, right)
    assert levels[louder] > 3.0 * levels[1 - louder], (direction, levels)
    assert levels[1 - louder] > 0.0  # the far ear still hears it (one earbud in)


def test_ahead_or_unknown_is_centred_and_as_loud_as_a_side():
    for direction in ("ahead", None, "12 o'clock"):
        left, right = _lr(make_earcon(direction))
        assert left == pytest.approx(right, rel=0.05)
    # Constant-power pan: total energy is the same wherever the tone sits.
    total = [sum(x * x for x in _lr(make_earcon(d))) for d in ("left", "ahead", "right")]
    assert max(total) == pytest.approx(min(total), rel=0.05)
    assert pan_position("left") < 0 < pan_position("right") and pan_position("ahead") == 0


def test_earcon_starts_and_ends_without_a_click():
    tone = make_earcon("right", volume=0.8)
    edge = int(0.001 * EARCON_RATE)
    peak = np.abs(tone).max()
    assert peak > 0.5
    # Starts and ends at zero and ramps up over milliseconds (a step would click).
    assert np.abs(tone[0]).max() < 1e-3 and np.abs(tone[-1]).max() < 1e-3
    assert np.abs(tone[:edge]).max() < 0.2 * peak and np.abs(tone[-edge:]).max() < 0.2 * peak


def test_earcon_wav_round_trip_keeps_the_panning(tmp_path: Path):
    path = write_wav(tmp_path / "left.wav", make_earcon("left"), EARCON_RATE)
    samples, rate = read_wav(path)
    assert rate == EARCON_RATE and samples.shape[1] == 2
    left, right = channel_rms(path)
    assert left > 3.0 * right > 0.0
