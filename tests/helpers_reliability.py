"""Helpers for the reliability, signal and soak tests: real clips made from real
photos, a child-process runner for ``run.py`` / ``tests/fault_launcher.py``, and
checks on the JSONL event log a run leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from helpers_clips import fit as clips_fit

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().parent / "fault_launcher.py"
CLIP_SIZE = (640, 480)
CLIP_FPS = 10.0

# Tuned for short runs (not for users): hazards are announced on every
# appearance, captions are refreshed every few seconds, deadlines are short so
# a hang is caught within the test, repeats are not suppressed (so a duplicate
# notice would show instead of being hidden by the cool-down).
FAST_CONFIG = """
[camera]
status_interval_s = 2.0
[scene]
settle_s = 0.3
min_interval_s = 1.0
max_interval_s = 2.5
[caption]
deadline_s = 2.0
max_age_s = 10.0
[hazards]
rate_hz = 5.0
deadline_s = 2.0
confirm_frames = 1
class_cooldown_s = 0.0
told_memory_s = 0.0  # the pulse clip shows the same bus again and again: each pulse must be news
[speech]
repeat_cooldown_s = 0.0
earcon = false
"""


def fit(image: np.ndarray, size: tuple[int, int] = CLIP_SIZE) -> np.ndarray:
    """Scale to cover ``size`` (w, h) and centre-crop (see helpers_clips.fit)."""
    return clips_fit(image, size)


def calm_scene(size: tuple[int, int] = CLIP_SIZE, seed: int = 7) -> np.ndarray:
    """A sharp, well-lit view with no hazard in it (coloured panels, like a tiled wall).

    Sharp edges and mid brightness keep the scene gate's quality at "ok", so
    no "too dark"/"too blurred" notice competes with the ones under test.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.full((h, w, 3), 150, np.uint8)
    for _ in range(40):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        cw, ch = int(rng.integers(20, 120)), int(rng.integers(20, 120))
        img[y:y + ch, x:x + cw] = rng.integers(60, 230, 3)
    return img


