"""No display (issue 13, item 3): the agent decides before opening a window,
and the window lives in a child process, so a display that goes away mid-run
(Qt then exits the process it is in) ends the window only.

Qt aborts the whole process (exit 134, no ``stopped`` event, buffered console
lines lost) when OpenCV opens a window without a reachable X server, so the
check must happen first. The X server here is a real TCP listener on
loopback (``DISPLAY=127.0.0.1:N`` means port 6000+N, as SSH X forwarding uses).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from assist.runtime.display import check_display, headless_or_preview, quiet_qt
from assist.runtime.preview import PreviewWindow
from helpers_cli import ROOT, read_log
from helpers_data import missing


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


def test_offscreen_qt_is_a_display_only_where_qt_has_that_plugin() -> None:
    """QT_QPA_PLATFORM=offscreen with the PyPI wheel (xcb plugin only) used to count as a
    display: the preview child died at its first frame. Now it is decided up front."""
    import cv2

    plugins = Path(cv2.__file__).parent / "qt" / "plugins" / "platforms"
    has = any(p.name.startswith("libqoffscreen") for p in plugins.glob("*")) if plugins.is_dir() else True
    check = check_display(env={"QT_QPA_PLATFORM": "offscreen"}, platform="linux")
    assert check.ok is has
    if not has:
        assert "offscreen" in check.reason


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


def _counting_clip(tmp_path: Path, frames: int) -> Path:
    """A 10 fps clip of numbered frames."""
    clip = tmp_path / "long.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(frames):
        frame = np.full((120, 160, 3), (40, 90, 140), dtype=np.uint8)
        writer.write(cv2.putText(frame, str(i), (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3))
    writer.release()
    return clip


@contextlib.contextmanager
def _xvfb(first: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real X server (Xvfb) for the duration; yields its DISPLAY value and process (skips when not installed)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        missing("Xvfb is not installed (apt-get install xvfb, or make test as root)")
    number = next(n for n in range(first, first + 100) if not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen([xvfb, f":{number}", "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        sock = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sock.exists(), "Xvfb did not start"
        yield f":{number}", server
    finally:
        server.kill()
        server.wait()


def _wait_for(log: Path, fragment: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (not log.exists() or fragment not in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists() and fragment in log.read_text(), f"{fragment} never logged"


def _run_with_preview(tmp_path: Path, display: str, frames: int) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    """The agent on a counting clip of ``frames`` frames (10 fps, played in real time), no models, its
    preview window on ``display``: (process, its log, its environment)."""
    clip = _counting_clip(tmp_path, frames)
    cfg = tmp_path / "no-models.toml"
    cfg.write_text("[hazards]\nenabled = false\n[caption]\nenabled = false\n", encoding="utf-8")
    log = tmp_path / "run.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(DISPLAY=display, PYTHONUNBUFFERED="1")
    agent = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--video", str(clip), "--speech", "none",
                              "--config", str(cfg), "--log", str(log)], cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return agent, log, env


@pytest.mark.slow
def test_a_display_that_goes_away_mid_run_leaves_the_run_going(tmp_path: Path) -> None:
    """A real X server (Xvfb) killed while the preview shows frames: Qt prints
    "The X11 connection broke" and exits the process it runs in (exit 1); with
    the window in a child process, that is the child only."""
    with _xvfb(140) as (display, server):
        agent, log, _env = _run_with_preview(tmp_path, display, 80)  # 8 s
        _wait_for(log, "speech_backend", 60)
        time.sleep(1.5)  # the preview is showing frames
        server.terminate()
        out, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, (agent.returncode, err[-2000:])
    lines = [ln for ln in (out + err).splitlines() if "no display" in ln]
    assert len(lines) == 1 and "went away" in lines[0], (out, err)
    events = read_log(log)
    assert any(e["type"] == "status" and e.get("event") == "preview_unavailable" for e in events)
    assert events[-1]["event"] == "stopped" and events[-1]["reason"] == "end_of_input", events[-1]
    assert "STATUS stopped" in out  # headless from then on: the console lines are printed


@pytest.fixture
def x_display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DISPLAY set to a fresh Xvfb (OpenCV's Qt has the xcb plugin only: no offscreen)."""
    with _xvfb(340) as (display, _server):
        monkeypatch.setenv("DISPLAY", display)
        monkeypatch.setenv("QT_LOGGING_RULES", "*=false")
        yield display


