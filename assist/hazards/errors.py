"""The hazard stage's errors (only ``assist.app.errors`` turns them into exit codes)."""

from __future__ import annotations


class DetectorModelMissing(Exception):
    """No usable detector weights; the message says how to get them (the command line exits 4)."""


__all__ = ["DetectorModelMissing"]
