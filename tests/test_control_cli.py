"""The command channel end to end: ``python run.py ... --control`` in a child
process, driven through a real FIFO (a new writer for every command, as a
button daemon that restarts would), through a command file with video times
on the virtual clock, and through a real pseudo-terminal with single keys.

The captioner is absent (offline), so descriptions come from the detections:
"at once" is the promise there. The full-size captioner's latency is measured
by ``bench/control_bench.py``, not here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import pytest

from helpers_reliability import (
    FAST_CONFIG,
    ROOT,
    assert_valid_log,
    calm_scene,
    child_env,
    finish,
    fit,
    launch,
    log_events_so_far,
    no_traceback,
    read_log,
    wait_for_event,
    write_clip,
)

pytestmark = pytest.mark.slow

NO_HAZARDS = FAST_CONFIG.replace("[hazards]\n", "[hazards]\nenabled = false\n")
CALM_S = 40.0  # a live run is ended by its quit command long before


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, bus_jpg: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("control_media")
    bus, calm = fit(cv2.imread(str(bus_jpg))), calm_scene()
    out = {"walk": write_clip(d / "walk.mp4", [(calm, 3.0), (bus, 4.0), (calm, 2.0), (bus, 3.0)]),
           "calm": write_clip(d / "calm.mp4", [(calm, CALM_S)]),
           "fast": d / "fast.toml", "quiet": d / "no_hazards.toml"}
    out["fast"].write_text(FAST_CONFIG, encoding="utf-8")
    out["quiet"].write_text(NO_HAZARDS, encoding="utf-8")
    return out


def _every_frame(media: dict[str, Path], log: Path, *extra: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return launch(["--video", str(media["walk"]), "--every-frame", "--headless", "--speech", "none",
                   "--config", str(media["fast"]), "--log", str(log), *extra], env=env)


def _timeless(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log without what differs between any two runs: wall-clock measurements
    (latency_ms) and where the run's outputs went (``outputs`` of ``stopped``: its own log file)."""
    return [{k: v for k, v in e.items() if k not in ("latency_ms", "outputs")} for e in events]


