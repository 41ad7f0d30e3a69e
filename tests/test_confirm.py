"""The confirmation rule (assist/hazards/confirm.py) on synthetic detections: evidence over time, not a count."""

from __future__ import annotations

import dataclasses

import pytest

from assist.config import HazardConfig
from assist.hazards.confirm import Confirmed, ConfirmRule
from assist.hazards.policy import HazardPolicy
from helpers_tracks import flicker, run, still

RULE = ConfirmRule(evidence=1.2, window_s=0.4)


def feed(rule: ConfirmRule, runs: list[tuple[float, object, float]], value: object = None) -> list[float]:
    """Push (t, raw, confidence) runs; the times at which the confirmed value changed."""
    c = Confirmed(value=value)
    return [t for t, raw, conf in runs if c.push(raw, t, conf, rule)]


@pytest.mark.parametrize("conf", [0.3, 0.6, 0.95, 1.0])
def test_one_run_never_confirms_however_confident(conf: float) -> None:
    assert feed(RULE, [(0.0, "near", conf)]) == []
    # ... nor does the same single run seen again after the window has passed
    assert feed(RULE, [(0.0, "near", conf), (0.5, "near", conf)]) == []


@pytest.mark.parametrize("rate_hz", [8.0, 15.0, 30.0])
def test_confident_runs_confirm_on_the_second_run_at_any_rate(rate_hz: float) -> None:
    runs = [(i / rate_hz, "near", 0.8) for i in range(6)]
    assert feed(dataclasses.replace(RULE), runs) == [1 / rate_hz]


def test_weak_runs_need_more_of_them() -> None:
    runs = [(i / 30, "near", 0.3) for i in range(10)]
    assert feed(RULE, runs) == [pytest.approx(3 / 30)]  # 4 x 0.3 = 1.2


def test_evidence_older_than_the_window_stops_counting() -> None:
    # 0.5 every 0.3 s: at most two runs (1.0) inside a 0.4 s window: never enough
    runs = [(0.3 * i, "near", 0.5) for i in range(20)]
    assert feed(RULE, runs) == []
    # the same runs 0.1 s apart add up to 1.5 within the window
    assert feed(RULE, [(0.1 * i, "near", 0.5) for i in range(5)]) == [pytest.approx(0.2)]


def test_a_run_of_the_confirmed_value_clears_the_candidate() -> None:
    runs = [(0.00, "very near", 0.7), (0.03, "near", 0.9), (0.07, "very near", 0.7), (0.10, "near", 0.9)]
    assert feed(RULE, runs, value="near") == []
    assert feed(RULE, runs[:1] + runs[2:3], value="near") == [0.07]  # without the contradiction: 1.4


def test_a_different_candidate_starts_afresh() -> None:
    runs = [(0.00, "near", 0.7), (0.03, "very near", 0.7), (0.07, "near", 0.7), (0.10, "near", 0.7)]
    assert feed(RULE, runs, value="far") == [0.10]


def test_evidence_zero_is_the_old_count_rule() -> None:
    rule = ConfirmRule(evidence=0.0, count=3)
    assert feed(rule, [(i * 0.1, "near", 0.3) for i in range(5)]) == [pytest.approx(0.2)]
    assert feed(ConfirmRule(evidence=0.0, count=1), [(0.0, "near", 0.1)]) == [0.0]


def test_the_window_spans_at_least_a_few_detector_periods() -> None:
    slow = ConfirmRule.from_config(dataclasses.replace(HazardConfig(), rate_hz=2.0, confirm_window_s=0.4))
    assert slow.window_s == pytest.approx(1.25)
    # at 2 Hz two confident runs 0.5 s apart still confirm
    assert feed(slow, [(0.0, "near", 0.8), (0.5, "near", 0.8)]) == [0.5]
    fast = ConfirmRule.from_config(dataclasses.replace(HazardConfig(), rate_hz=30.0))
    assert fast.window_s == pytest.approx(0.4) and fast.evidence == pytest.approx(1.2)


# ------------------------------------------------------------------ through the policy
@pytest.mark.parametrize("rate_hz", [8.0, 30.0])
def test_policy_single_frame_false_detection_never_speaks(rate_hz: float) -> None:
    cfg = dataclasses.replace(HazardConfig(), rate_hz=rate_hz)
    # a very near car for one run, in a stream of empty runs
    seq = [(i / rate_hz, []) for i in range(int(2 * rate_hz))]
    car = still("car", h=0.8, duration=1.0, rate_hz=rate_hz, conf=0.99)[0][1]
    seq[int(rate_hz)] = (seq[int(rate_hz)][0], car)
    assert run(HazardPolicy(cfg), seq) == []
    # a false detection twice a second at most, for ten seconds (one run in the window at a time; a
    # detection recurring several times within the window is evidence by design, whatever the rate)
    every = int(rate_hz / 1.6)
    assert run(HazardPolicy(cfg), flicker(still("car", h=0.8, duration=10.0, rate_hz=rate_hz, conf=0.99),
                                            every=every)) == []


def test_policy_speaks_a_real_object_two_camera_frames_after_it_appears() -> None:
    cfg = dataclasses.replace(HazardConfig(), rate_hz=30.0)
    anns = run(HazardPolicy(cfg), still("bus", h=0.7, duration=1.0, rate_hz=30.0, conf=0.85, t0=5.0))
    assert len(anns) == 1 and anns[0].t_capture == pytest.approx(5.0 + 1 / 30)
