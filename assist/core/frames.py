"""Frames and the one-slot "latest frame wins" hand-off between threads.

Every frame carries its index and its monotonic capture time, so later stages
can say which frame an event is about and how old a result is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured frame: ``image`` is 8-bit BGR, HxWx3, C-contiguous."""

    index: int
    t_capture: float  # seconds on the pipeline clock (time.monotonic() live)
    image: np.ndarray


class LatestFrameSlot:
    """A one-slot hand-off: the producer never blocks, a newer frame replaces
    an unread older one, and every replaced frame is counted as a drop.

    Trade-off: workers always see the freshest frame (no lag builds up) at the
    cost of skipping frames, which is what a live warning system wants.
    """

    def __init__(self, name: str = "slot") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.put_count = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        """Offer a frame; an unread older frame is dropped and counted."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.put_count += 1
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """Take the newest frame, waiting up to ``timeout`` seconds.

        Returns None on timeout or once the slot is closed and empty.
        """
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        """Wake every waiter; later ``get`` calls return what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def pending(self) -> bool:
        """True while a frame waits to be taken."""
        return self._frame is not None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed
