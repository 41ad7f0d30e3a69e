"""Capture: turn a camera, a video file or stream, a folder of images or the
demo clip into a stream of :class:`~assist.core.frames.Frame` records.

``sources`` opens each kind of input (every failure a one-line
:class:`~assist.capture.errors.SourceError`), ``imaging`` decodes and
normalises images (8-bit BGR, bounded size), ``loop`` (``CaptureLoop``) reads
frames on its own thread, reconnects a lost camera and stamps each frame with
the clock, ``demo`` builds the demo clip. The interface the loop needs of an
opened input is :class:`FrameSource` below; a run gets its sources from a
*source factory* (``Callable[[], FrameSource]``), so a benchmark can feed any
object with this shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FrameSource(Protocol):
    """What the capture loop needs of a source.

    ``read`` returns the next raw frame (any dtype/channels; the loop
    normalises it) or None for a failed read. After a None, ``ended`` tells
    whether more frames can come from this object: a file that is finished, or
    a live stream that closed (the loop then reopens it through its factory).
    """

    name: str
    is_live: bool  # camera or stream: a failure means "lost", not "finished"
    fps: float | None  # frames per second of the material, None if unknown
    ended: bool

    def read(self) -> np.ndarray | None:
        """The next frame, or None when this read failed."""
        ...

    def close(self) -> None:
        """Release the device or file (idempotent)."""
        ...

    def interrupt(self) -> None:
        """Best effort to make a blocked ``read`` return soon (shutdown)."""
        ...


#: Opens (or reopens, after a lost camera) the run's input.
SourceFactory = Callable[[], FrameSource]

__all__ = ["FrameSource", "SourceFactory"]
