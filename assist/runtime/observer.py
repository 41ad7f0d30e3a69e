"""Watching a run from outside without touching its insides (as
roboflow/inference's ``PipelineWatchDog`` and its do-nothing
``NullPipelineWatchdog``): the soak benchmark samples queues, workers and the
capture through the public view it is handed, and sees every speech decision
as it is made. Every event of the log also reaches ``extra_sinks``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # type names only
    from assist.runtime.run import RunWiring
    from assist.speech.arbiter import SpeechDecision


class RunObserver(Protocol):
    """Called by the run; every method must return quickly and never raise."""

    def run_started(self, run: RunWiring) -> None:
        """The speech output and the scene gate exist; frames are about to flow.
        ``run`` may be read (``speaker``, ``capture``, ``workers``,
        ``slot_backlog()``) from any thread until the run ends."""
        ...

    def speech_decision(self, decision: SpeechDecision) -> None:
        """One speech decision (start, end, dropped ...), made under the arbiter's
        lock: ``decision.queued`` is the exact queue length at that moment."""
        ...


class NullRunObserver:
    """The default observer: watches nothing."""

    def run_started(self, run: RunWiring) -> None:
        """Nothing to do."""

    def speech_decision(self, decision: SpeechDecision) -> None:
        """Nothing to do."""


__all__ = ["NullRunObserver", "RunObserver"]