@pytest.mark.usefixtures("x_display")
def test_the_window_child_shows_frames_and_ends_when_its_pipe_closes() -> None:
    window = PreviewWindow(lambda code: None)
    try:
        for i in range(30):  # faster than the child draws: never blocks, the newest frame wins
            window.show(np.full((120, 160, 3), i, dtype=np.uint8))
            time.sleep(0.005)
        deadline = time.monotonic() + 20
        while window.shown == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert window.shown >= 1 and not window.ended, (window.shown, window.proc.poll())
        assert window.shown + window.dropped <= 30
        started = time.monotonic()
        code = window.wait(0.5)  # exits by itself when its pipe closes; killed if it has not by then
        took = time.monotonic() - started
        assert code is not None and took < 1.0, (code, took)  # inside the ~1 s shutdown budget
        assert not _running(window.proc.pid)
    finally:
        window.proc.kill()
        window.proc.wait()


@pytest.mark.usefixtures("x_display")
def test_the_window_child_never_outlives_the_agent() -> None:
    """An agent killed with SIGKILL (no shutdown code runs): its closed pipe ends the child."""
    script = ("import sys, time, numpy as np\n"
              "from assist.runtime.preview import PreviewWindow\n"
              "w = PreviewWindow(lambda code: None)\n"
              "w.show(np.zeros((60, 80, 3), np.uint8))\n"
              "print(w.proc.pid, flush=True)\n"
              "time.sleep(60)\n")
    agent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert agent.stdout is not None
        child = int(agent.stdout.readline())
        assert Path(f"/proc/{child}").exists()
    finally:
        agent.kill()
        agent.wait()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child), "the preview child outlived the agent"


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, ended but not yet reaped by init, counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _preview_child_of(pid: int, timeout_s: float = 30) -> int:
    """The pid of the agent's preview window process."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (proc / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid and b"preview_child" in cmdline:
                return int(proc.name)
        time.sleep(0.05)
    pytest.fail("the agent started no preview window process")


@pytest.mark.slow
def test_window_keys_reach_the_control_channel_and_a_killed_window_leaves_the_run_going(tmp_path: Path) -> None:
    """Under a real X server: a key pressed in the window (xdotool) is a command;
    then the window's process is killed (SIGKILL) and the run goes on headless."""
    xdotool = shutil.which("xdotool")
    if xdotool is None:
        missing("xdotool is not installed (apt-get install xdotool, or make test as root)")
    with _xvfb(240) as (display, _server):
        agent, log, env = _run_with_preview(tmp_path, display, 120)  # 12 s
        try:
            child = _preview_child_of(agent.pid)
            _wait_for(log, "speech_backend", 60)
            found = subprocess.run([xdotool, "search", "--sync", "--name", "^assist$"], env=env,
                                   capture_output=True, text=True, timeout=20)
            window_id = found.stdout.split()[0]
            subprocess.run([xdotool, "windowfocus", "--sync", window_id], env=env, check=True, timeout=10)
            subprocess.run([xdotool, "key", "r"], env=env, check=True, timeout=10)  # r: repeat
            _wait_for(log, '"via": "window"', 10)
            os.kill(child, signal.SIGKILL)
            out, err = agent.communicate(timeout=60)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
    assert agent.returncode == 0, (agent.returncode, err[-2000:])
    events = read_log(log)
    keys = [e for e in events if e["type"] == "control" and e.get("via") == "window"]
    assert [k["command"] for k in keys] == ["r"], keys
    lost = [e for e in events if e["type"] == "status" and e.get("event") == "preview_unavailable"]
    assert len(lost) == 1 and "signal 9" in lost[0]["text"], lost
    lines = [ln for ln in (out + err).splitlines() if "preview closed" in ln]
    assert len(lines) == 1 and "headless" in lines[0], (out, err)
    assert events[-1]["event"] == "stopped" and events[-1]["reason"] == "end_of_input", events[-1]
    assert "STATUS stopped" in out  # headless from then on: the console lines are printed
