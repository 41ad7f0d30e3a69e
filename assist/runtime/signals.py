"""SIGINT/SIGTERM: one stop event for the whole run."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopSignal:
    """SIGINT/SIGTERM handling installed first thing in ``main``: the handler
    only sets an event (and remembers which signal), so a signal in any state
    (imports, model loading, reconnecting, speaking) is seen within ~50 ms by
    the main thread, which never runs anything slow itself."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None

    def install(self) -> StopSignal:
        """Install the handlers (main thread only; a no-op elsewhere)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._handle)
            signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name.lower()
        self.event.set()


__all__ = ["StopSignal"]
