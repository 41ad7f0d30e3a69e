"""Console lines at the edges of a run: where the outputs went, and a preview
that has lost its display.

Kept apart from the pipeline so the quiet-console rules (issue 13: one short
line per event a user cares about) live in one small place.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol


class _Outputs(Protocol):
    log_path: Any
    save_video: Any
    speech_wav: Any


class _Events(Protocol):
    def status(self, event: str, text: str | None = None, **fields: Any) -> Any: ...

    def add_sink(self, sink: Callable[[dict[str, Any]], None]) -> None: ...


def run_outputs(opts: _Outputs) -> dict[str, str]:
    """Where this run wrote its files, for the ``stopped`` event and the last console line."""
    found = {"log": opts.log_path, "video": opts.save_video, "speech WAVs": opts.speech_wav}
    return {name: str(path) for name, path in found.items() if path is not None}


def print_outputs(opts: _Outputs) -> None:
    """One line naming the outputs (a run with a preview has no console sink to show the ``stopped`` line)."""
    outputs = run_outputs(opts)
    if outputs:
        print("outputs: " + "; ".join(f"{k}: {v}" for k, v in outputs.items()), flush=True)


def preview_gone(events: _Events, console: Callable[[dict[str, Any]], None] | None, console_enabled: bool,
                 reason: str = "the display went away", display: bool = True) -> bool:
    """The preview cannot go on: say so in one line, log it, and from now on
    print console lines as a headless run does. ``display``: the cause is the
    display (gone, or no window support), not the window's process alone.
    Returns False (no preview)."""
    head = f"no display ({reason}): preview closed" if display else f"preview closed ({reason})"
    print(f"{head}, running headless", file=sys.stderr, flush=True)
    events.status("preview_unavailable", text=reason, printed=True)
    if console is not None and console_enabled:
        events.add_sink(console)
    return False
