"""All benchmarks of issue 8 in one run: ``python bench/run.py [--quick] [--json PATH]``.

Prints a table and writes JSON with: caption latency (seed = transformers 4-beam, transformers
greedy, ours) and token agreement; detector latency; warning latency with the captioner busy;
scene-gate cost; peak resident memory of a headless process holding both models; and the caption
floor from the machine's measured matmul rate and memory bandwidth.

Timings on a shared machine are noisy: paths are interleaved and medians reported; the JSON also
records the load average before and after so a reader can tell a quiet run from a busy one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench import caption_bench, floor  # noqa: E402


def shared_detector() -> Path:
    """The shared YOLO11n OpenVINO export ($ASSIST_DETECTOR or ../shared/models/...)."""
    env = os.environ.get("ASSIST_DETECTOR")
    if env:
        return Path(env)
    shared = Path(os.environ.get("ASSIST_SHARED", ROOT.parent / "shared"))
    return shared / "models" / "yolo11n_int8_openvino_model"


def detector_candidates() -> dict[str, Path]:
    """Every detector format present: the shared OpenVINO export and anything in models/."""
    found: dict[str, Path] = {}
    p = shared_detector()
    if p.exists():
        found["openvino_int8_shared"] = p
    for q in sorted((ROOT / "models").glob("yolo*")) if (ROOT / "models").is_dir() else []:
        if q.suffix in (".pt", ".onnx", ".engine", ".tflite") or q.name.endswith("_openvino_model"):
            found[q.name.replace(".", "_")] = q
    return found


def scene_images() -> tuple[np.ndarray, np.ndarray]:
    """(empty view, view with a bus ahead) as 640x480 BGR frames: ultralytics' bus.jpg and a blurred copy."""
    import cv2
    from ultralytics.utils import ASSETS

    bus = cv2.resize(cv2.imread(str(Path(ASSETS) / "bus.jpg")), (640, 480))
    # The "empty" view keeps the colours and brightness but no object survives a heavy blur.
    empty = cv2.GaussianBlur(bus, (0, 0), 40)
    return empty, bus


def bench_detector(quick: bool) -> dict[str, Any]:
    """Per-frame latency of every detector format present, at the configured input size."""
    from assist.config import load_config
    from assist.hazards.detector import YoloDetector

    cfg = load_config().hazards
    cands = detector_candidates()
    if not cands:
        return {"detect_ms_p50": None, "detect_note": f"no detector at {shared_detector()} (set ASSIST_DETECTOR)"}
    _, bus = scene_images()
    n = 20 if quick else 60
    res: dict[str, Any] = {}
    for name, path in cands.items():
        det = YoloDetector(str(path), cfg)
        found = det.detect(bus)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            det.detect(bus)
            times.append((time.perf_counter() - t) * 1e3)
        res[f"detect_{name}_ms_p50"] = round(statistics.median(times), 1)
        res[f"detect_{name}_ms_p95"] = round(caption_bench.pct(times, 95), 1)
        res[f"detect_{name}_imgsz"] = det.imgsz
        res[f"detect_{name}_found"] = sorted({d.label for d in found})
    first = next(iter(cands))
    res["detect_ms_p50"] = res[f"detect_{first}_ms_p50"]
    res["detect_ms_p95"] = res[f"detect_{first}_ms_p95"]
    res["detect_model"] = first
    return res


class _BusyCaptioner:
    """Captions random images back to back on a thread, like a caption worker that never idles."""

    def __init__(self, threads: int) -> None:
        import torch

        self.threads = threads
        torch.set_num_threads(threads)
        cfg = _caption_cfg(threads)
        self.model = caption_bench.full_size_model()
        from assist.describe.fast import build_fast_generator

        self.gen = build_fast_generator(self.model, cfg)
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, name="busy-captioner", daemon=True)

    def _run(self) -> None:
        import torch

        x = torch.randn(1, 3, 224, 224)
        while not self.stop.is_set():
            if self.gen is not None:
                self.gen(x)
            else:
                self.model.generate(x, max_new_tokens=16, num_beams=1, do_sample=False)
            self.count += 1

    def __enter__(self) -> _BusyCaptioner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _caption_cfg(threads: int) -> Any:
    from assist.config import load_config

    cfg = load_config().caption
    cfg.threads = threads
    cfg.device = "cpu"
    return cfg


