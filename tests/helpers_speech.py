"""Speech test helpers: a fake backend that plays by waiting on an event and
records every play and interrupt call, and small waiting utilities."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from assist.config import SpeechConfig
from assist.speech.backends import BackendError, SpeechBackend, Utterance
from helpers_wait import wait_for


class FakeBackend(SpeechBackend):
    """Plays an utterance by waiting until the test calls ``finish()`` (or it is
    interrupted, or ``auto_finish_s`` passes).

    ``calls`` records ("play", text, monotonic time, had_earcon) and
    ("interrupt", text-being-played-or-None, time, False). ``fail_plays`` makes
    the next N plays raise BackendError (a dying engine). ``child=True`` makes
    each play run a real sleeping child process (killable like espeak-ng's).
    """

    name = "fake"

    def __init__(self, cfg: SpeechConfig | None = None, *, auto_finish_s: float | None = None, fail_plays: int = 0,
                 child: bool = False, wav_dir: Path | None = None) -> None:
        super().__init__(cfg or SpeechConfig(), wav_dir=wav_dir)
        self.auto_finish_s = auto_finish_s
        self.fail_plays = fail_plays
        self.child = child
        self.calls: list[tuple[str, str | None, float, bool]] = []
        self.restarts = 0
        self.closed = False
        self.child_pids: list[int] = []
        self._done = threading.Event()
        self._playing: Utterance | None = None
        self._calls_lock = threading.Lock()

    # -- what tests look at -----------------------------------------------------------------
    def played(self) -> list[str]:
        """Texts passed to play, in order."""
        with self._calls_lock:
            return [c[1] or "" for c in self.calls if c[0] == "play"]

    def interrupts(self) -> list[tuple[str, str | None, float, bool]]:
        """The interrupt calls."""
        with self._calls_lock:
            return [c for c in self.calls if c[0] == "interrupt"]

    def play_time(self, text: str) -> float | None:
        """Monotonic time play(text) was called, or None."""
        with self._calls_lock:
            for kind, t, when, _ in self.calls:
                if kind == "play" and t == text:
                    return when
        return None

    @property
    def playing(self) -> str | None:
        """Text being played now, or None."""
        u = self._playing
        return u.text if u is not None else None

    def finish(self) -> None:
        """End the utterance being played (as if it had been said to the end)."""
        self._done.set()

    # -- backend interface ------------------------------------------------------------------
    def play(self, utt: Utterance) -> None:
        """Record the call, then wait for finish(), interrupt() or auto_finish_s."""
        with self._calls_lock:
            self.calls.append(("play", utt.text, time.monotonic(), utt.earcon is not None))
        if self.fail_plays > 0:
            self.fail_plays -= 1
            raise BackendError("fake engine died")
        self._done.clear()
        self._playing = utt
        try:
            if self.child:
                self._child_play(utt)
                return
            end = None if self.auto_finish_s is None else time.monotonic() + self.auto_finish_s
            while not utt.cancel.is_set() and not self._done.is_set():
                if end is not None and time.monotonic() >= end:
                    break
                utt.cancel.wait(0.001)
        finally:
            self._playing = None

    def _child_play(self, utt: Utterance) -> None:
        with self._lock:
            self._utt = utt
        try:
            # A real child: killed by interrupt() exactly like an espeak-ng child.
            args = [sys.executable, "-c", "import time; time.sleep(60)"]
            t = threading.Thread(target=self._run_child, args=(utt, args), kwargs={"deadline_s": 120.0})
            t.start()
            wait_for(lambda: self._proc is not None or not t.is_alive(), 5.0)
            with self._lock:
                if self._proc is not None:
                    self.child_pids.append(self._proc.pid)
            t.join()
        finally:
            with self._lock:
                self._utt = None

    def interrupt(self) -> None:
        """Record the call and stop the current utterance."""
        with self._calls_lock:
            self.calls.append(("interrupt", self.playing, time.monotonic(), False))
        u = self._playing
        if u is not None:
            u.cancel.set()
        super().interrupt()

    def restart(self) -> None:
        """Count restarts."""
        self.restarts += 1
        super().restart()

    def close(self) -> None:
        """Mark closed."""
        self.closed = True
        super().close()
