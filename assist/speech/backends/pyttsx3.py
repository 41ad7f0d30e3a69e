"""pyttsx3 in a child process (the engine on Windows and macOS; its espeak
driver on Linux): started once and reused; an interrupt kills it."""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from assist.config import SpeechConfig
from assist.speech.backends.base import BackendError, SpeechBackend, SpeechBackendUnavailable, Utterance
from assist.speech.backends.process import Spawner, find_player, kill_child
from assist.speech.backends.process import spawn as spawn_child

log = logging.getLogger(__name__)


CHILD_SCRIPT = Path(__file__).resolve().parent.parent / "pyttsx3_child.py"


class _Child:
    """A running pyttsx3 child and a thread that turns its replies into a queue."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, name="pyttsx3-reader", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for raw in self.proc.stdout:
                try:
                    self.replies.put(json.loads(raw))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    log.debug("pyttsx3 child said: %r", raw[:200])
        except (OSError, ValueError):
            pass
        self.replies.put(None)  # end of stream: the child is gone

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None


class Pyttsx3Backend(SpeechBackend):
    """pyttsx3 in a child process (the engine on Windows and macOS; espeak driver on Linux).

    The child is started once and reused; an interrupt kills it (and any
    ``aplay`` it started) and the next utterance starts a fresh one.
    """

    name = "pyttsx3"

    def __init__(self, cfg: SpeechConfig, *, wav_dir: Path | None = None, driver: str | None = None,
                 start_timeout_s: float = 20.0, spawn: Spawner = spawn_child) -> None:
        super().__init__(cfg, wav_dir=wav_dir, spawn=spawn)
        if driver is None:
            driver = "espeak" if platform.system() == "Linux" else ""
        self.driver = driver
        self.start_timeout_s = start_timeout_s
        self.child_driver = ""
        self._child: _Child | None = None
        self.player = find_player()
        self._child = self._start_child()

    @property
    def child_pid(self) -> int | None:
        """PID of the pyttsx3 child process, or None when none is running."""
        with self._lock:
            return self._child.proc.pid if self._child is not None and self._child.alive() else None

    def describe(self) -> str:
        """One line for the status event."""
        return f"pyttsx3 in a child process (driver {self.child_driver or self.driver or 'default'})"

    def _start_child(self) -> _Child:
        args = [sys.executable, str(CHILD_SCRIPT), "--driver", self.driver, "--rate", str(self.cfg.rate),
                "--volume", str(self.cfg.volume), "--voice", self.cfg.voice, "--language", self.cfg.language]
        try:
            proc = self.spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise SpeechBackendUnavailable(f"pyttsx3: cannot start its child process ({exc})") from None
        child = _Child(proc)
        try:
            first = child.replies.get(timeout=self.start_timeout_s)
        except queue.Empty:
            kill_child(proc)
            raise SpeechBackendUnavailable(f"pyttsx3 did not start within {self.start_timeout_s:g} s") from None
        if not first or not first.get("ready"):
            kill_child(proc)
            reason = (first or {}).get("error", "the child exited at start")
            raise SpeechBackendUnavailable(f"pyttsx3 cannot speak here: {reason} "
                                           "(install pyttsx3 and, on Linux, libespeak-ng1 / espeak-ng)")
        self.child_driver = str(first.get("driver", ""))
        return child

    def _play_earcon(self, utt: Utterance) -> None:
        if self.player is None or utt.earcon is None:
            super()._play_earcon(utt)
            return
        self._play_earcon_with_player(utt)

    def _speak(self, utt: Utterance) -> None:
        self.say_to(utt, wav=self.speech_wav_path(utt), play=True)

    def say_to(self, utt: Utterance, *, wav: Path | None, play: bool = True) -> None:
        """Have the child write ``utt`` to ``wav`` (if given) and/or speak it; interruptible."""
        with self._lock:
            if utt.cancel.is_set():
                return
            child = self._child if self._child is not None and self._child.alive() else None
        if child is None:
            # Started outside the lock so interrupt() never waits for a child's start.
            try:
                child = self._start_child()
            except SpeechBackendUnavailable as exc:
                raise BackendError(str(exc)) from None
        with self._lock:
            self._child = child
            if utt.cancel.is_set():
                return
            self._proc = child.proc
        try:
            try:
                child.send({"cmd": "say", "text": utt.text, "wav": str(wav) if wav else None, "play": play})
            except (BrokenPipeError, OSError) as exc:
                if utt.cancel.is_set():
                    return
                raise BackendError(f"pyttsx3 child is gone ({exc})") from None
            deadline = time.monotonic() + 3.0 * self.estimate_duration(utt.text) + 10.0
            while True:
                try:
                    reply = child.replies.get(timeout=0.05)
                except queue.Empty:
                    if utt.cancel.is_set():
                        return
                    if time.monotonic() > deadline:
                        kill_child(child.proc)
                        raise BackendError("pyttsx3 did not finish speaking in time (killed)") from None
                    continue
                if reply is None:
                    if utt.cancel.is_set():
                        return
                    raise BackendError(f"pyttsx3 child died (exit {child.proc.poll()})")
                if not reply.get("ok"):
                    raise BackendError(f"pyttsx3: {reply.get('error', 'failed')}")
                return
        finally:
            with self._lock:
                self._proc = None
                if not child.alive():
                    self._child = None

    def save_wav(self, utt: Utterance) -> list[Path]:
        """Earcon as usual; the speech WAV is written by pyttsx3 itself (``save_to_file``)."""
        out = self._save_earcon_wav(utt)
        sp = self.speech_wav_path(utt)
        if sp is not None:
            self.say_to(utt, wav=sp, play=False)
            if sp.is_file():
                out.append(sp)
        return out

    def restart(self) -> None:
        """Kill the child; the next utterance starts a fresh one."""
        with self._lock:
            child, self._child = self._child, None
        super().restart()
        if child is not None:
            kill_child(child.proc)

    def close(self) -> None:
        """Ask the child to quit, kill it if it does not."""
        self._closed = True
        self.interrupt()
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(OSError, ValueError):
                child.send({"cmd": "quit"})
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=0.5)
            kill_child(child.proc)
