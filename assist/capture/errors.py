"""The capture stage's errors: the one place they are defined, so the
sources, the image decoder and the capture loop raise the same type and only
``assist.app.errors`` decides what exit code it becomes."""

from __future__ import annotations


class SourceError(Exception):
    """A source cannot be opened or read; ``str(exc)`` is the one-line message
    for the user (the command line exits 3 with it, no traceback)."""


__all__ = ["SourceError"]
