"""Speech priority levels, modelled on speech-dispatcher's categories."""

from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    """Lower value = more important.

    IMPORTANT: urgent hazard, interrupts anything playing, never interrupted.
    MESSAGE: other warnings; waits for the current utterance, cancels captions and notices.
    TEXT: captions; only the newest is kept.
    NOTIFICATION: status notices; cancelled by anything higher.
    """

    IMPORTANT = 0
    MESSAGE = 1
    TEXT = 2
    NOTIFICATION = 3

    @property
    def label(self) -> str:
        """The lowercase name used in the event log."""
        return self.name.lower()
