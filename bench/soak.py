"""Soak: a long live run over real footage with the real detector, watching for slow failure.

``python bench/soak.py --minutes 30 [--json PATH] [--log PATH] [--speech auto|espeak|none]``

The real street videos (``../shared/data/videos/*.mp4``, or ``--video`` files)
are played in a loop like a camera: a looping source re-opens the next file
at each end (real OpenCV decoding; no giant concatenated file on disk) and the
pipeline runs live (capture thread, hazard worker at ``hazards.rate_hz`` on the
freshest frame, scene gate, caption worker, speech arbiter) with the default
``config.toml``. A sampler records, every ``--sample-s``:

* resident memory (RSS), threads, open file descriptors, child processes;
* the speech queue length and the two frame slots (queues must stay bounded);
* frames captured and detector runs.

Every utterance start is checked against its expiry (how long after its
frame it was started vs. how long it was allowed), drops are counted by
reason, and the capture status events give the frame drops. At the end a
table is printed and, with ``--json``, written as JSON. Memory growth is
measured after ``--warmup-s`` (model loads, first allocations, caches): the
median RSS of the last samples minus that of the first samples after warm-up,
plus a least-squares slope in MB per minute.

Only instrumentation is added here, through the run's seams
(:class:`assist.runtime.options.RunSeams`): a source factory that loops the
files and an observer that sees every speech decision and samples the run's
public view; the pipeline itself runs unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from assist.app.errors import exit_code  # noqa: E402
from assist.capture.sources import SourceSpec, open_source  # noqa: E402
from assist.config import CameraConfig, load_config  # noqa: E402
from assist.runtime.options import RunOptions, RunSeams  # noqa: E402
from assist.runtime.pipeline import run_pipeline  # noqa: E402
from assist.runtime.run import RunWiring  # noqa: E402
from assist.runtime.signals import StopSignal  # noqa: E402
from assist.speech.arbiter import SpeechDecision  # noqa: E402

GROWTH_LIMIT_MB = 50.0  # issue 9: memory growth after warm-up must stay under this
SPEECH_QUEUE_BOUND = 8  # captions replace each other and warnings expire: the queue can never grow
EDGE_SAMPLES = 5  # samples whose median marks the start / end of the measured span


def shared_dir() -> Path:
    """$ASSIST_SHARED, else ../shared beside the checkout."""
    return Path(os.environ.get("ASSIST_SHARED", ROOT.parent / "shared"))


def default_videos() -> list[Path]:
    """The real street footage of the shared folder."""
    return sorted((shared_dir() / "data" / "videos").glob("*.mp4"))


class LoopingFootage:
    """A file source that never ends: at the end of one video it opens the next, in a cycle.

    Frames keep each file's own size (the night clip is smaller than the
    sidewalk one), as after a camera reconnect at another resolution.
    """

    is_live = False

    def __init__(self, paths: list[Path], cfg: CameraConfig) -> None:
        if not paths:
            raise FileNotFoundError("no videos to loop (pass --video or set ASSIST_SHARED)")
        self.paths = paths
        self.cfg = cfg
        self.index = 0
        self.loops = 0
        self.frames = 0
        self.ended = False
        self._src = self._open(0)
        self.fps = self._src.fps
        self.name = f"loop of {', '.join(p.name for p in paths)}"

    def _open(self, i: int) -> Any:
        return open_source(SourceSpec("video", str(self.paths[i])), self.cfg)

    def read(self) -> Any:
        """Next frame; at the end of a file, the first frame of the next one."""
        img = self._src.read()
        if img is None and self._src.ended:
            self._src.close()
            self.index = (self.index + 1) % len(self.paths)
            if self.index == 0:
                self.loops += 1
            self._src = self._open(self.index)
            img = self._src.read()
        if img is not None:
            self.frames += 1
        return img

    def close(self) -> None:
        """Release the current file."""
        self._src.close()
        self.ended = True

    def interrupt(self) -> None:
        """File reads are short: nothing to interrupt."""


class Probe:
    """Instrumentation around one run: the agent, its speech decisions and periodic samples."""

    def __init__(self, sample_s: float) -> None:
        self.sample_s = sample_s
        self.run: RunWiring | None = None
        self.source: LoopingFootage | None = None
        self.samples: list[dict[str, float]] = []
        self.lags: list[tuple[str, float, float]] = []  # (level, start - capture, allowed age)
        self.drops: Counter[str] = Counter()
        self.queue_max = 0  # longest speech queue seen at any speech decision
        self.events: Counter[str] = Counter()
        self.status: Counter[str] = Counter()
        self.capture_stats: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self._proc = psutil.Process()
        self._lock = threading.Lock()

    # -- seams -------------------------------------------------------------------------------
    def seams(self, paths: list[Path], cfg: CameraConfig) -> RunSeams:
        """The run's seams: the looping footage as its source, this probe as its observer."""

        def source() -> LoopingFootage:
            self.source = LoopingFootage(paths, cfg)
            return self.source

        return RunSeams(source_factory=source, observer=self)

    def run_started(self, run: RunWiring) -> None:
        """Observer: keep the run's public view for the sampler."""
        self.run = run

    def speech_decision(self, decision: SpeechDecision) -> None:
        """Observer: called at every speech decision, under the arbiter's lock, so
        the queue length here is exact, unlike a periodic sample."""
        with self._lock:
            self.queue_max = max(self.queue_max, decision.queued)
            if decision.event == "start":
                self.lags.append((decision.priority, decision.t - decision.t_capture,
                                  decision.expires - decision.t_capture))
            elif decision.event == "dropped":
                self.drops[str(decision.reason)] += 1

    def sink(self, event: dict[str, Any]) -> None:
        """Event sink: counts, and the capture status events (frame drops)."""
        with self._lock:
            self.events[event["type"]] += 1
            if event["type"] == "status":
                self.status[str(event.get("event"))] += 1
                if event.get("event") == "capture":
                    self.capture_stats.append(event)

    # -- sampling ----------------------------------------------------------------------------
    def sample(self) -> None:
        """One sample of memory, threads, descriptors, children and queue lengths."""
        run = self.run
        speaker = run.speaker if run is not None else None
        capture = run.capture if run is not None else None
        hazard_steps = sum(w.steps for w in run.workers if w.name == "hazards") if run is not None else 0
        backlog = run.slot_backlog() if run is not None else {"hazard": 0, "caption": 0}
        try:
            fds = self._proc.num_fds()
        except (AttributeError, psutil.Error):
            fds = -1
        s = {
            "t": round(time.monotonic() - self.t0, 2),
            "rss_mb": round(self._proc.memory_info().rss / 2**20, 1),
            "threads": threading.active_count(),
            "fds": fds,
            "children": len(self._proc.children(recursive=True)),
            "speech_queue": len(speaker.pending) if speaker is not None else 0,
            "hazard_slot": backlog["hazard"],
            "caption_slot": backlog["caption"],
            "frames": capture.frames_read if capture is not None else 0,
            "detector_runs": hazard_steps,
        }
        self.samples.append(s)

    def run_sampler(self, stop: threading.Event) -> threading.Thread:
        """Sample every ``sample_s`` until ``stop`` is set (and once more at the end)."""

        def loop() -> None:
            while not stop.wait(self.sample_s):
                self.sample()

        thread = threading.Thread(target=loop, name="soak-sampler", daemon=True)
        thread.start()
        return thread


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 with fewer than two)."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summarize(probe: Probe, *, minutes: float, warmup_s: float, code: int, rate_hz: float,
              load: tuple[float, float]) -> dict[str, Any]:
    """The soak's findings as one JSON-able dict (see the module docstring)."""
    samples = [s for s in probe.samples if s["t"] >= warmup_s]
    if len(samples) < 2:
        raise RuntimeError(f"too few samples after the {warmup_s:g} s warm-up ({len(samples)}); run longer")
    edge = max(1, min(EDGE_SAMPLES, len(samples) // 3))
    rss_start = statistics.median(s["rss_mb"] for s in samples[:edge])
    rss_end = statistics.median(s["rss_mb"] for s in samples[-edge:])
    span_min = (samples[-1]["t"] - samples[0]["t"]) / 60.0
    detector_hz = ((samples[-1]["detector_runs"] - samples[0]["detector_runs"]) / (span_min * 60.0)
                   if span_min > 0 else 0.0)
    capture_fps = (samples[-1]["frames"] - samples[0]["frames"]) / (span_min * 60.0) if span_min > 0 else 0.0
    final = probe.capture_stats[-1] if probe.capture_stats else {}
    lags_by_level: dict[str, list[float]] = {}
    over = 0
    worst_ratio = 0.0
    for level, lag, allowed in probe.lags:
        lags_by_level.setdefault(level, []).append(lag)
        worst_ratio = max(worst_ratio, lag / allowed if allowed > 0 else 0.0)
        over += lag > allowed + 1e-6
    src = probe.source
    result: dict[str, Any] = {
        "minutes": minutes, "warmup_s": warmup_s, "exit_code": code, "load_avg_start_end": load,
        "memory": {
            "rss_at_warmup_mb": rss_start, "rss_end_mb": rss_end, "growth_mb": round(rss_end - rss_start, 1),
            "rss_max_mb": max(s["rss_mb"] for s in samples), "rss_peak_any_mb": max(s["rss_mb"] for s in probe.samples),
            "slope_mb_per_min": round(_slope([(s["t"] / 60.0, s["rss_mb"]) for s in samples]), 3),
            "limit_mb": GROWTH_LIMIT_MB,
        },
        "resources": {
            "threads_at_warmup": samples[0]["threads"], "threads_max": max(s["threads"] for s in samples),
            "fds_at_warmup": samples[0]["fds"], "fds_max": max(s["fds"] for s in samples),
            "children_max": max(s["children"] for s in samples),
        },
        "queues": {
            "speech_queue_max": max([probe.queue_max, *(s["speech_queue"] for s in probe.samples)]),
            "speech_queue_bound": SPEECH_QUEUE_BOUND,
            "hazard_slot_max": max(s["hazard_slot"] for s in probe.samples),
            "caption_slot_max": max(s["caption_slot"] for s in probe.samples),
        },
        "speech": {
            "starts": len(probe.lags), "over_expiry": over, "worst_lag_over_allowed": round(worst_ratio, 3),
            "lag_s": {lvl: {"p50": round(_pct(v, 0.5), 3), "p95": round(_pct(v, 0.95), 3), "max": round(max(v), 3),
                            "n": len(v)} for lvl, v in sorted(lags_by_level.items())},
            "dropped": dict(probe.drops),
        },
        "frames": {
            "captured": final.get("frames", samples[-1]["frames"]), "source_loops": src.loops if src else 0,
            "source_fps": src.fps if src else None, "capture_fps_after_warmup": round(capture_fps, 2),
            "skipped": final.get("skipped", 0), "hazard_drops": final.get("hazard_drops", 0),
            "caption_drops": final.get("caption_drops", 0), "detector_hz": round(detector_hz, 2),
            "detector_rate_hz": rate_hz,
        },
        "events": dict(probe.events),
        "status": {k: v for k, v in probe.status.items() if k != "capture"},
    }
    result["pass"] = {
        "memory_growth": result["memory"]["growth_mb"] < GROWTH_LIMIT_MB,
        "speech_queue_bounded": result["queues"]["speech_queue_max"] <= SPEECH_QUEUE_BOUND,
        "slots_bounded": result["queues"]["hazard_slot_max"] <= 1 and result["queues"]["caption_slot_max"] <= 1,
        "speech_within_expiry": over == 0,
        "no_worker_fault": probe.status.get("worker_fault", 0) == 0,
        "exit_ok": code == 0,
    }
    return result


def print_table(r: dict[str, Any]) -> None:
    """The findings as a readable table."""
    m, q, sp, f, res = r["memory"], r["queues"], r["speech"], r["frames"], r["resources"]
    rows = [
        ("duration", f"{r['minutes']:g} min (warm-up {r['warmup_s']:g} s), exit {r['exit_code']}"),
        ("RSS after warm-up -> end", f"{m['rss_at_warmup_mb']:.1f} -> {m['rss_end_mb']:.1f} MB "
                                     f"(growth {m['growth_mb']:+.1f} MB, limit {m['limit_mb']:g})"),
        ("RSS slope / max", f"{m['slope_mb_per_min']:+.3f} MB/min, max {m['rss_max_mb']:.1f} MB"),
        ("threads / fds / children", f"{res['threads_at_warmup']}->{res['threads_max']} max, "
                                     f"{res['fds_at_warmup']}->{res['fds_max']} max, {res['children_max']} max"),
        ("speech queue max", f"{q['speech_queue_max']} (bound {q['speech_queue_bound']}); slots max "
                             f"{q['hazard_slot_max']}/{q['caption_slot_max']}"),
        ("speech starts", f"{sp['starts']}, over expiry {sp['over_expiry']}, worst lag/allowed "
                          f"{sp['worst_lag_over_allowed']:.2f}"),
    ]
    for lvl, v in sp["lag_s"].items():
        rows.append((f"  lag {lvl}", f"p50 {v['p50']:.3f} s, p95 {v['p95']:.3f} s, max {v['max']:.3f} s (n={v['n']})"))
    rows += [
        ("speech dropped", ", ".join(f"{k} {v}" for k, v in sorted(sp["dropped"].items())) or "none"),
        ("frames", f"{f['captured']} captured, {f['source_loops']} loops, {f['capture_fps_after_warmup']} fps "
                   f"(source {f['source_fps']}), skipped {f['skipped']}"),
        ("frame drops", f"hazard slot {f['hazard_drops']}, caption slot {f['caption_drops']}; detector "
                        f"{f['detector_hz']} Hz of {f['detector_rate_hz']:g}"),
        ("events", ", ".join(f"{k} {v}" for k, v in sorted(r["events"].items()))),
        ("status", ", ".join(f"{k} {v}" for k, v in sorted(r["status"].items()))),
        ("load average", f"{r['load_avg_start_end'][0]:.1f} -> {r['load_avg_start_end'][1]:.1f}"),
        ("pass", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in r["pass"].items())),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def main(argv: list[str] | None = None) -> int:
    """Run the soak; exit 0 when every check passed, 1 otherwise, 2 on bad arguments."""
    p = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    p.add_argument("--warmup-s", type=float, default=None, help="excluded from the growth (default: 60 s, "
                   "or a third of a run shorter than 3 min)")
    p.add_argument("--sample-s", type=float, default=None, help="sampling period (default: 10 s, 2 s for short runs)")
    p.add_argument("--video", action="append", type=Path, help="video file(s) to loop (default: the shared footage)")
    p.add_argument("--speech", default="auto", choices=("auto", "espeak", "pyttsx3", "none"))
    p.add_argument("--config", default=None, help="config file (default config.toml)")
    p.add_argument("--json", type=Path, help="write the findings there")
    p.add_argument("--log", type=Path, help="also write the event log (JSON Lines) there")
    a = p.parse_args(argv)
    if a.minutes <= 0:
        p.error("--minutes must be positive")
    duration_s = a.minutes * 60.0
    warmup_s = a.warmup_s if a.warmup_s is not None else (60.0 if duration_s >= 180 else duration_s / 3.0)
    sample_s = a.sample_s if a.sample_s is not None else (10.0 if duration_s >= 600 else 2.0)
    videos = a.video or default_videos()
    missing = [v for v in videos if not v.is_file()]
    if not videos or missing:
        print(f"error: no footage to loop ({', '.join(map(str, missing)) or 'none found'}); pass --video or set "
              "ASSIST_SHARED", file=sys.stderr)
        return 2
    if "ASSIST_DETECTOR" not in os.environ:
        shared = shared_dir() / "models" / "yolo11n_int8_openvino_model"
        if shared.exists():
            os.environ["ASSIST_DETECTOR"] = str(shared)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    cfg = load_config(a.config or str(ROOT / "config.toml"))
    cfg.speech.backend = a.speech
    cfg.log.console = False
    opts = RunOptions(source_kind="video", source_value=f"loop of {len(videos)} files", headless=True,
                      log_path=a.log)
    probe = Probe(sample_s)
    stop = StopSignal().install()  # Ctrl-C ends the soak early, with a report
    done = threading.Event()
    sampler = probe.run_sampler(done)

    def end_of_soak() -> None:
        if not stop.event.wait(duration_s):
            stop.reason = "soak_complete"
            stop.event.set()

    threading.Thread(target=end_of_soak, name="soak-timer", daemon=True).start()
    load0 = os.getloadavg()[0]
    print(f"soak: {a.minutes:g} min over {', '.join(v.name for v in videos)} (looped), speech {a.speech}, "
          f"warm-up {warmup_s:g} s, sample every {sample_s:g} s", flush=True)
    code = run_pipeline(cfg, opts, exit_code=exit_code, extra_sinks=(probe.sink,), stop=stop,
                        seams=probe.seams(videos, cfg.camera))
    done.set()
    sampler.join(1.0)  # no sample after the run: its memory and threads are being released
    result = summarize(probe, minutes=a.minutes, warmup_s=warmup_s, code=code, rate_hz=cfg.hazards.rate_hz,
                       load=(load0, os.getloadavg()[0]))
    result["samples"] = probe.samples
    print_table(result)
    if a.json is not None:
        a.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print("JSON " + json.dumps({k: v for k, v in result.items() if k != "samples"}), flush=True)
    return 0 if all(result["pass"].values()) else 1


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)  # skip the slow torch/OpenVINO teardown, as run.py does
