"""Supervised workers: a raising or hanging model call is contained and restarted."""

from __future__ import annotations

import threading
import time

from assist.runtime.workers import SupervisedWorker
from helpers_wait import wait_for


def test_raising_step_is_restarted_with_a_fresh_state_and_one_notice() -> None:
    stop = threading.Event()
    setups: list[str] = []
    faults: list[tuple[str, str]] = []
    recovered = threading.Event()
    calls = {"n": 0}

    def setup() -> str:
        setups.append(threading.current_thread().name)
        return f"model{len(setups)}"

    def step(state: str) -> None:
        calls["n"] += 1
        if calls["n"] in (2, 3):
            raise RuntimeError("boom")
        time.sleep(0.005)

    w = SupervisedWorker("cap", setup, step, stop=stop, deadline_s=1.0, restart_budget=5,
                         on_fault=lambda k, m: faults.append((k, m)), on_recovered=recovered.set)
    w.start()
    assert wait_for(lambda: recovered.is_set() and w.steps > 5)
    stop.set()
    assert w.join(1.0)
    assert len(setups) == 3  # first + two restarts, each a new model in a new thread
    assert len(set(setups)) == 3
    assert w.faults == 2
    assert [k for k, _ in faults] == ["error"]  # one notice per fault episode
    assert "boom" in faults[0][1]


def test_hung_call_is_abandoned_and_the_worker_restarts() -> None:
    stop = threading.Event()
    hang = threading.Event()
    faults: list[str] = []
    steps_after = {"n": 0}
    gens: list[int] = []

    def setup() -> int:
        gens.append(len(gens) + 1)
        return gens[-1]

    def step(gen: int) -> None:
        if gen == 1:
            with w.busy():
                hang.wait(10)  # a model call that never returns in time
        else:
            with w.busy():
                steps_after["n"] += 1
            time.sleep(0.005)

    w = SupervisedWorker("det", setup, step, stop=stop, deadline_s=0.2, on_fault=lambda k, m: faults.append(k))
    t0 = time.monotonic()
    w.start()
    assert wait_for(lambda: steps_after["n"] > 3)
    assert time.monotonic() - t0 < 2.0
    assert faults == ["hung"]
    hang.set()  # the abandoned call returns late: its thread must exit quietly
    time.sleep(0.1)
    stop.set()
    assert w.join(1.0)
    assert w.faults == 1


def test_budget_exhausted_backs_off_and_says_so() -> None:
    stop = threading.Event()
    faults: list[str] = []
    now = {"t": 0.0}

    def step(_: None) -> None:
        raise ValueError("always")

    w = SupervisedWorker("cap", lambda: None, step, stop=stop, deadline_s=1.0, restart_budget=3, window_s=60,
                         backoff_s=30.0, on_fault=lambda k, m: faults.append(k), clock=lambda: now["t"])
    w.start()
    assert wait_for(lambda: w.faults >= 4)
    time.sleep(0.2)
    assert w.faults == 4  # 1 + 3 restarts, then it waits for the back-off
    assert faults == ["error", "gave_up"]
    now["t"] = 31.0  # back-off over: it tries again
    assert wait_for(lambda: w.faults >= 5)
    stop.set()
    assert w.join(1.0)


def test_first_setup_error_is_reported_not_restarted() -> None:
    stop = threading.Event()

    def setup() -> None:
        raise FileNotFoundError("weights gone")

    w = SupervisedWorker("det", setup, lambda s: None, stop=stop, deadline_s=1.0)
    w.start()
    assert w.ready.wait(2.0)
    assert isinstance(w.setup_error, FileNotFoundError)
    time.sleep(0.1)
    assert w.restarts == 0
    stop.set()
    assert w.join(1.0)
