"""SIGINT and SIGTERM end a run within a second in every state, with a final
``stopped`` event and a complete, valid JSONL log.

Each state is reached for real in a child ``run.py`` (or the fault launcher for a
slow model load), detected from the outside (the log file, a marker, a child
process), and then signalled. The time measured runs from ``send_signal`` to the
moment the process has exited (measured here: 0.02-0.35 s). The SIGINT and
SIGTERM runs of a lasting state run side by side; those of a passing state
(starting, speaking) one after the other.

Not covered, on purpose: the first few hundred milliseconds of interpreter
start-up, before ``assist.app.cli.main`` has installed its handlers. A signal then
gets Python's default behaviour (no log exists yet either), which no program
can avoid; every test below signals after the run has opened its log.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import psutil
import pytest

from helpers_capture import MjpegServer, SilentServer
from helpers_data import needs_espeak
from helpers_reliability import (
    FAST_CONFIG,
    assert_valid_log,
    child_env,
    finish,
    fit,
    launch,
    no_traceback,
    read_log,
    send_and_time,
    wait_for_event,
    write_clip,
)
from helpers_wait import wait_for

SIGNALS = (signal.SIGINT, signal.SIGTERM)
LIMIT_S = 1.0  # the promise: stopped within a second of the signal
STREAM_CONFIG = """
[camera]
stall_timeout_s = 0.5
reconnect_initial_s = 0.2
reconnect_max_s = 0.5
open_timeout_s = 3.0
[hazards]
enabled = false
[caption]
enabled = false
"""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, bus_jpg: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("signal_media")
    bus = fit(cv2.imread(str(bus_jpg)))
    out = {"bus": write_clip(d / "bus.mp4", [(bus, 20.0)]), "fast": d / "fast.toml", "stream": d / "stream.toml"}
    out["fast"].write_text(FAST_CONFIG, encoding="utf-8")
    out["stream"].write_text(STREAM_CONFIG, encoding="utf-8")
    return out


def _stop_both(tmp_path: Path, start: Callable[[Path], subprocess.Popen[str]],
               reach: Callable[[subprocess.Popen[str], Path], Any], *, after: Callable[[Any], None] | None = None,
               together: bool = True) -> list[list[dict[str, Any]]]:
    """Start one run per signal, bring each to the state, signal it, check the exit and the log.

    ``reach(proc, log)`` returns once the run is in the state (its result goes to ``after``
    once the run has ended). ``together``: both runs start at once (for states that
    last); otherwise the second starts when the first has ended. Returns the logs.
    """
    started: dict[signal.Signals, tuple[subprocess.Popen[str], Path]] = {}

    def run_of(sig: signal.Signals) -> tuple[subprocess.Popen[str], Path]:
        if sig not in started:
            log = tmp_path / f"{sig.name}.jsonl"
            started[sig] = (start(log), log)
        return started[sig]

    if together:
        for sig in SIGNALS:
            run_of(sig)
    logs = []
    for sig in SIGNALS:
        proc, log = run_of(sig)
        state = reach(proc, log)
        took = send_and_time(proc, sig)
        print(f"{tmp_path.name}: {sig.name} -> exit in {took:.3f} s")  # shown with pytest -s
        code, out, err = finish(proc, 5.0)
        no_traceback(out, err)
        assert code == 0, (sig.name, code, err[-2000:])
        events = read_log(log)
        assert_valid_log(events, exit_code=0)
        assert events[-1]["reason"] == sig.name.lower(), events[-1]
        assert took < LIMIT_S, f"{sig.name}: exit took {took:.2f} s"
        if after is not None:
            after(state)
        logs.append(events)
    return logs


def _log_exists(proc: subprocess.Popen[str], log: Path) -> None:
    end = time.monotonic() + 60
    while not log.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the run never opened its log"
        time.sleep(0.005)


def test_while_starting_and_importing(tmp_path: Path, media: dict[str, Path], detector_path: Path) -> None:
    """Signalled as soon as the log is open: the runner is importing the detector's libraries."""
    env = child_env(ASSIST_DETECTOR=str(detector_path))

    def start(log: Path) -> subprocess.Popen[str]:
        return launch(["--video", str(media["bus"]), "--headless", "--speech", "none", "--log", str(log)], env=env)

    logs = _stop_both(tmp_path, start, _log_exists, together=False)
    for events in logs:  # it had not started anything yet
        assert not [e for e in events if e["type"] in ("hazard", "caption")]


