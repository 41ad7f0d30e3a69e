"""Run the real pipeline in this process, as a user would headless, and keep its events
(for tests that read what was said)."""

from __future__ import annotations

from pathlib import Path

from assist.app.errors import exit_code
from assist.config import Config
from assist.core.events import ListSink
from assist.runtime.options import RunOptions
from assist.runtime.pipeline import run_pipeline
from assist.runtime.signals import StopSignal


def run(cfg: Config, opts: RunOptions) -> tuple[int, ListSink]:
    """Run the pipeline in-process with a collecting sink (no signal handlers); (exit code, events)."""
    sink = ListSink()
    code = run_pipeline(cfg, opts, exit_code=exit_code, extra_sinks=(sink,), stop=StopSignal())
    return code, sink


def run_every_frame(path: Path, cfg: Config | None = None) -> ListSink:
    """Every frame of the video ``path`` (``--every-frame``; default config, speech ``none``); asserts exit 0."""
    cfg = cfg or Config()
    cfg.speech.backend = "none"
    code, sink = run(cfg, RunOptions("video", str(path), headless=True, every_frame=True))
    assert code == 0
    return sink
