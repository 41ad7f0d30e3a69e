"""The benchmark's GPU switch on a machine without CUDA: a one-line reason and exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the GPU run itself would start")
def test_caption_bench_device_cuda_without_cuda_exits_2() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "caption_bench.py"), "--device", "cuda"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_listen_figures_of_a_log(tmp_path: Path) -> None:
    """bench/listen.py on a hand-made log: the figures a listener would feel, as a table and JSON."""
    import json

    events = [
        {"t": 0.0, "type": "status", "frame": None, "text": None, "event": "started"},
        {"t": 0.5, "type": "speech", "frame": None, "text": "Bus ahead, 8 metres", "event": "start",
         "priority": "message", "objects": [3]},
        {"t": 2.0, "type": "speech", "frame": None, "text": "Bus ahead, 8 metres", "event": "end", "priority": "message"},
        {"t": 2.0, "type": "speech", "frame": 9, "text": "A street with a bus.", "event": "start", "priority": "text"},
        {"t": 3.0, "type": "speech", "frame": None, "text": "Bus ahead, approaching. Bus ahead, very near.",
         "event": "start", "priority": "important"},
        {"t": 3.0, "type": "speech", "frame": 9, "text": "A street with a bus.", "event": "interrupted",
         "priority": "text"},
        {"t": 6.5, "type": "speech", "frame": None, "text": "Bus ahead, approaching. Bus ahead, very near.",
         "event": "end", "priority": "important"},
        {"t": 7.0, "type": "speech", "frame": None, "text": "Car ahead", "event": "dropped", "priority": "message",
         "reason": "superseded"},
        {"t": 7.0, "type": "speech", "frame": None, "text": "Camera back", "event": "start", "priority": "notification",
         "state": "camera"},
        {"t": 8.0, "type": "speech", "frame": None, "text": "Camera back", "event": "end", "priority": "notification",
         "state": "camera"},
        {"t": 8.5, "type": "speech", "frame": 20, "text": "A quiet street.", "event": "start", "priority": "text"},
        {"t": 9.5, "type": "speech", "frame": 20, "text": "A quiet street.", "event": "end", "priority": "text"},
        {"t": 10.0, "type": "status", "frame": None, "text": None, "event": "end_of_input"},
    ]
    log = tmp_path / "x.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events) + "{not json\n", encoding="utf-8")
    out = tmp_path / "x.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "listen.py"), str(log), "--json", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "talk share" in proc.stdout and "x.jsonl" in proc.stdout
    f = json.loads(out.read_text())["x.jsonl"]
    assert f["utterances"] == 5 and f["warnings"] == 2
    assert f["longest_warning_s"] == 3.5 and f["speaking_s"] == 1.5 + 1.0 + 3.5 + 1.0 + 1.0
    # The description cut off at 3.0 s was not heard: the first one heard whole started at 8.5 s.
    assert f["talk_share"] == 0.8 and f["first_description_s"] == 8.5
    assert f["dropped"] == {"superseded": 1} and f["dropped_warnings"] == {"superseded": 1}
    assert f["names_an_object_twice"] == ["Bus ahead, approaching. Bus ahead, very near."]
    assert f["last_camera_notice"] == "Camera back"
    missing = subprocess.run([sys.executable, str(ROOT / "bench" / "listen.py"), str(tmp_path / "nope.jsonl")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such log file" in missing.stderr and "Traceback" not in missing.stderr