def bench_warning(quick: bool, caption_threads: int, rate_hz: float | None = None) -> dict[str, Any]:
    """Capture time of the first frame showing a hazard -> start of its utterance, captioner busy.

    Components as the pipeline wires them: a 30 fps capture thread into a LatestFrameSlot, the
    hazard loop at ``hazards.rate_hz`` on the freshest frame (detector -> HazardPolicy, whose
    confirmation over several runs is included), the SpeechArbiter (backend ``none``, realtime).
    Each trial shows an empty view for 1 s, then a bus ahead until the warning starts.
    """
    from assist.config import load_config
    from assist.core.clock import RealClock
    from assist.core.events import EventLog
    from assist.core.frames import Frame, LatestFrameSlot
    from assist.hazards.detector import YoloDetector
    from assist.hazards.policy import HazardPolicy
    from assist.speech.arbiter import SpeechArbiter
    from assist.speech.backends import make_backend

    cfg = load_config()
    cfg.speech.backend = "none"
    if rate_hz:
        cfg.hazards.rate_hz = rate_hz
    det_path = shared_detector()
    if not det_path.exists():
        return {"warning_latency_ms_p50": None, "warning_note": "no detector"}
    detector = YoloDetector(str(det_path), cfg.hazards)
    empty, bus = scene_images()
    clock = RealClock()
    trials = 6 if quick else 20
    lat: list[float] = []
    with _BusyCaptioner(caption_threads) as busy:
        time.sleep(1.0)  # let the captioner reach steady state
        for trial in range(trials):
            events = EventLog(clock)
            started = threading.Event()
            t_start: list[float] = []

            def on_event(ev: dict, _t=t_start, _s=started) -> None:
                if ev.get("type") == "speech" and ev.get("event") == "start" and not _s.is_set():
                    _t.append(clock.now())
                    _s.set()

            events.add_sink(on_event)
            arbiter = SpeechArbiter(make_backend(cfg.speech, events), events, cfg.speech, clock=clock, realtime=True)
            arbiter.start()
            analyzer = HazardPolicy(cfg.hazards, cfg.speech.language)
            slot = LatestFrameSlot("hazard")
            stop = threading.Event()
            onset: list[float] = []

            def capture(_slot=slot, _stop=stop, _onset=onset) -> None:
                t0 = clock.now()
                i = 0
                while not _stop.is_set():
                    now = clock.now()
                    hazard = now - t0 >= 1.0
                    if hazard and not _onset:
                        _onset.append(now)
                    _slot.put(Frame(i, now, bus if hazard else empty))
                    i += 1
                    time.sleep(max(0.0, t0 + i / 30.0 - clock.now()))

            cap = threading.Thread(target=capture, daemon=True)
            cap.start()
            period = 1.0 / cfg.hazards.rate_hz
            next_tick = clock.now()
            deadline = clock.now() + 6.0
            while not started.is_set() and clock.now() < deadline:
                frame = slot.get(timeout=0.5)
                if frame is None:
                    continue
                anns = analyzer.update(detector.detect(frame.image), frame.t_capture, frame.index)
                if anns:
                    top = sorted(anns, key=lambda a: a.priority)[0]
                    arbiter.say(top.text, top.priority, t_capture=top.t_capture, frame=top.frame,
                                direction=top.direction)
                next_tick += period
                time.sleep(max(0.0, next_tick - clock.now()))
                next_tick = max(next_tick, clock.now() - period)
            started.wait(timeout=2.0)
            stop.set()
            cap.join(timeout=1)
            arbiter.stop()
            if t_start and onset:
                lat.append((t_start[0] - onset[0]) * 1e3)
            else:
                print(f"  warning trial {trial}: no warning within 6 s", file=sys.stderr)
        captions = busy.count
    if not lat:
        return {"warning_latency_ms_p50": None, "warning_note": "no warning was spoken"}
    return {
        "warning_latency_ms_p50": round(statistics.median(lat), 1),
        "warning_latency_ms_p95": round(caption_bench.pct(lat, 95), 1),
        "warning_trials": len(lat),
        "warning_captions_during": captions,
        "warning_caption_threads": caption_threads,
        "warning_rate_hz": cfg.hazards.rate_hz,
        "warning_confirm_frames": cfg.hazards.confirm_frames,
    }


def bench_gate() -> dict[str, Any]:
    """gate_ms_per_frame from the gate engineer's bench/gate_bench.py (when present)."""
    try:
        from bench.gate_bench import bench_gate as run_gate
    except ImportError as exc:
        return {"gate_ms_per_frame": None, "gate_note": f"bench/gate_bench.py unavailable: {exc}"}
    r = run_gate(width=640, height=480, frames=300)
    return {"gate_ms_per_frame": round(r["gate_ms_per_frame"], 3),
            "gate_ms_p95": round(r.get("gate_ms_p95", float("nan")), 3)}


