"""Speech: say the right thing at the right time, and nothing stale.

``arbiter`` (``SpeechArbiter``) queues what the stages want said by priority
(``assist.core.priority``), lets an urgent warning interrupt a description,
drops what has grown too old and logs every ``speech`` event; ``backends/``
are the TTS engines behind one interface (espeak-ng, pyttsx3, none; one file
each, :func:`~assist.speech.backends.make_backend` picks one); ``phrases``
words the warnings and notices in each language; ``earcon`` makes the short
directional tone before a warning; ``wav`` renders and reads WAV files;
``translate`` translates captions; ``pyttsx3_child`` is the script the
pyttsx3 backend runs in its child process. ``announcer`` (``Announcer``)
turns the hazard policy's decisions about objects into warnings whose words
are composed when they start, from the world model as it is then, and says
state notices (camera, hazard detection, descriptions) so that the last one
heard is the true one.

The run's wiring holds the arbiter by the :class:`Speaker` protocol below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from assist.core.priority import Priority


class Speaker(Protocol):
    """What the stages need of the speech output (the arbiter)."""

    def say(self, text: str, priority: Priority, *, t_capture: float | None = None, frame: int | None = None,
            direction: str | None = None, compose: Callable[[], object] | None = None,
            subjects: frozenset[object] | set[object] | tuple[object, ...] = (), state_key: str | None = None,
            asked: bool = False) -> None:
        """Queue ``text`` at ``priority`` (non-blocking, thread-safe). ``compose`` makes
        the words when it starts; ``subjects`` / ``state_key`` let a newer utterance
        about the same objects / state replace it (see ``assist.speech.arbiter``);
        ``asked``: the user asked for it."""
        ...

    def estimate_duration(self, text: str) -> float:
        """Seconds ``text`` takes to say at the configured rate."""
        ...

    def advance_to(self, t: float) -> None:
        """Virtual clock: play the queue up to time ``t``."""
        ...

    def flush(self) -> float:
        """Finish everything queued; the time speech ends."""
        ...

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or playing; False on timeout."""
        ...

    def stop(self, timeout: float = 1.0) -> None:
        """Stop speaking and release the backend."""
        ...

    @property
    def pending(self) -> list[tuple[str, str]]:
        """(priority label, text) of what is queued, next first."""
        ...


__all__ = ["Speaker"]
