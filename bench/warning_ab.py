"""Interleaved A/B of warning latency: ``python bench/warning_ab.py [PAIRS]``.

A = the old confirmation (3 consecutive detector runs, detector at 15 Hz), B = the current config (evidence over
time, ``hazards.confirm_evidence`` within ``confirm_window_s``, detector at ``rate_hz``). Both run in one
process, with one busy captioner on the other core, trial by trial in alternating order (A B, B A, ...), through
the same live trial as ``bench/run.py`` (30 fps capture thread, freshest frame, the speech arbiter). Prints the
latencies and the B/A ratio pair by pair: on a shared machine the ratio holds where absolute times drift.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import _BusyCaptioner, _warning_trial, scene_images, shared_detector  # noqa: E402


def main(pairs: int = 10) -> int:
    """Run ``pairs`` interleaved A/B trials and print the summary."""
    from assist.config import load_config
    from assist.core.clock import RealClock
    from assist.hazards.detector import YoloDetector
    from assist.hazards.policy import HazardPolicy

    cfg = load_config()
    cfg.speech.backend = "none"
    det = YoloDetector(str(shared_detector()), cfg.hazards)
    empty, bus = scene_images()
    clock = RealClock()
    rules = {"A": dataclasses.replace(cfg.hazards, rate_hz=15.0, confirm_evidence=0.0, confirm_frames=3),
             "B": cfg.hazards}
    lat: dict[str, list[float]] = {"A": [], "B": []}
    ratio: list[float] = []
    with _BusyCaptioner(1):
        time.sleep(1.0)
        for i in range(pairs):
            pair: dict[str, float] = {}
            for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
                hc = rules[name]
                r = _warning_trial(det, HazardPolicy(hc, "en"), (dataclasses.replace(cfg, hazards=hc), None, None),
                                   clock, lambda t: (bus, True) if t >= 1.0 else (empty, False), hc.rate_hz)
                if r["start"] is not None and r["onset"] is not None:
                    pair[name] = (r["start"] - r["onset"]) * 1e3
                    lat[name].append(pair[name])
            if len(pair) == 2:
                ratio.append(pair["B"] / pair["A"])
    print("load average", [round(x, 1) for x in os.getloadavg()])
    for name, values in lat.items():
        print(name, "p50", round(statistics.median(values), 1), "max", round(max(values), 1), "n", len(values))
    if ratio:
        print("B/A median", round(statistics.median(ratio), 3), "min", round(min(ratio), 3), "max", round(max(ratio), 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