def saved_full_size_model() -> Path:
    """The random full-size ViT-GPT2 saved once as a model folder (+ ViT processor + a GPT-2 BPE tokenizer),
    so the memory child loads it through the real loading code, as the agent does."""
    from assist.describe.fast.onnx_runtime import cache_root

    folder = cache_root() / "bench-vit-gpt2-random"
    if (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file():
        return folder
    sys.path.insert(0, str(ROOT / "tests"))
    from transformers import ViTImageProcessor

    from helpers_caption import build_gpt2_tokenizer

    model = caption_bench.full_size_model()
    model.generation_config.eos_token_id = 50256
    model.save_pretrained(folder)
    ViTImageProcessor().save_pretrained(folder)
    build_gpt2_tokenizer(["a dog on a couch", "a bus on a street", "a person riding a bike"], 300).save_pretrained(folder)
    return folder


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM of its own address space.

    Not ``ru_maxrss``: Linux carries it across fork + exec, so a child started by this (4 GB) benchmark
    process reported the parent's peak, not its own (how the 2.0-4.2 GB readings of a 1.2 GB child arose).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(threads: int, folder: str) -> None:
    """(Child process) load both models as a headless run does, caption and detect once, print peak RSS."""
    import torch

    torch.set_num_threads(threads)
    out: dict[str, Any] = {}
    from assist.config import load_config
    from assist.describe.captioner import load_captioner

    cfg = load_config().caption
    cfg = type(cfg)(**{**cfg.__dict__, "model": folder, "device": "cpu", "threads": threads})
    t0 = time.perf_counter()
    cap = load_captioner(cfg, folder)
    out["captioner_load_s"] = time.perf_counter() - t0
    cap.caption(scene_images()[1])
    out["after_captioner_mb"] = peak_rss_mb()
    det = shared_detector()
    if det.exists():
        from assist.hazards.detector import YoloDetector

        YoloDetector(str(det), load_config().hazards).detect(scene_images()[1])
    cap.caption(scene_images()[0])
    out["peak_rss_mb"] = peak_rss_mb()
    out["rss_backend"] = f"{cap.backend}:{getattr(cap._fast, 'precision', 'transformers')}"
    out["rss_fp32_model_loaded"] = cap._model is not None
    print("RSS_JSON " + json.dumps(out))


def _rss_run(threads: int, folder: Path, cache: str) -> dict[str, Any]:
    env = {**os.environ, "ASSIST_CACHE": cache}
    proc = subprocess.run([sys.executable, __file__, "--rss-child", "--caption-threads", str(threads),
                           "--rss-model", str(folder)], capture_output=True, text=True, timeout=500, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RSS_JSON "):
            r = json.loads(line[len("RSS_JSON "):])
            return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}
    return {"peak_rss_mb": None, "rss_note": proc.stderr.strip().splitlines()[-1:] or "child failed"}


def bench_rss(threads: int) -> dict[str, Any]:
    """peak_rss_mb of a child process holding the captioner (loaded from a saved folder) and the detector.

    First with an empty cache (the cold first run builds the ONNX graphs), then again with it warm:
    ``peak_rss_mb`` is the warm run, as every run after the first."""
    import tempfile

    folder = saved_full_size_model()
    with tempfile.TemporaryDirectory(prefix="assist-rss-") as cache:
        cold = _rss_run(threads, folder, cache)
        warm = _rss_run(threads, folder, cache)
    res = dict(warm)
    res["peak_rss_cold_mb"] = cold.get("peak_rss_mb")
    res["captioner_load_cold_s"] = cold.get("captioner_load_s")
    return res


def table(res: dict[str, Any]) -> str:
    """Two-column text table."""
    width = max(len(k) for k in res)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in res.items())


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark; print a table; write JSON."""
    ap = argparse.ArgumentParser(description="Issue 8 benchmarks (caption, detector, warning, gate, memory, floor)")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (whole run under 10 minutes)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                    help="torch threads for the caption comparison (all paths alike)")
    ap.add_argument("--caption-threads", type=int, default=1,
                    help="caption.threads while measuring warning latency and memory (the 2-core recommendation)")
    ap.add_argument("--hazard-rate-hz", type=float, default=None,
                    help="override hazards.rate_hz for the warning-latency run (default: config.toml)")
    ap.add_argument("--only", default="", help="comma list: floor,caption,detect,gate,warning,rss")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rss-model", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(args.caption_threads, args.rss_model)
        return 0
    only = set(filter(None, args.only.split(",")))
    t0 = time.perf_counter()
    res: dict[str, Any] = {"quick": args.quick, "load_avg_start": round(os.getloadavg()[0], 2),
                           "cpu_count": os.cpu_count()}
    steps = [("floor", lambda: floor.run(args.quick, args.threads)),
             ("caption", lambda: caption_bench.run(args.quick, args.threads)),
             ("detect", lambda: bench_detector(args.quick)),
             ("gate", bench_gate),
             ("warning", lambda: bench_warning(args.quick, args.caption_threads, args.hazard_rate_hz)),
             ("rss", lambda: bench_rss(args.caption_threads))]
    for name, fn in steps:
        if only and name not in only:
            continue
        t = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        try:
            res.update(fn())
        except Exception as exc:  # noqa: BLE001 - one failing bench must not hide the others
            res[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
        print(f"[{name}] {time.perf_counter() - t:.0f} s", flush=True)
    res["load_avg_end"] = round(os.getloadavg()[0], 2)
    res["total_s"] = round(time.perf_counter() - t0, 1)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
