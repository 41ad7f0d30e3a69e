"""One log, two writers (issue 13, item 4): real processes on one ``--log`` path.

Before: both runs opened the file with "w", both exited 0, and the file held
interleaved lines with a lost ``started``. Now the first run holds an exclusive
lock; the second exits 2 naming the first one's pid, without touching its log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from assist.core.log_lock import LogInUse, open_locked_log, pid_file, release_pid_file
from helpers_cli import ROOT, read_log, run_cli

NO_MODELS = "[hazards]\nenabled = false\n[caption]\nenabled = false\n"

HOLDER = """
import sys, time
from pathlib import Path
from assist.core.log_lock import open_locked_log
fh, _ = open_locked_log(Path(sys.argv[1]))
fh.write("held\\n"); fh.flush()
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_second_process_cannot_take_a_held_log(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(log), "30"], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LogInUse) as info:
            open_locked_log(log)
        assert info.value.pid == holder.pid
        assert f"log {log} is in use by another run (pid {holder.pid})" in str(info.value)
        assert log.read_text() == "held\n"  # the loser did not truncate the holder's log
    finally:
        holder.kill()
        holder.wait()
    # The OS released the lock with the process; its stale pid file is simply replaced.
    fh, wrote_pid = open_locked_log(log)
    try:
        assert wrote_pid and pid_file(log).read_text().strip().isdigit()
        assert log.read_text() == ""  # truncated only once the lock is ours
    finally:
        release_pid_file(log)
        fh.close()
    assert not pid_file(log).exists()


def test_devices_are_not_locked() -> None:
    """/dev/null may be every run's log at once."""
    a, _ = open_locked_log(Path("/dev/null"))
    b, wrote = open_locked_log(Path("/dev/null"))
    assert not wrote
    a.close()
    b.close()


@pytest.mark.slow
def test_two_agents_on_one_log(tmp_path: Path) -> None:
    """Two real agents on one --log: the second exits 2 naming the first's pid; the first's log is intact."""
    cfg = tmp_path / "no-models.toml"
    cfg.write_text(NO_MODELS, encoding="utf-8")
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(40):  # 4 s played in real time: the first run is still going when the second starts
        frame = np.full((120, 160, 3), (40, 90, 140), dtype=np.uint8)
        writer.write(cv2.putText(frame, str(i), (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3))
    writer.release()
    log = tmp_path / "shared.jsonl"
    args = [sys.executable, str(ROOT / "run.py"), "--video", str(clip), "--headless", "--speech", "none",
            "--config", str(cfg), "--log", str(log)]
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pid_file(log).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pid_file(log).exists(), "the first run never took the log"
        second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
        out, err = first.communicate(timeout=90)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 2, (second.returncode, second.stderr)
    assert second.stderr.strip() == f"error: log {log} is in use by another run (pid {first.pid}); " \
                                    "stop that run or choose another --log path"
    assert first.returncode == 0, err
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]  # every line valid JSON
    kinds = [e.get("event") for e in events if e["type"] == "status"]
    assert kinds.count("started") == 1 and kinds.count("stopped") == 1 and kinds[-1] == "stopped", kinds
    assert not pid_file(log).exists()


def test_a_source_that_cannot_open_leaves_a_log_saying_what_failed(tmp_path: Path) -> None:
    cfg = tmp_path / "no-models.toml"
    cfg.write_text(NO_MODELS, encoding="utf-8")
    log = tmp_path / "run.jsonl"
    missing = tmp_path / "nowhere.mp4"
    proc = run_cli("--video", str(missing), "--headless", "--speech", "none", "--config", str(cfg),
                   "--log", str(log), timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("video not found") == 1 and "STATUS failed" not in proc.stdout  # said once
    events = read_log(log)
    failed = [e for e in events if e["type"] == "status" and e.get("event") == "failed"]
    assert len(failed) == 1 and str(missing) in failed[0]["text"] and failed[0]["exit_code"] == 3, events
    assert events[-1]["event"] == "stopped" and events[-1]["exit_code"] == 3
