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

# bench.caption_bench and bench.floor import torch: they are imported where used, so the memory child
# (--rss-child) holds only what the agent itself imports (sixth pass: the warm captioner needs no torch).


def _caption_bench() -> Any:
    from bench import caption_bench

    return caption_bench


def _floor() -> Any:
    from bench import floor

    return floor


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
    import importlib.util

    import cv2

    # ultralytics' own bus.jpg, found without importing ultralytics (which imports torch)
    spec = importlib.util.find_spec("ultralytics")
    assets = Path(next(iter(spec.submodule_search_locations))) / "assets"  # type: ignore[union-attr, arg-type]
    bus = cv2.resize(cv2.imread(str(assets / "bus.jpg")), (640, 480))
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
        res[f"detect_{name}_ms_p95"] = round(_caption_bench().pct(times, 95), 1)
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
        self.model = _caption_bench().full_size_model()
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


def _warning_trial(detector: Any, analyzer: Any, arbiter_parts: tuple[Any, Any, Any], clock: Any, frames: Any,
                   rate_hz: float, *, hold_flicker: bool = False, duration_s: float = 6.0) -> dict[str, Any]:
    """One live trial: a 30 fps capture thread showing ``frames(t_since_start) -> (image, is_hazard)``, the hazard
    loop at up to ``rate_hz`` on the freshest frame (detector -> HazardPolicy), the SpeechArbiter.

    Returns the onset time (first hazard frame captured), the first utterance's start, the number of
    utterances, the detector's run times and the hazard frames the detector actually looked at. With
    ``hold_flicker`` a hazard frame stays in the slot until the detector took it (the flicker test must
    show the false frame to the detector, not lose it to a newer frame)."""
    from assist.core.events import EventLog
    from assist.core.frames import Frame, LatestFrameSlot
    from assist.speech.arbiter import SpeechArbiter
    from assist.speech.backends import make_backend

    cfg, _, _ = arbiter_parts
    events = EventLog(clock)
    starts: list[float] = []
    started = threading.Event()

    def on_event(ev: dict) -> None:
        if ev.get("type") == "speech" and ev.get("event") == "start":
            starts.append(clock.now())
            started.set()

    events.add_sink(on_event)
    arbiter = SpeechArbiter(make_backend(cfg.speech, events), events, cfg.speech, clock=clock, realtime=True)
    arbiter.start()
    slot = LatestFrameSlot("hazard")
    stop = threading.Event()
    onset: list[float] = []
    hazard_frames: set[int] = set()

    def capture() -> None:
        t0 = clock.now()
        i = 0
        while not stop.is_set():
            now = clock.now()
            image, hazard = frames(now - t0)
            if hazard:
                hazard_frames.add(i)
                if not onset:
                    onset.append(now)
            slot.put(Frame(i, now, image))
            if hazard and hold_flicker:
                while slot.pending and not stop.is_set():
                    time.sleep(0.001)
            i += 1
            time.sleep(max(0.0, t0 + i / 30.0 - clock.now()))

    cap = threading.Thread(target=capture, daemon=True)
    cap.start()
    period = 1.0 / rate_hz
    run_ms: list[float] = []
    seen_hazard = 0
    t_end = clock.now() + duration_s
    busy_s = 0.0
    t_first = clock.now()
    while clock.now() < t_end and not (started.is_set() and not hold_flicker):
        t0 = clock.now()
        frame = slot.get(timeout=0.2)
        if frame is None:
            continue
        t_det = time.perf_counter()
        dets = detector.detect(frame.image)
        run_ms.append((time.perf_counter() - t_det) * 1e3)
        busy_s += run_ms[-1] / 1e3
        if frame.index in hazard_frames and dets:
            seen_hazard += 1
        anns = analyzer.update(dets, frame.t_capture, frame.index)
        if anns:
            top = sorted(anns, key=lambda a: a.priority)[0]
            arbiter.say(top.text, top.priority, t_capture=top.t_capture, frame=top.frame, direction=top.direction)
        time.sleep(max(0.0, period - (clock.now() - t0)))
    started.wait(timeout=0.5 if hold_flicker else 2.0)
    stop.set()
    cap.join(timeout=1)
    arbiter.stop()
    return {"onset": onset[0] if onset else None, "start": starts[0] if starts else None, "spoken": len(starts),
            "run_ms": run_ms, "seen_hazard": seen_hazard, "duty": busy_s / max(1e-9, clock.now() - t_first)}