def _strip(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _timeless([e for e in events if e["type"] != "control"])


# ---------------------------------------------------------------- --every-frame, deterministic
def test_every_frame_commands_at_video_times_and_an_idle_fifo_changes_nothing(
        tmp_path: Path, media: dict[str, Path], detector_path: Path) -> None:
    env = child_env(ASSIST_DETECTOR=str(detector_path))
    fifo = tmp_path / "idle.fifo"
    os.mkfifo(fifo)
    cmds = tmp_path / "cmds.txt"
    cmds.write_text("@1.0 describe\n@1.5 Repeat\n@2.0 pause\n@7.5 resume\n@8.0 quieter\n@8.5 louder\n@9.0 dance\n"
                    "\n@10.0 quit\n@11.0 describe\n", encoding="utf-8")
    procs = {"plain": _every_frame(media, tmp_path / "plain.jsonl", env=env),
             "idle": _every_frame(media, tmp_path / "idle.jsonl", "--control", str(fifo), env=env),
             "cmds": _every_frame(media, tmp_path / "cmds.jsonl", "--control", str(cmds), env=env)}
    logs = {}
    for name, proc in procs.items():
        code, out, err = finish(proc, 180)
        no_traceback(out, err)
        assert code == 0, (name, err[-2000:])
        logs[name] = read_log(tmp_path / f"{name}.jsonl")
        assert_valid_log(logs[name])

    # A FIFO nobody writes to: the same run, event for event.
    assert _timeless(logs["idle"]) == _timeless(logs["plain"])

    events = logs["cmds"]
    controls = [e for e in events if e["type"] == "control"]
    # The empty line is refused at once (it has no time); the rest at their video time.
    assert [(c["command"], c["ok"]) for c in controls] == [
        ("", False), ("describe", True), ("Repeat", True), ("pause", True), ("resume", True), ("quieter", True),
        ("louder", True), ("dance", False), ("quit", True)]
    for c in controls[1:]:
        assert c["at"] <= c["t"] < c["at"] + 0.1 + 1e-6, c  # the first frame at or after its time (10 fps)
    assert "unknown command" in controls[7]["reason"] and controls[0]["reason"] == "empty command"
    # Before the first command the run is the plain run.
    first = controls[1]["t"]
    assert [e for e in _strip(events) if e["t"] < first] == [e for e in _strip(logs["plain"]) if e["t"] < first]

    speech = [e for e in events if e["type"] == "speech"]
    starts = [e for e in speech if e["event"] == "start"]
    # describe: captioned now (trigger request) and spoken at once.
    req = [e for e in events if e["type"] == "caption" and e.get("trigger") == "request"]
    assert len(req) == 1 and req[0]["t"] == controls[1]["t"]
    said = next(e for e in starts if e["text"] == req[0]["text"] and e["t"] >= req[0]["t"])
    assert said["t"] - req[0]["t"] < 0.05
    # repeat: the last utterance again, repeat: true.
    rep = [e for e in starts if e.get("repeat")]
    assert len(rep) == 1 and rep[0]["t"] == controls[2]["t"] and rep[0]["text"] == req[0]["text"]
    # pause .. resume: only urgent warnings and what was asked for are said; the rest is dropped "paused".
    t_pause, t_resume = controls[3]["t"], controls[4]["t"]
    paused_starts = [e for e in starts if t_pause <= e["t"] < t_resume]
    assert paused_starts[0]["text"] == "Paused. Urgent warnings only."
    assert all(e["priority"] == "important" for e in paused_starts[1:]), paused_starts
    assert any(e["priority"] == "important" for e in paused_starts), "the bus came very near: said though paused"
    muted = [e for e in speech if e["event"] == "dropped" and e.get("reason") == "paused"]
    assert muted and all(t_pause <= e["t"] < t_resume for e in muted)
    assert any(e["type"] == "hazard" and t_pause <= e["t"] < t_resume for e in events)  # the bus was there
    confirmations = [e["text"] for e in starts if e["t"] >= t_resume and e["priority"] == "text"
                     and e["text"] in ("Resumed.", "Quiet: urgent warnings only.", "Normal.")]
    assert confirmations == ["Resumed.", "Quiet: urgent warnings only.", "Normal."]
    # quit: stopped at once, reason request; the later describe never ran.
    stopped = events[-1]
    assert stopped["reason"] == "request" and stopped["t"] == controls[8]["t"]
    assert max(e["frame"] or 0 for e in events) <= round(controls[8]["t"] * 10) + 1


# ---------------------------------------------------------------- live, through a real FIFO
def _write_fifo(fifo: Path, text: str) -> float:
    """One writer process per command (open, write, close): returns when it was written."""
    subprocess.run([sys.executable, "-c", f"open({str(fifo)!r}, 'w').write({text!r})"], check=True, timeout=10)
    return time.monotonic()


def _controls(log: Path) -> list[dict[str, Any]]:
    return [e for e in log_events_so_far(log) if e["type"] == "control"]


def test_live_run_obeys_every_command_through_a_fifo(tmp_path: Path, media: dict[str, Path]) -> None:
    fifo, log = tmp_path / "ctl", tmp_path / "live.jsonl"
    os.mkfifo(fifo)
    proc = launch(["--video", str(media["calm"]), "--headless", "--speech", "none", "--config", str(media["quiet"]),
                   "--control", str(fifo), "--log", str(log)])
    try:
        wait_for_event(log, lambda e: e["type"] == "caption", proc, 60)  # running, first scene described

        def command(text: str, n: int) -> dict[str, Any]:
            _write_fifo(fifo, text)
            wait_for_event(log, lambda e: len(_controls(log)) >= n, proc, 3.0)
            return _controls(log)[n - 1]

        c = command("describe\n", 1)
        assert c["ok"] is True
        cap = wait_for_event(log, lambda e: e["type"] == "caption" and e.get("trigger") == "request", proc, 2.0)
        assert cap["t"] - c["t"] < 1.0, (c, cap)  # from the detections: at once
        said = wait_for_event(log, lambda e: e["type"] == "speech" and e["event"] == "start"
                              and e["t"] >= cap["t"] and e["text"] == cap["text"], proc, 2.0)
        assert said["t"] - cap["t"] < 0.3

        c = command("REPEAT\n", 2)
        rep = wait_for_event(log, lambda e: e["type"] == "speech" and e.get("repeat") and e["event"] == "start",
                             proc, 2.0)
        assert c["ok"] and rep["text"] == cap["text"] and rep["t"] - c["t"] < 0.3

        c = command("pause\n", 3)
        wait_for_event(log, lambda e: e.get("text") == "Paused. Urgent warnings only." and e.get("event") == "start",
                       proc, 2.0)
        # The gate refreshes the description every 2.5 s (FAST_CONFIG): muted while paused.
        muted = wait_for_event(log, lambda e: e.get("reason") == "paused", proc, 6.0)
        assert muted["t"] > c["t"]
        c = command("resume\n", 4)
        wait_for_event(log, lambda e: e.get("text") == "Resumed." and e.get("event") == "start", proc, 2.0)
        command("quieter\n", 5)
        wait_for_event(log, lambda e: e.get("text") == "Quiet: urgent warnings only." and e.get("event") == "start",
                       proc, 2.0)
        command("louder\n", 6)
        wait_for_event(log, lambda e: e.get("text") == "Normal." and e.get("event") == "start", proc, 2.0)
        bad = command("fly to the moon\n", 7)
        assert bad["ok"] is False and "unknown command" in bad["reason"]
        empty = command("\n", 8)
        assert empty["ok"] is False and empty["reason"] == "empty command"

        t_sent = _write_fifo(fifo, "quit\n")
        proc.wait(timeout=5)
        took = time.monotonic() - t_sent
    finally:
        if proc.poll() is None:
            proc.kill()
    code, out, err = finish(proc, 5)
    no_traceback(out, err)
    assert code == 0, err[-2000:]
    assert took < 1.0, f"quit took {took:.2f} s"
    events = read_log(log)
    assert_valid_log(events)
    assert events[-1]["reason"] == "request"
    assert [e["command"] for e in events if e["type"] == "control"] == [
        "describe", "REPEAT", "pause", "resume", "quieter", "louder", "fly to the moon", "", "quit"]


# ---------------------------------------------------------------- live, single keys on a terminal
class _Terminal:
    """A child run.py whose controlling terminal is a fresh pseudo-terminal."""

    def __init__(self, args: list[str]) -> None:
        self.master, self.slave = os.openpty()
        self.saved = termios.tcgetattr(self.slave)
        self.output = b""
        slave = self.slave

        def make_controlling() -> None:  # in the child, after setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=child_env(),
                                     stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=make_controlling)  # noqa: PLW1509
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def press(self, keys: bytes) -> float:
        os.write(self.master, keys)
        return time.monotonic()

    def restored(self) -> bool:
        return termios.tcgetattr(self.slave) == self.saved

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _start_terminal(media: dict[str, Path], log: Path) -> _Terminal:
    term = _Terminal(["--video", str(media["calm"]), "--headless", "--speech", "none", "--config",
                      str(media["quiet"]), "--log", str(log)])
    end = time.monotonic() + 60
    while b"keys: d describe" not in term.output:
        assert term.proc.poll() is None, term.proc.communicate()
        assert time.monotonic() < end, term.output[-2000:]
        time.sleep(0.02)
    assert not term.restored()  # cbreak mode while running
    return term


