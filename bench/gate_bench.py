"""Scene gate cost per frame (target: under 1 ms at 640x480 on one CPU core).

The frames are a pan tour over real COCO photos when the shared data is
present (still views, pans and cuts exercise every branch), else textured
synthetic frames. OpenCV runs single-threaded, as the gate does on the
capture thread while the detector and captioner own the other cores.

Run alone: ``python bench/gate_bench.py [--frames N] [--width W --height H]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from assist.config import SceneConfig  # noqa: E402
from assist.core.frames import Frame  # noqa: E402
from assist.describe.scene_gate import SceneGate, analysis_frames  # noqa: E402


def _frames(width: int, height: int, n: int) -> tuple[list[np.ndarray], str]:
    """``n`` frames: a pan tour over real photos if available, else synthetic texture."""
    coco = Path(os.environ.get("ASSIST_SHARED", ROOT.parent / "shared")) / "data" / "coco-mini" / "val2017"
    paths = sorted(coco.glob("*.jpg"))[:6]
    if len(paths) >= 2:
        sys.path.insert(0, str(ROOT / "tests"))
        from helpers_clips import load_photo, pan_tour

        clip = pan_tour([load_photo(p, (width, height)) for p in paths], still_s=2.0, pan_s=1.0)
        frames, source = clip.frames, "COCO pan tour"
    else:
        rng = np.random.default_rng(0)
        base = cv2.GaussianBlur(rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8), (0, 0), 3)
        frames = [np.ascontiguousarray(base[:, i % width:i % width + width]) for i in range(0, 4 * n, 4)]
        source = "synthetic texture"
    return [frames[i % len(frames)] for i in range(n)], source


def bench_gate(width: int = 640, height: int = 480, frames: int = 300) -> dict:
    """Time SceneGate.update per frame (best of 3 passes); milliseconds (mean, median, p95, min) and context."""
    prev_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        images, source = _frames(width, height, frames)
        gate = SceneGate(SceneConfig())
        for i in range(10):  # warm-up: allocations, Hanning window
            gate.update(Frame(i, i / 10.0, images[i % len(images)]))
        # best of 3 passes (timeit's rule): other processes on a shared machine only ever add time
        best: list[float] | None = None
        for _ in range(3):
            gate = SceneGate(SceneConfig())
            times = []
            for i, img in enumerate(images):
                t0 = time.perf_counter()
                gate.update(Frame(i, i / 10.0, img))
                times.append((time.perf_counter() - t0) * 1000.0)
            if best is None or statistics.fmean(times) < statistics.fmean(best):
                best = times
        times = best or []
        t0 = time.perf_counter()
        for img in images:
            analysis_frames(img, gate.cfg.analysis_width_px)
        prep_ms = (time.perf_counter() - t0) * 1000.0 / len(images)
    finally:
        cv2.setNumThreads(prev_threads)
    times.sort()
    return {
        "gate_ms_per_frame": statistics.fmean(times),
        "gate_ms_median": statistics.median(times),
        "gate_ms_p95": times[int(0.95 * (len(times) - 1))],
        "gate_ms_min": times[0],
        "downscale_ms_per_frame": prep_ms,
        "frames": len(times),
        "fires": gate.fire_count,
        "size": f"{width}x{height}",
        "source": source,
    }


def main() -> None:
    """Print a table and the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args()
    rows = [bench_gate(a.width, a.height, a.frames)]
    if (a.width, a.height) == (640, 480):
        rows.append(bench_gate(1280, 720, a.frames))
    print(f"{'size':>10} {'mean ms':>8} {'median':>8} {'p95':>8} {'downscale':>10} {'fires':>6}  source")
    for r in rows:
        print(f"{r['size']:>10} {r['gate_ms_per_frame']:8.3f} {r['gate_ms_median']:8.3f} {r['gate_ms_p95']:8.3f} "
              f"{r['downscale_ms_per_frame']:10.3f} {r['fires']:6d}  {r['source']}")
    print(json.dumps(rows[0]))


if __name__ == "__main__":
    main()