def bench_warning(quick: bool, caption_threads: int, rate_hz: float | None = None) -> dict[str, Any]:
    """Capture time of the first frame showing a hazard -> start of its utterance, captioner busy; and the
    flicker test: a single false frame (the bus for one camera frame) must never be spoken.

    Components as the pipeline wires them: a 30 fps capture thread into a LatestFrameSlot, the hazard loop
    at up to ``hazards.rate_hz`` on the freshest frame (detector -> HazardPolicy, whose confirmation by
    evidence is included), the SpeechArbiter (backend ``none``, realtime). A latency trial shows an empty
    view for 1 s, then a bus ahead until the warning starts. A flicker trial shows the empty view for 3 s
    with the bus in exactly one frame (held until the detector took it) and counts what is spoken.
    """
    from assist.config import load_config
    from assist.core.clock import RealClock
    from assist.hazards.detector import YoloDetector
    from assist.hazards.policy import HazardPolicy

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
    trials = 8 if quick else 20
    flicker_trials = 4 if quick else 10
    lat: list[float] = []
    run_ms: list[float] = []
    duty: list[float] = []
    false_count = flicker_seen = 0
    parts = (cfg, None, None)
    with _BusyCaptioner(caption_threads) as busy:
        time.sleep(1.0)  # let the captioner reach steady state
        for trial in range(trials):
            r = _warning_trial(detector, HazardPolicy(cfg.hazards, cfg.speech.language), parts, clock,
                               lambda t: (bus, True) if t >= 1.0 else (empty, False), cfg.hazards.rate_hz)
            run_ms += r["run_ms"]
            duty.append(r["duty"])
            if r["start"] is not None and r["onset"] is not None:
                lat.append((r["start"] - r["onset"]) * 1e3)
            else:
                print(f"  warning trial {trial}: no warning within 6 s", file=sys.stderr)
        for _ in range(flicker_trials):
            # the bus in one frame only, ~1.5 s into 3 s of empty view
            state = {"shown": False}

            def frames(t: float, _s=state) -> tuple[np.ndarray, bool]:
                if t >= 1.5 and not _s["shown"]:
                    _s["shown"] = True
                    return bus, True
                return empty, False

            r = _warning_trial(detector, HazardPolicy(cfg.hazards, cfg.speech.language), parts, clock, frames,
                               cfg.hazards.rate_hz, hold_flicker=True, duration_s=3.0)
            false_count += r["spoken"]
            flicker_seen += r["seen_hazard"]
        captions = busy.count
    if not lat:
        return {"warning_latency_ms_p50": None, "warning_note": "no warning was spoken"}
    return {
        "warning_latency_ms_p50": round(statistics.median(lat), 1),
        "warning_latency_ms_p95": round(_caption_bench().pct(lat, 95), 1),
        "warning_trials": len(lat),
        "warning_false_count": false_count,
        "warning_flicker_trials": flicker_trials,
        "warning_flicker_frames_detected": flicker_seen,
        "warning_detect_ms_p50": round(statistics.median(run_ms), 1),
        "warning_detector_duty": round(statistics.median(duty), 3),
        "warning_captions_during": captions,
        "warning_caption_threads": caption_threads,
        "warning_rate_hz": cfg.hazards.rate_hz,
        "warning_confirm_evidence": cfg.hazards.confirm_evidence,
        "warning_confirm_window_s": cfg.hazards.confirm_window_s,
    }


class _BusCamera:
    """An IP camera on loopback (MJPEG over HTTP, 30 fps) whose every frame shows the bus ahead: a live source,
    so the agent starts on it as soon as the detector is ready, as with a real camera."""

    def __init__(self) -> None:
        import socket
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import cv2

        jpeg = cv2.imencode(".jpg", scene_images()[1])[1].tobytes()
        stop = self.stop_event = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                while not stop.is_set():
                    try:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    stop.wait(1 / 30)

            def log_message(self, *args: object) -> None:
                pass

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{port}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


