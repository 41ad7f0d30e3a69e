"""Core: the records and services every stage shares, and nothing else.

``frames`` (a captured frame and the one-frame mailbox between threads),
``clock`` (real time for live runs, a virtual clock for ``--every-frame``),
``events`` (the event log, a contract: ../shared/DESIGN.md, and its sinks),
``detection`` (one detected object, the detector's output record) and
``priority`` (speech priority levels, set by hazards and captions, used by the
speech arbiter). Core imports no other part of ``assist`` except the config.
"""

from __future__ import annotations

from typing import Protocol

from assist.core.clock import Clock
from assist.core.events import Sink


class Notifier(Protocol):
    """Speaks and logs a status notice (``camera_lost``, ``too_dark`` ...)."""

    def __call__(self, key: str, *, event: str | None = None, frame: int | None = None) -> None:
        """Say the notice ``key`` and log it (as ``event`` when given)."""
        ...


__all__ = ["Clock", "Notifier", "Sink"]
