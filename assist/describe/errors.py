"""The describe stage's errors (only ``assist.app.errors`` turns them into exit codes)."""

from __future__ import annotations


class CaptionModelMissing(Exception):
    """No captioner weights could be found or loaded; the message says how to get them."""


__all__ = ["CaptionModelMissing"]
