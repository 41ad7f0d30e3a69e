"""How fast "describe" answers with the full-size captioner (issue 16: within 2 s on a 2-core CPU).

A real live run (``run.py --video CLIP --control FIFO``) with the full-size ViT-GPT2
architecture (random weights saved as a model folder by ``bench/run.py``: same
FLOPs and weight bytes as nlpconnect/vit-gpt2, so the same latency; captions are
meaningless) and the real detector at its configured rate. Once the first scene
is described, ``describe`` is written to the FIFO every ``--every`` seconds (a
new writer each time); the log gives, per request, the time from the ``control``
event to the ``caption`` event with ``trigger: "request"`` and to the start of
its speech. Requests land at random points of the gate's own captions, so the
worst case (the caption worker busy with a scene-change caption) is included.

Run alone: ``python bench/control_bench.py [--requests 5] [--json PATH]``
(ASSIST_CACHE keeps the converted graphs: the first run builds them, 35-65 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import saved_full_size_model, shared_detector  # noqa: E402

LIMIT_S = 2.0  # the promise


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines(keepends=True) if ln.endswith("\n")]


def _wait(path: Path, pred: Any, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for e in _events(path):
            if pred(e):
                return e
        if proc.poll() is not None:
            raise RuntimeError(f"run ended early: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for the run")


def _send(fifo: Path, text: str) -> bool:
    """Write one command as a new writer; False when the run no longer reads (it ended)."""
    end = time.monotonic() + 1.0
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader right now (it reopens after each writer)
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
            continue
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return True


def looped(video: Path, times: int, out: Path) -> Path:
    """The real footage played ``times`` times in one file (long enough for every request)."""
    import cv2

    writer = None
    for _ in range(times):
        cap = cv2.VideoCapture(str(video))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0]))
            writer.write(img)
        cap.release()
    if writer is None:
        raise SystemExit(f"cannot read {video}")
    writer.release()
    return out


def bench(requests: int, every_s: float, video: Path) -> dict[str, Any]:
    """Run the agent, send ``requests`` describe commands, return the latencies."""
    folder = saved_full_size_model()
    work = Path(tempfile.mkdtemp(prefix="control-bench-"))
    video = looped(video, 3, work / "clip.mp4")
    fifo, log = work / "ctl", work / "run.jsonl"
    os.mkfifo(fifo)
    env = {**os.environ, "ASSIST_CAPTIONER": str(folder), "ASSIST_DETECTOR": str(shared_detector()),
           "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(ROOT / "run.py"), "--video", str(video), "--headless", "--speech", "none",
           "--control", str(fifo), "--log", str(log), "--log-gate"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(log, lambda e: e["type"] == "gate", proc, 600)  # frames flow: the models are loaded
        time.sleep(1.0)
        for _ in range(requests):
            time.sleep(every_s)
            if not _send(fifo, "describe\n"):
                break
        time.sleep(LIMIT_S + 1.0)
        _send(fifo, "quit\n")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    events = _events(log)
    controls = [e for e in events if e["type"] == "control" and e["command"] == "describe"]
    replies = [e for e in events if e["type"] == "caption" and e.get("trigger") == "request"]
    starts = [e for e in events if e["type"] == "speech" and e["event"] == "start"]
    caption_s, speech_s, overhead_s, busy = [], [], [], 0
    for c in controls:
        reply = next((r for r in replies if r["t"] >= c["t"]), None)
        if reply is None:
            continue
        replies.remove(reply)
        caption_s.append(reply["t"] - c["t"])
        overhead_s.append(reply["t"] - c["t"] - reply["latency_ms"] / 1000.0)  # all but the model call
        said = next((s for s in starts if s["t"] >= reply["t"] and s["text"] == reply["text"]), None)
        if said is not None:
            speech_s.append(said["t"] - c["t"])
        # Was a gate caption being made when the request came (its event lands in between)?
        busy += any(e["type"] == "caption" and not e.get("trigger") and c["t"] < e["t"] < reply["t"]
                    for e in events)
    captions = [e for e in events if e["type"] == "caption"]
    return {
        "requests": len(controls), "answered": len(caption_s), "answered_while_worker_busy": busy,
        "describe_caption_s_p50": round(statistics.median(caption_s), 3) if caption_s else None,
        "describe_caption_s_max": round(max(caption_s), 3) if caption_s else None,
        "describe_speech_start_s_p50": round(statistics.median(speech_s), 3) if speech_s else None,
        "describe_speech_start_s_max": round(max(speech_s), 3) if speech_s else None,
        "describe_overhead_s_max": round(max(overhead_s), 3) if overhead_s else None,
        "caption_latency_ms_p50": round(statistics.median(e["latency_ms"] for e in captions), 1) if captions else None,
        "caption_sources": sorted({e["source"] for e in captions}),
        "within_limit": bool(speech_s) and max(speech_s) <= LIMIT_S and len(speech_s) == len(controls),
        "limit_s": LIMIT_S, "cpus": os.cpu_count(), "load_avg_start": None,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: run the benchmark, print a table, optionally write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--every", type=float, default=2.1, help="seconds between requests")
    ap.add_argument("--video", type=Path, default=Path(os.environ.get("ASSIST_SHARED", ROOT.parent / "shared"))
                    / "data" / "videos" / "sidewalk_firstperson.mp4")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    res = bench(args.requests, args.every, args.video)
    res["load_avg_start"] = round(load, 2)
    res["load_avg_end"] = round(os.getloadavg()[0], 2)
    width = max(len(k) for k in res)
    print("| key | value |\n|---|---|")
    for k, v in res.items():
        print(f"| {k:<{width}} | {v} |")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0 if res["within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