def test_while_loading_a_slow_model(tmp_path: Path, media: dict[str, Path], detector_path: Path) -> None:
    """A detector load that takes 60 s (injected), stopped in the middle of it."""
    env = child_env(ASSIST_DETECTOR=str(detector_path))

    def start(log: Path) -> subprocess.Popen[str]:
        marker = log.with_suffix(".marks")
        return launch(["--video", str(media["bus"]), "--headless", "--speech", "none", "--config", str(media["fast"]),
                       "--log", str(log)], faults=["--detector-fault", "slow_load:60", "--marker", str(marker)],
                      env=env)

    def loading(proc: subprocess.Popen[str], log: Path) -> None:
        marker = log.with_suffix(".marks")
        end = time.monotonic() + 90
        while not (marker.exists() and "detector-slow_load" in marker.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "the slow load never started"
            time.sleep(0.01)
        time.sleep(0.3)  # well inside the load

    logs = _stop_both(tmp_path, start, loading)
    for events in logs:
        assert [e for e in events if e.get("event") == "started"]
        assert not [e for e in events if e["type"] == "hazard"]


def test_while_reconnecting_to_a_lost_stream(tmp_path: Path, media: dict[str, Path]) -> None:
    """An MJPEG camera over HTTP that goes away: the run is reconnecting when signalled."""
    server = MjpegServer(fps=15.0, max_s=60.0)
    server.start()
    try:
        def start(log: Path) -> subprocess.Popen[str]:
            return launch(["--video", server.url, "--headless", "--speech", "none", "--config", str(media["stream"]),
                           "--log", str(log)])

        def reconnecting(proc: subprocess.Popen[str], log: Path) -> None:
            wait_for_event(log, lambda e: e.get("event") == "speech_backend", proc, 60)
            time.sleep(0.5)  # frames flowing
            server.stop()  # both runs lose their camera (the first call; later ones are no-ops)
            wait_for_event(log, lambda e: e.get("event") == "camera_lost", proc, 10)
            time.sleep(0.3)  # reconnect tries are failing now

        logs = _stop_both(tmp_path, start, reconnecting)
    finally:
        server.stop()
    for events in logs:
        assert [e for e in events if e.get("event") == "camera_lost"]


def test_while_opening_a_stream_that_never_answers(tmp_path: Path, media: dict[str, Path]) -> None:
    """A URL whose server accepts and then says nothing: opening blocks for open_timeout_s."""
    server = SilentServer()
    try:
        url = f"http://127.0.0.1:{server.port}/stream.mjpg"

        def start(log: Path) -> subprocess.Popen[str]:
            return launch(["--video", url, "--headless", "--speech", "none", "--config", str(media["stream"]),
                           "--log", str(log)])

        def opening(proc: subprocess.Popen[str], log: Path) -> None:
            _log_exists(proc, log)
            time.sleep(1.0)  # inside the 3 s open timeout

        _stop_both(tmp_path, start, opening)
    finally:
        server.close()


@needs_espeak
def test_while_speaking_a_warning(tmp_path: Path, media: dict[str, Path], detector_path: Path) -> None:
    """A real espeak-ng child is saying a warning when the signal comes; it dies with the run."""
    env = child_env(ASSIST_DETECTOR=str(detector_path))

    def start(log: Path) -> subprocess.Popen[str]:
        return launch(["--video", str(media["bus"]), "--headless", "--speech", "espeak", "--config",
                       str(media["fast"]), "--log", str(log)], env=env)

    def speaking(proc: subprocess.Popen[str], log: Path) -> list[int]:
        wait_for_event(log, lambda e: e["type"] == "speech" and e["event"] == "start"
                       and e["priority"] == "important", proc, 90, step=0.005)
        # "start" is logged just before the backend spawns espeak-ng (after an earcon): give the child a moment
        kids: list[psutil.Process] = []

        def espeak_running() -> bool:
            kids[:] = [p for p in psutil.Process(proc.pid).children(recursive=True) if "espeak" in p.name()]
            return bool(kids)

        assert wait_for(espeak_running, timeout=3.0, step=0.005), "no espeak-ng child is speaking"
        return [p.pid for p in kids]

    def child_gone(pids: list[int]) -> None:
        time.sleep(0.1)
        for pid in pids:
            alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            assert not alive, f"espeak-ng child {pid} outlived the run"

    logs = _stop_both(tmp_path, start, speaking, after=child_gone, together=False)
    for events in logs:
        warning = [e for e in events if e["type"] == "speech" and e["priority"] == "important"]
        assert warning[0]["event"] == "start"
        assert warning[-1]["event"] in ("interrupted", "end"), warning
