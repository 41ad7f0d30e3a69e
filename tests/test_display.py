"""No display (issue 13, item 3): the agent decides before opening a window.

Qt aborts the whole process (exit 134, no ``stopped`` event, buffered console
lines lost) when OpenCV opens a window without a reachable X server, so the
check must happen first. The X server here is a real TCP listener on
loopback (``DISPLAY=127.0.0.1:N`` means port 6000+N, as SSH X forwarding uses).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from assist.runtime.display import DisplayWatch, check_display, headless_or_preview, quiet_qt
from helpers_cli import ROOT, read_log


def _x_listener() -> tuple[socket.socket, str]:
    """A listening socket on 127.0.0.1:6000+N and the DISPLAY value naming it."""
    for n in range(57, 157):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 6000 + n))
        except OSError:
            sock.close()
            continue
        sock.listen(4)
        return sock, f"127.0.0.1:{n}"
    pytest.skip("no free port in 6057..6156 for a fake X display")


def test_no_display_variables_means_no_display() -> None:
    check = check_display(env={}, platform="linux")
    assert not check.ok and "DISPLAY" in check.reason


def test_macos_and_windows_are_assumed_to_have_a_display() -> None:
    assert check_display(env={}, platform="darwin").ok
    assert check_display(env={}, platform="win32").ok


def test_an_x_display_that_answers_and_then_goes_away() -> None:
    sock, display = _x_listener()
    env = {"DISPLAY": display}
    try:
        assert check_display(env=env, platform="linux").ok
    finally:
        sock.close()
    gone = check_display(env=env, platform="linux")
    assert not gone.ok and display in gone.reason  # refused: the server went away


def test_the_watch_notices_a_display_going_away(monkeypatch: pytest.MonkeyPatch) -> None:
    sock, display = _x_listener()
    monkeypatch.setenv("DISPLAY", display)
    watch = DisplayWatch(every_s=0.0)
    try:
        assert watch.ok()
    finally:
        sock.close()
    assert not watch.ok() and watch.lost
    sock, _ = _x_listener()  # even if a display comes back, the run stays headless
    sock.close()
    assert not watch.ok()


def test_unset_display_gives_one_line_and_headless(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux display rules")
    assert headless_or_preview(False) is True
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no display" in err and "headless" in err
    assert headless_or_preview(True) is True and capsys.readouterr().err == ""  # asked for: nothing to say


def test_qt_chatter_is_silenced_unless_the_user_set_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_LOGGING_RULES", raising=False)
    quiet_qt()
    assert "qt.qpa" in os.environ["QT_LOGGING_RULES"]
    monkeypatch.setenv("QT_LOGGING_RULES", "*.debug=true")
    quiet_qt()
    assert os.environ["QT_LOGGING_RULES"] == "*.debug=true"


@pytest.mark.slow
def test_the_cli_without_a_display_runs_headless_instead_of_aborting(tmp_path: Path, bus_jpg: Path,
                                                                     detector_path: Path) -> None:
    """Without the check this run ends with Qt's abort: exit 134, no ``stopped`` event."""
    img = cv2.resize(cv2.imread(str(bus_jpg)), (320, 400))
    clip = tmp_path / "short.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 400))
    for _ in range(8):
        writer.write(img)
    writer.release()
    log = tmp_path / "run.jsonl"
    # The whole environment is given (run_cli would keep a DISPLAY the test machine has).
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(ASSIST_DETECTOR=str(detector_path), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "--video", str(clip), "--speech", "none",
                           "--log", str(log)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "no display" in ln.lower()]
    assert len(lines) == 1 and "headless" in lines[0], lines
    events = read_log(log)
    assert events[-1]["type"] == "status" and events[-1]["event"] == "stopped", events[-1]
    assert "STATUS stopped" in proc.stdout  # running headless: the console lines are printed


@pytest.mark.slow
def test_a_display_that_goes_away_mid_run_leaves_the_run_going(tmp_path: Path) -> None:
    """A real X server (Xvfb) killed while the preview shows frames: without the
    watch Qt prints "The X11 connection broke" and exits the process (exit 1)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    number = next(n for n in range(140, 240) if not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen([xvfb, f":{number}", "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        sock = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sock.exists(), "Xvfb did not start"
        clip = tmp_path / "long.mp4"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
        for i in range(80):  # 8 s played in real time
            frame = np.full((120, 160, 3), (40, 90, 140), dtype=np.uint8)
            writer.write(cv2.putText(frame, str(i), (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3))
        writer.release()
        cfg = tmp_path / "no-models.toml"
        cfg.write_text("[hazards]\nenabled = false\n[caption]\nenabled = false\n", encoding="utf-8")
        log = tmp_path / "run.jsonl"
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
        env.update(DISPLAY=f":{number}", PYTHONUNBUFFERED="1")
        agent = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--video", str(clip), "--speech", "none",
                                  "--config", str(cfg), "--log", str(log)], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while (not log.exists() or "speech_backend" not in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # the preview is showing frames
        server.terminate()
        out, err = agent.communicate(timeout=60)
    finally:
        server.kill()
        server.wait()
    assert agent.returncode == 0, (agent.returncode, err[-2000:])
    lines = [ln for ln in (out + err).splitlines() if "no display" in ln]
    assert len(lines) == 1 and "went away" in lines[0], (out, err)
    events = read_log(log)
    assert any(e["type"] == "status" and e.get("event") == "preview_unavailable" for e in events)
    assert events[-1]["event"] == "stopped" and events[-1]["reason"] == "end_of_input", events[-1]
    assert "STATUS stopped" in out  # headless from then on: the console lines are printed
