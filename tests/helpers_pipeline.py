"""Run the real pipeline in this process on a video file, as a user would headless with
``--every-frame --speech none``, and keep its events (for tests that read what was said)."""

from __future__ import annotations

from pathlib import Path

from assist.app.errors import exit_code
from assist.config import Config
from assist.core.events import ListSink
from assist.runtime.options import RunOptions
from assist.runtime.pipeline import run_pipeline
from assist.runtime.signals import StopSignal


def run_every_frame(path: Path, cfg: Config | None = None) -> ListSink:
    """Every frame of ``path`` through the pipeline (default config, speech ``none``); asserts exit 0."""
    cfg = cfg or Config()
    cfg.speech.backend = "none"
    sink = ListSink()
    code = run_pipeline(cfg, RunOptions("video", str(path), headless=True, every_frame=True), exit_code=exit_code,
                        extra_sinks=(sink,), stop=StopSignal())
    assert code == 0
    return sink