def bench_launch(quick: bool) -> dict[str, Any]:
    """first_warning_after_launch_s: from starting ``python run.py --video URL --headless`` to its first hazard
    event, the URL a live camera stream whose first frame (and every frame) shows the bus ahead, the captioner
    configured (the saved full-size model, its ONNX graphs already built in $ASSIST_CACHE: every run after
    the first). ``launch_first_caption_s``: its first caption in the same run (the captioner did load)."""
    import signal as signals

    from assist.describe.fast.onnx_runtime import cache_key, cache_ready

    det = shared_detector()
    if not det.exists():
        return {"first_warning_after_launch_s": None, "launch_note": "no detector"}
    folder = saved_full_size_model()
    key = cache_key(str(folder), None, 8)
    if key is None or not cache_ready(cache_root_dir() / "ort-captioner" / key):
        _rss_run(1, folder, str(cache_root_dir()))  # builds the graphs once (the cold first run)
    env = {**os.environ, "ASSIST_CAPTIONER": str(folder), "ASSIST_DETECTOR": str(det),
           "ASSIST_CACHE": str(cache_root_dir()), "PYTHONUNBUFFERED": "1"}
    firsts: list[float] = []
    captions: list[float] = []
    camera = _BusCamera()
    try:
        for _ in range(3 if quick else 7):
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--video", camera.url, "--headless",
                                     "--speech", "none"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, env=env, cwd=ROOT)
            assert proc.stdout is not None
            first = caption = None
            killer = threading.Timer(40.0, proc.kill)
            killer.start()
            for line in proc.stdout:
                if first is None and " HAZARD " in line:
                    first = time.perf_counter() - t0
                if caption is None and "CAPTION (" in line:  # the random model's text falls back to detections
                    caption = time.perf_counter() - t0
                if first is not None and caption is not None:
                    proc.send_signal(signals.SIGINT)
                    break
            killer.cancel()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if first is not None:
                firsts.append(first)
            if caption is not None:
                captions.append(caption)
    finally:
        camera.close()
    if not firsts:
        return {"first_warning_after_launch_s": None, "launch_note": "no hazard event"}
    return {"first_warning_after_launch_s": round(statistics.median(firsts), 2),
            "first_warning_after_launch_s_max": round(max(firsts), 2),
            "launch_runs": len(firsts),
            "launch_first_caption_s": round(statistics.median(captions), 2) if captions else None}


def cache_root_dir() -> Path:
    """$ASSIST_CACHE (or ~/.cache/assist): where the bench's saved model and its graphs live."""
    from assist.describe.fast.onnx_runtime import cache_root

    return cache_root()


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

    model = _caption_bench().full_size_model()
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
    """(Child process) load both models as a headless run does, caption and detect once, print peak RSS.

    Imports nothing the agent would not (no torch here: caption.threads = ``threads`` sets the captioner's
    threads, torch's too when it loads torch)."""
    out: dict[str, Any] = {}
    from assist.config import load_config
    from assist.describe.captioner import load_captioner

    cfg = load_config().caption
    cfg = type(cfg)(**{**cfg.__dict__, "model": folder, "device": "cpu", "threads": threads})
    out["rss_before_captioner_mb"] = peak_rss_mb()
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
    # A first run builds the graphs in child processes (assist/describe/fast/onnx_build.py): each reports its own
    # VmHWM, and the run's peak is the largest of this process's and theirs (they run one at a time, while
    # this process waits holding what it had loaded; the sum with this process is reported too).
    from assist.describe.fast.onnx_build import LAST_BUILD

    if LAST_BUILD:
        out["build_child_peak_mb"] = LAST_BUILD["peak_mb"]
        out["build_s"] = LAST_BUILD["seconds"]
        out["rss_at_build_mb"] = out.get("rss_before_captioner_mb", 0.0)
        out["peak_rss_mb"] = max(out["peak_rss_mb"], LAST_BUILD["peak_mb"])
    out["rss_backend"] = f"{cap.backend}:{getattr(cap._fast, 'precision', 'transformers')}"
    out["rss_fp32_model_loaded"] = cap._model is not None
    out["rss_torch_imported"] = "torch" in sys.modules
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
    res["cold_build_child_peak_mb"] = cold.get("build_child_peak_mb")
    res["cold_after_captioner_mb"] = cold.get("after_captioner_mb")
    # the parent waits while a child builds: both resident at once (the machine's worst moment)
    if cold.get("build_child_peak_mb") is not None:
        res["cold_parent_plus_child_mb"] = round(cold["build_child_peak_mb"] + cold.get("rss_at_build_mb", 0.0), 1)
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
    ap.add_argument("--only", default="", help="comma list: floor,caption,detect,gate,warning,launch,rss")
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
    steps = [("floor", lambda: _floor().run(args.quick, args.threads)),
             ("caption", lambda: _caption_bench().run(args.quick, args.threads)),
             ("detect", lambda: bench_detector(args.quick)),
             ("gate", bench_gate),
             ("warning", lambda: bench_warning(args.quick, args.caption_threads, args.hazard_rate_hz)),
             ("launch", lambda: bench_launch(args.quick)),
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