def test_terminal_keys_drive_the_run_and_the_terminal_is_restored(tmp_path: Path, media: dict[str, Path]) -> None:
    log = tmp_path / "keys.jsonl"
    term = _start_terminal(media, log)
    try:
        assert term.output.count(b"keys: d describe") == 1
        wait_for_event(log, lambda e: e["type"] == "caption", term.proc, 60)
        term.press(b"d")
        c = wait_for_event(log, lambda e: e["type"] == "control", term.proc, 3.0)
        assert (c["command"], c["via"], c["action"], c["ok"]) == ("d", "terminal", "describe", True)
        cap = wait_for_event(log, lambda e: e["type"] == "caption" and e.get("trigger") == "request", term.proc, 2.0)
        assert cap["t"] - c["t"] < 1.0
        term.press(b"p")
        wait_for_event(log, lambda e: e.get("text") == "Paused. Urgent warnings only.", term.proc, 3.0)
        term.press(b"p")
        wait_for_event(log, lambda e: e.get("text") == "Resumed.", term.proc, 3.0)
        term.press(b"-")
        wait_for_event(log, lambda e: e.get("text") == "Quiet: urgent warnings only.", term.proc, 3.0)
        term.press(b"+")
        wait_for_event(log, lambda e: e.get("text") == "Normal.", term.proc, 3.0)
        term.press(b"r")
        wait_for_event(log, lambda e: e.get("repeat") is True, term.proc, 3.0)
        t_q = term.press(b"q")
        term.proc.wait(timeout=5)
        took = time.monotonic() - t_q
        err = term.proc.stderr.read()
    finally:
        term.close() if term.proc.poll() is None else None
    no_traceback(err)
    assert term.proc.returncode == 0, err[-2000:]
    assert took < 1.0, f"q took {took:.2f} s"
    assert term.restored()
    events = read_log(log)
    assert_valid_log(events)
    assert events[-1]["reason"] == "request"
    assert [(e["command"], e.get("action")) for e in events if e["type"] == "control"] == [
        ("d", "describe"), ("p", "pause"), ("p", "resume"), ("-", "quieter"), ("+", "louder"), ("r", "repeat"),
        ("q", "quit")]
    term.close()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_terminal_restored_after_ctrl_c_and_sigterm(tmp_path: Path, media: dict[str, Path], how: str) -> None:
    log = tmp_path / f"{how}.jsonl"
    term = _start_terminal(media, log)
    try:
        if how == "ctrl-c":
            term.press(b"\x03")  # the terminal driver sends SIGINT (cbreak keeps signals)
        else:
            term.proc.terminate()
        term.proc.wait(timeout=5)
        err = term.proc.stderr.read()
        no_traceback(err)
        assert term.proc.returncode == 0, err[-2000:]
        assert term.restored()
        assert read_log(log)[-1]["reason"] == ("sigint" if how == "ctrl-c" else "sigterm")
    finally:
        term.close()


def test_bad_control_path_is_one_clear_line(tmp_path: Path, media: dict[str, Path]) -> None:
    proc = launch(["--video", str(media["calm"]), "--headless", "--speech", "none", "--control",
                   str(tmp_path / "nope")])
    code, out, err = finish(proc, 60)
    no_traceback(out, err)
    assert code == 2 and "--control" in err and "mkfifo" in err, err
