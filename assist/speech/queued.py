"""What the speech arbiter keeps per utterance: the queued item, the decision an
observer sees, and the normal form that spots repeats (``assist.speech.arbiter``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from assist.core.priority import Priority
from assist.speech.backends import Utterance


def normalize_text(text: str) -> str:
    """The form used to spot repeats: lowercase words only ("Car, ahead!" == "car ahead")."""
    return " ".join(re.findall(r"\w+", text.lower()))


@dataclass
class QueuedItem:
    """One queued or playing utterance and its bookkeeping."""

    utt: Utterance
    key: str
    t_said: float
    t_capture: float
    expires: float
    interrupted_at: float | None = None
    failed: bool = False
    compose: Callable[[], object] | None = None
    subjects: frozenset[object] = frozenset()
    state_key: str | None = None
    superseded: bool = False
    log_fields: dict[str, object] | None = None  # extra fields for the start event (from compose)
    asked: bool = False  # the user asked for it (control): never muted, cut off by warnings only
    repeat: bool = False  # a repeat the user asked for: its events carry repeat: true
    remember: bool = True  # False for control confirmations: "repeat" skips them
    interrupt_reason: str | None = None  # why it was cut off, when not by something more urgent (``paused``)
    cut_by: Priority | None = None  # the level of the utterance that cut it off (None: a pause or the stop did)

    @property
    def priority(self) -> Priority:
        return self.utt.priority

    def fresh_copy(self) -> QueuedItem:
        """The same utterance, not yet started (to say a state again after an interruption)."""
        utt = Utterance(self.utt.text, self.utt.priority, self.utt.frame, self.utt.direction,
                        earcon=self.utt.earcon, seq=self.utt.seq)
        return QueuedItem(utt, self.key, self.t_said, self.t_capture, self.expires, compose=self.compose,
                     subjects=self.subjects, state_key=self.state_key, asked=self.asked, repeat=self.repeat,
                     remember=self.remember)


@dataclass(frozen=True)
class SpeechDecision:
    """One speech decision as an observer sees it (the ``speech`` event plus
    what the log does not carry: the item's expiry and the queue length)."""

    event: str  # start | end | interrupted | suppressed | dropped
    priority: str
    t: float
    t_capture: float
    expires: float
    queued: int  # items waiting when the decision was made
    reason: str | None = None


