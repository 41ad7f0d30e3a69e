"""After any camera outage the last camera notice heard is "Camera back": the
real command line on a real MJPEG stream over loopback, made to stall twice in
quick succession (within the repeat cool-down), once by a stalled server and
once by SIGSTOP/SIGCONT of the server's process. Each camera change is one
status event carrying the capture loop's details and the spoken words."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers_capture import MjpegServer
from helpers_cli import ROOT, read_log

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGSTOP/SIGTERM are POSIX")]

CONFIG = """
[camera]
stall_timeout_s = 1.0
reconnect_initial_s = 0.1
reconnect_max_s = 0.3
open_timeout_s = 1.0
status_interval_s = 0.5
[caption]
enabled = false
[hazards]
enabled = false
"""

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from helpers_capture import MjpegServer
srv = MjpegServer(fps=20.0, max_s=120.0)
srv.start()
print(srv.url, flush=True)
time.sleep(120)
"""


def _events(log: Path) -> list[dict]:
    try:
        return read_log(log)
    except (OSError, ValueError):  # a line being written
        return []


def _wait_log(log: Path, pred: Callable[[list[dict]], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred(_events(log)):
            return True
        time.sleep(0.05)
    return False


def _count(events: list[dict], kind: str) -> int:
    return sum(1 for e in events if e["type"] == "status" and e.get("event") == kind)


def _frames(events: list[dict]) -> int:
    return max((e.get("frames", 0) for e in events if e["type"] == "status" and e.get("event") == "capture"),
               default=0)


def _run_two_outages(tmp_path: Path, url: str, stall: Callable[[], None], resume: Callable[[], None]) -> list[dict]:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG)
    log = tmp_path / "run.jsonl"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--video", url, "--headless", "--speech", "none",
                             "--config", str(cfg), "--log", str(log)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_log(log, lambda ev: _frames(ev) >= 5, 90.0), "no frames from the stream"
        for n in (1, 2):
            stall()
            lost_before = _count(_events(log), "camera_lost")
            assert _wait_log(log, lambda ev, k=lost_before: _count(ev, "camera_lost") > k, 10.0), \
                f"outage {n}: no camera_lost"
            time.sleep(0.3)
            resume()
            assert _wait_log(log, lambda ev: _count(ev, "camera_back") == _count(ev, "camera_lost"), 15.0), \
                f"outage {n}: no camera_back"
        # Let the speech finish (the none backend takes each utterance's estimated time).
        time.sleep(2.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "Traceback" not in (err or ""), err
    return read_log(log)


def _check(events: list[dict]) -> None:
    lost = [e for e in events if e["type"] == "status" and e["event"] == "camera_lost"]
    back = [e for e in events if e["type"] == "status" and e["event"] == "camera_back"]
    # One event per change, with the loop's details and the words (a loaded machine may
    # add an outage of its own: the agent itself missing frames for a second).
    assert len(lost) >= 2 and len(back) == len(lost), [e["event"] for e in events if e["type"] == "status"]
    assert all(e["text"] == "Camera lost" and e["source"] and "stall_timeout_s" in e for e in lost)
    assert all(e["text"] == "Camera back" and e["source"] and "reconnects" in e for e in back)
    camera = [e for e in events if e["type"] == "speech" and e.get("state") == "camera"]
    heard = [e["text"] for e in camera if e["event"] == "start"]
    assert heard and heard[-1] == "Camera back", heard
    assert heard.count("Camera back") >= 2, heard  # the second is not hidden by the repeat cool-down
    assert not [e for e in camera if e["event"] in ("suppressed", "dropped") and e["text"] == "Camera back"]


def test_stalled_mjpeg_server_twice(tmp_path: Path) -> None:
    srv = MjpegServer(fps=20.0, max_s=120.0)
    srv.start()
    try:
        events = _run_two_outages(tmp_path, srv.url, srv.stalled.set, srv.stalled.clear)
    finally:
        srv.stop()
    _check(events)


def test_sigstop_sigcont_of_the_camera_server_twice(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(tests=str(Path(__file__).parent))],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip() if server.stdout else ""
        assert url.startswith("http://127.0.0.1:"), url
        events = _run_two_outages(tmp_path, url, lambda: server.send_signal(signal.SIGSTOP),
                                  lambda: server.send_signal(signal.SIGCONT))
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait(5)
    _check(events)
