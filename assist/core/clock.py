"""Clocks: the live pipeline runs on time.monotonic(); deterministic runs
(``--every-frame``) run on a virtual clock driven by the frames' video time, so
the same input gives the same log, line for line."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the pipeline needs of a clock."""

    def now(self) -> float:
        """Current time in seconds (monotonic)."""
        ...


class RealClock:
    """Wall-clock monotonic time."""

    def now(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()


class VirtualClock:
    """A clock that only moves when told to (never backwards)."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the current virtual time."""
        with self._lock:
            return self._t

    def advance_to(self, t: float) -> None:
        """Move the clock forward to ``t`` (ignored if ``t`` is in the past)."""
        with self._lock:
            if t > self._t:
                self._t = t
