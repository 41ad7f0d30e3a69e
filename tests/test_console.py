"""A quiet console (issue 13, item 7): the real CLI, its console lines counted.

One short line per event a user cares about; the details (full texts,
periodic capture statistics, library chatter) stay in the log and behind -v.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from assist.core.events import format_console_line
from helpers_cli import read_log, run_cli

NO_MODELS = "[hazards]\nenabled = false\n[caption]\nenabled = false\n"
LONGEST_LINE = 240  # a console line a person reads at a glance


def _clip(path: Path, bus_jpg: Path, frames: int) -> Path:
    img = cv2.resize(cv2.imread(str(bus_jpg)), (320, 400))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 400))
    for _ in range(frames):
        writer.write(img)
    writer.release()
    return path


def test_capture_statistics_stay_in_the_log_unless_verbose() -> None:
    stats = {"t": 10.0, "type": "status", "frame": None, "text": None, "event": "capture", "fps": 14.9}
    assert format_console_line(stats) is None
    assert "STATUS capture" in (format_console_line(stats, verbose=True) or "")
    notice = {"t": 3.0, "type": "status", "frame": 7, "text": "Camera lost", "event": "camera_lost", "said": True}
    assert format_console_line(notice) is None  # its SAY line shows it


@pytest.mark.slow
def test_a_run_prints_one_short_line_per_event(tmp_path: Path, bus_jpg: Path, detector_path: Path) -> None:
    clip = _clip(tmp_path / "bus.mp4", bus_jpg, 10)
    log, video = tmp_path / "run.jsonl", tmp_path / "out.mp4"
    proc = run_cli("--video", str(clip), "--headless", "--speech", "none", "--log", str(log),
                   "--save-video", str(video), env={"ASSIST_DETECTOR": str(detector_path)}, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines() + proc.stderr.splitlines()
    assert all(len(ln) <= LONGEST_LINE for ln in lines), [ln for ln in lines if len(ln) > LONGEST_LINE]
    assert not any("OpenVINO" in ln or ln.startswith("Loading ") for ln in lines), lines  # ultralytics chatter
    assert len([ln for ln in lines if "captioner" in ln.lower()]) <= 1, lines  # once, short (when missing)
    assert not any(ln.startswith("WARNING") for ln in lines), lines
    assert "STATUS capture" not in proc.stdout
    events = read_log(log)
    assert any(e["type"] == "status" and e.get("event") == "capture" for e in events)  # still in the log
    last = proc.stdout.splitlines()[-1]
    assert "STATUS stopped" in last and f"log: {log}" in last and f"video: {video}" in last, last


@pytest.mark.slow
def test_an_unwritable_log_is_reported_once(tmp_path: Path, bus_jpg: Path, detector_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    clip = _clip(tmp_path / "bus.mp4", bus_jpg, 3)
    proc = run_cli("--video", str(clip), "--headless", "--speech", "none", "--every-frame", "--log", "/dev/full",
                   env={"ASSIST_DETECTOR": str(detector_path)}, timeout=180)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "cannot write" in ln]
    assert len(said) == 1 and said[0].startswith("error: event log /dev/full"), said
