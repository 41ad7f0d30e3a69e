"""Many cameras, one model server: N real agent clients against one Triton server on loopback,
next to the same N clients running their detector locally.

    python bench/serve_bench.py [--clients 1 2 4 8] [--seconds 20] [--json out.json]

Each client is the real agent (``run.py --video CLIP --headless --speech none``, live
mode: the clip plays at its own frame rate like a camera) on the real sidewalk footage,
each starting at a different point of it. Per run it reports

* frames served per second: detector calls of all clients together (frames handed to
  the hazard worker minus those it dropped as stale), over the run's wall time;
* warning latency p95 per client: hazard announcement time minus the capture time of
  the frame it is about (capture times from the capture loop's frame counts, logged
  every 0.5 s: about one frame of error);
* for the served runs, the server's own counts from its metrics endpoint (requests,
  executions, so the mean batch size Triton's dynamic batcher formed).

The server is ``python -m assist.serve.launch`` (what ``make serve`` runs), 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CONFIG = """
[camera]
status_interval_s = 0.5
[caption]
enabled = false
[hazards]
confirm_frames = 1
class_cooldown_s = 0.0
"""


def shared_dir() -> Path:
    return Path(os.environ.get("ASSIST_SHARED", ROOT.parent / "shared"))


def make_clips(n: int, seconds: float, folder: Path) -> list[Path]:
    """``n`` clips of the real sidewalk footage (384x288, 12.5 fps), each from a different offset."""
    import cv2

    from helpers_clips import read_video, write_video

    frames, fps = read_video(shared_dir() / "data" / "videos" / "sidewalk_firstperson.mp4")
    small = [cv2.resize(f, (384, 288), interpolation=cv2.INTER_AREA) for f in frames[::2]]
    fps /= 2
    count = int(seconds * fps)
    clips = []
    for k in range(n):
        start = (k * len(small)) // max(n, 1)
        clips.append(write_video((small[(start + i) % len(small)] for i in range(count)), folder / f"cam{k}.mp4",
                                 fps=fps))
    return clips


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def analyse(log_path: Path, fps: float) -> dict[str, Any]:
    """Detector calls, run time and warning latencies of one client's event log."""
    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    caps = [e for e in events if e.get("event") == "capture" and e.get("frames")]
    if not caps:
        return {"ok": False}
    # frame i was captured at t0 + i / fps: t0 from every capture report (the latest frame at time t).
    t0 = statistics.median(e["t"] - (e["frames"] - 1) / fps for e in caps)
    last = caps[-1]
    first_t = t0
    lat = [(e["t"] - (t0 + e["frame"] / fps)) * 1000 for e in events if e["type"] == "hazard"]
    calls = last["frames"] - last.get("hazard_drops", 0)
    return {"ok": True, "calls": calls, "seconds": last["t"] - first_t, "latencies_ms": lat}


def run_clients(clips: list[Path], detector: str, config: Path, folder: Path, tag: str) -> list[dict[str, Any]]:
    """Start one agent per clip at once, wait for all; per-client results."""
    procs = []
    for k, clip in enumerate(clips):
        log = folder / f"{tag}-{k}.jsonl"
        env = dict(os.environ, ASSIST_DETECTOR=detector, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
        procs.append((subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--video", str(clip), "--headless",
                                        "--speech", "none", "--config", str(config), "--log", str(log)],
                                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True), log))
    out = []
    for proc, log in procs:
        _, err = proc.communicate(timeout=600)
        res = analyse(log, 12.5) if log.exists() else {"ok": False}
        res["exit"] = proc.returncode
        if proc.returncode != 0:
            res["error"] = err.strip().splitlines()[-1:] if err.strip() else []
        out.append(res)
    return out


def metrics(port: int) -> dict[str, float]:
    """Triton's counters for the detector: successful requests and executions (batches)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port + 2}/metrics", timeout=5) as r:
        text = r.read().decode()
    got = {}
    for name in ("nv_inference_request_success", "nv_inference_exec_count", "nv_inference_count"):
        m = re.search(rf'^{name}{{model="detector"[^}}]*}} ([0-9.e+]+)$', text, re.M)
        got[name] = float(m.group(1)) if m else 0.0
    return got


def summarise(clients: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [c for c in clients if c.get("ok")]
    if not ok:
        return {"fps_served": None, "p95_ms": [], "failed": len(clients)}
    seconds = max(c["seconds"] for c in ok)
    return {"fps_served": round(sum(c["calls"] for c in ok) / seconds, 1),
            "p95_ms": [round(pct(c["latencies_ms"], 95)) if c["latencies_ms"] else None for c in ok],
            "warnings": sum(len(c["latencies_ms"]) for c in ok), "failed": len(clients) - len(ok)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--seconds", type=float, default=20.0, help="clip length per client")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from helpers_serve import ServerProcess, free_port_triple

    detector = os.environ.get("ASSIST_DETECTOR") or str(shared_dir() / "models" / "yolo11n_int8_openvino_model")
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "seconds": args.seconds, "runs": []}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        folder = Path(tmp)
        config = folder / "bench.toml"
        config.write_text(CONFIG)
        clips = make_clips(max(args.clients), args.seconds, folder)
        port = free_port_triple()
        server = ServerProcess(port, detector=detector)
        try:
            server.wait_ready()
            for n in args.clients:
                before = metrics(port)
                served = run_clients(clips[:n], f"grpc://127.0.0.1:{port + 1}/detector", config, folder, f"s{n}")
                after = metrics(port)
                d = {k: after[k] - before[k] for k in after}
                local = run_clients(clips[:n], detector, config, folder, f"l{n}")
                row = {"clients": n, "served": summarise(served), "local": summarise(local),
                       "server_requests": int(d["nv_inference_request_success"]),
                       "server_batches": int(d["nv_inference_exec_count"]),
                       "mean_batch": round(d["nv_inference_count"] / d["nv_inference_exec_count"], 2)
                       if d["nv_inference_exec_count"] else None}
                results["runs"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            server.stop()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def table(results: dict[str, Any]) -> str:
    lines = [f"serve_bench: {results['cpu_count']} CPU cores, {results['seconds']:g} s clips (384x288, 12.5 fps)",
             "| cameras | served: frames/s | served: warning p95 per client (ms) | mean batch | "
             "local: frames/s | local: warning p95 per client (ms) |",
             "|---:|---:|---|---:|---:|---|"]
    for r in results["runs"]:
        s, loc = r["served"], r["local"]
        lines.append(f"| {r['clients']} | {s['fps_served']} | {s['p95_ms']} | {r['mean_batch']} | "
                     f"{loc['fps_served']} | {loc['p95_ms']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