def write_clip(path: Path, segments: Iterable[tuple[np.ndarray, float]], fps: float = CLIP_FPS) -> Path:
    """A real video file (mp4v) of still segments ``(image, seconds)`` with light seeded noise."""
    rng = np.random.default_rng(1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, CLIP_SIZE)
    assert writer.isOpened(), f"cannot write {path}"
    for image, seconds in segments:
        for _ in range(round(seconds * fps)):
            noise = rng.integers(-4, 5, image.shape, dtype=np.int16)
            writer.write(np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


def pulse_clip(path: Path, bus: np.ndarray, first_calm_s: float = 6.0, pulses: int = 3,
               on_s: float = 2.5, off_s: float = 2.5) -> Path:
    """Calm view first (the first caption is made and any notice is said in
    peace), then a bus that appears and goes ``pulses`` times, so hazard
    events come all through the run."""
    calm = calm_scene()
    segments: list[tuple[np.ndarray, float]] = [(calm, first_calm_s)]
    for _ in range(pulses):
        segments += [(bus, on_s), (calm, off_s)]
    return write_clip(path, segments)


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child run: offline hub, unbuffered output, the real detector."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def launch(args: list[str], *, faults: list[str] | None = None, env: dict[str, str] | None = None,
           preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    """Start ``run.py ARGS`` (or the fault launcher when ``faults`` is given) as a child."""
    cmd = [sys.executable, str(LAUNCHER), *faults, "--", *args] if faults is not None else \
        [sys.executable, str(ROOT / "run.py"), *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env or child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec_fn)  # noqa: PLW1509 - test-only resource limits


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    """Wait for the child (killing it past ``timeout``, which fails the caller); (code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"run did not end within {timeout:g} s (a hang)\nstdout: {out[-2000:]}\n"
                             f"stderr: {err[-3000:]}") from None
    return proc.returncode, out, err


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every event of a JSONL log; fails on a partial or invalid line (the log must be complete)."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"log {path} ends mid-line: {text[-200:]!r}"
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"log {path} line {n} is not JSON ({exc}): {line[:200]!r}") from None
    return events


def log_events_so_far(path: Path) -> list[dict[str, Any]]:
    """Events already written to a log being written (ignores a half-written last line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            out.append(json.loads(line))
    return out


def wait_for_event(path: Path, pred: Callable[[dict[str, Any]], bool], proc: subprocess.Popen[str],
                   timeout: float, step: float = 0.01) -> dict[str, Any]:
    """Poll a growing log until an event matches ``pred``; fails if the child exits or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for event in log_events_so_far(path):
            if pred(event):
                return event
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended (exit {proc.returncode}) before the awaited event\n{err[-3000:]}")
        time.sleep(step)
    proc.kill()
    raise AssertionError(f"awaited event not logged within {timeout:g} s")


def assert_valid_log(events: list[dict[str, Any]], *, exit_code: int = 0) -> None:
    """The log contract: every event has t/type/frame/text, times never go backwards
    by more than a rounding step, and the last event is the final ``stopped``."""
    assert events, "empty log"
    for e in events:
        assert {"t", "type", "frame", "text"} <= set(e), e
    stopped = [e for e in events if e["type"] == "status" and e.get("event") == "stopped"]
    assert len(stopped) == 1, stopped
    assert events[-1] is stopped[0], events[-3:]
    assert stopped[0]["exit_code"] == exit_code, stopped[0]


def no_traceback(*texts: str) -> None:
    """Users never see a Python traceback."""
    for text in texts:
        assert "Traceback" not in text, text[-3000:]


def of(events: list[dict[str, Any]], etype: str, **match: Any) -> list[dict[str, Any]]:
    """Events of one type whose fields equal ``match``."""
    return [e for e in events if e["type"] == etype and all(e.get(k) == v for k, v in match.items())]


def send_and_time(proc: subprocess.Popen[str], sig: signal.Signals, timeout: float = 10.0) -> float:
    """Send ``sig`` and return the seconds until the process has exited."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"{sig.name}: still running {timeout:g} s after the signal") from None
    return time.monotonic() - t0


class Run:
    """A finished child run: exit code, output, the events of its log, marker lines."""

    def __init__(self, code: int, out: str, err: str, events: list[dict[str, Any]], marks: list[str],
                 wall_s: float, log_path: Path | None = None) -> None:
        self.log_path = log_path
        self.code = code
        self.out = out
        self.err = err
        self.events = events
        self.marks = marks
        self.wall_s = wall_s

    def of(self, etype: str, **match: Any) -> list[dict[str, Any]]:
        """Events of one type whose fields equal ``match``."""
        return of(self.events, etype, **match)

    def index(self, event: dict[str, Any]) -> int:
        """Position of ``event`` in the log (the log order is the emit order)."""
        return next(i for i, e in enumerate(self.events) if e is event)

    def after(self, anchor: dict[str, Any], etype: str, **match: Any) -> list[dict[str, Any]]:
        """Events of a type logged after ``anchor``."""
        i = self.index(anchor)
        return [e for e in self.events[i + 1:] if e["type"] == etype and all(e.get(k) == v for k, v in match.items())]

    def __repr__(self) -> str:
        return f"Run(code={self.code}, wall={self.wall_s:.1f}s, err={self.err[-1500:]!r})"


def run_parallel(scenarios: dict[str, dict[str, Any]], workdir: Path, timeout: float = 150.0) -> dict[str, Run]:
    """Start every scenario at once (they mostly wait on real time) and collect them.

    A scenario is ``{"args": [...], "faults": [...] or None, "log": True,
    "preexec_fn": callable}``; ``--log`` and ``--marker`` paths are added here.
    """
    procs: dict[str, tuple[subprocess.Popen[str], Path | None, Path, float]] = {}
    for name, sc in scenarios.items():
        log_path = workdir / f"{name}.jsonl" if sc.get("log", True) else None
        marker = workdir / f"{name}.marks"
        args = list(sc["args"]) + (["--log", str(log_path)] if log_path else [])
        faults = sc.get("faults")
        if faults is not None:
            faults = [*faults, "--marker", str(marker)]
        procs[name] = (launch(args, faults=faults, env=sc.get("env"), preexec_fn=sc.get("preexec_fn")), log_path, marker,
                       time.monotonic())
    runs: dict[str, Run] = {}
    end = time.monotonic() + timeout
    for name, (proc, log_path, marker, t0) in procs.items():
        code, out, err = finish(proc, max(1.0, end - time.monotonic()))
        events = read_log_partial(log_path) if log_path is not None and log_path.exists() else []
        marks = marker.read_text(encoding="utf-8").splitlines() if marker.exists() else []
        runs[name] = Run(code, out, err, events, marks, time.monotonic() - t0, log_path)
    return runs


def read_log_partial(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a log (a disk that filled up may have cut the last one)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out = []
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if not line:
            continue
        if n == len(lines) - 1:  # no newline after it: cut by a full disk
            break
        out.append(json.loads(line))
    return out
