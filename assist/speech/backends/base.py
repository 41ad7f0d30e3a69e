"""The speech backend interface every engine implements (``SpeechBackend``:
earcon, ``--speech-wav`` copies, interrupt from any thread), the
:class:`Utterance` it plays and the backends' errors."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assist.config import SpeechConfig
from assist.core.priority import Priority
from assist.speech.backends.process import Spawner, kill_child
from assist.speech.backends.process import spawn as spawn_child
from assist.speech.earcon import EARCON_RATE
from assist.speech.wav import SpeechRenderError, render_wav, slug, write_wav

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The engine failed while speaking (the arbiter restarts it or falls back)."""


class SpeechBackendUnavailable(RuntimeError):
    """A backend cannot be used here; the message says why and how to fix it."""


@dataclass
class Utterance:
    """One thing to say: its text, level, the frame it is about and an optional earcon.

    ``cancel`` is set by whoever interrupts it; backends check it before they
    start a child and stop as soon as it is set.
    """

    text: str
    priority: Priority = Priority.TEXT
    frame: int | None = None
    direction: str | None = None
    earcon: np.ndarray | None = None
    seq: int = 0
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def wav_stem(self) -> str:
        """File-name stem for ``--speech-wav``: sequence, level and a slug of the text."""
        return f"{self.seq:05d}_{self.priority.label}_{slug(self.text)}"

    @property
    def earcon_duration(self) -> float:
        """Seconds of earcon before the speech (0 without one)."""
        return 0.0 if self.earcon is None else len(self.earcon) / float(EARCON_RATE)


class SpeechBackend:
    """What the arbiter needs of a TTS engine.

    Subclasses implement ``_speak``; ``play`` adds the earcon, the WAV copy
    for ``--speech-wav`` and the bookkeeping that makes ``interrupt`` safe
    from any thread.
    """

    name = "base"
    player: list[str] | None = None  # command that plays a WAV file (aplay/paplay/afplay), when one exists

    def __init__(self, cfg: SpeechConfig, *, wav_dir: Path | None = None, spawn: Spawner = spawn_child) -> None:
        self.cfg = cfg
        # Every child (engine, player, probe) starts through this: a test or a
        # fault injector passes its own to watch or break them (the run's
        # speech-backend factory is the seam, see assist.runtime.options.RunSeams).
        self.spawn = spawn
        self.wav_dir = Path(wav_dir) if wav_dir is not None else None
        if self.wav_dir is not None:
            self.wav_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._utt: Utterance | None = None
        self._closed = False
        self._render_warned = False

    # -- description ---------------------------------------------------------------------------
    def describe(self) -> str:
        """One human line saying what this backend does (for the status event)."""
        return self.name

    # -- timing --------------------------------------------------------------------------------
    def estimate_duration(self, text: str) -> float:
        """Seconds ``text`` takes to say at ``speech.rate`` words per minute.

        espeak-ng's "words" are about 4.9 letters long, and each comma or
        sentence end adds a pause of about 0.7 word. Fitted on 14 warnings and
        captions at 120, 175 and 300 wpm against real espeak-ng WAVs: mean
        error 6 %, worst 31 % (very short phrases). Engine-independent enough
        for the none backend's timeline; real backends take their real time.
        """
        letters = sum(len(w) for w in re.findall(r"\w+", text))
        if letters == 0:
            return 0.0
        pauses = len(re.findall(r"[,;:]", text)) + len(re.findall(r"[.!?](\s|$)", text))
        word_s = 60.0 / float(self.cfg.rate)
        return round((letters / 4.9 + 0.7 * pauses) * word_s, 3)

    def utterance_duration(self, utt: Utterance) -> float:
        """Earcon plus estimated speech, in seconds (the virtual-clock length of ``utt``)."""
        return round(utt.earcon_duration + self.estimate_duration(utt.text), 3)

    # -- WAV copies ----------------------------------------------------------------------------
    def earcon_wav_path(self, utt: Utterance) -> Path | None:
        """Where the earcon of ``utt`` goes in ``wav_dir`` (None without wav_dir or earcon)."""
        if self.wav_dir is None or utt.earcon is None:
            return None
        return self.wav_dir / f"{utt.seq:05d}_earcon_{slug(utt.direction or 'center')}.wav"

    def speech_wav_path(self, utt: Utterance) -> Path | None:
        """Where the speech of ``utt`` goes in ``wav_dir`` (None without wav_dir)."""
        return None if self.wav_dir is None else self.wav_dir / f"{utt.wav_stem()}.wav"

    def _save_earcon_wav(self, utt: Utterance) -> list[Path]:
        """Write the earcon of ``utt`` to ``wav_dir`` (if set and there is one); return the files."""
        ep = self.earcon_wav_path(utt)
        if ep is not None and utt.earcon is not None:
            return [write_wav(ep, utt.earcon, EARCON_RATE)]
        return []

    def save_wav(self, utt: Utterance) -> list[Path]:
        """Write the earcon and the speech of ``utt`` to ``wav_dir`` (if set); return the files.

        The speech is rendered with espeak-ng when it is installed; without it
        the speech WAV is skipped with one warning (the log still has the text).
        """
        out = self._save_earcon_wav(utt)
        sp = self.speech_wav_path(utt)
        if sp is not None:
            try:
                out.append(render_wav(utt.text, sp, language=self.cfg.language, voice=self.cfg.voice,
                                      rate=self.cfg.rate, volume=self.cfg.volume))
            except SpeechRenderError as exc:
                if not self._render_warned:
                    log.warning("--speech-wav: %s", exc)
                    self._render_warned = True
        return out

    # -- playing -------------------------------------------------------------------------------
    def play(self, utt: Utterance) -> None:
        """Say ``utt`` (earcon first); block until done or interrupted.

        Raises BackendError when the engine fails; returns normally when
        interrupted (``utt.cancel`` is then set).
        """
        if self._closed:
            raise BackendError(f"{self.name}: backend is closed")
        with self._lock:
            self._utt = utt
        try:
            if utt.earcon is not None and not utt.cancel.is_set():
                self._play_earcon(utt)
            if not utt.cancel.is_set():
                self._speak(utt)
        finally:
            with self._lock:
                self._utt = None

    def _play_earcon(self, utt: Utterance) -> None:
        """Default earcon: write it (wav_dir) and take its duration without sound."""
        ep = self.earcon_wav_path(utt)
        if ep is not None and utt.earcon is not None:
            write_wav(ep, utt.earcon, EARCON_RATE)
        utt.cancel.wait(utt.earcon_duration)

    def _speak(self, utt: Utterance) -> None:
        raise NotImplementedError

    def _play_earcon_with_player(self, utt: Utterance) -> subprocess.CompletedProcess[bytes]:
        """Write the earcon to a WAV (the --speech-wav file, else a temporary
        one) and play it with ``self.player`` in a killable child."""
        assert utt.earcon is not None and self.player is not None
        ep = self.earcon_wav_path(utt)
        tmp = None
        if ep is None:
            fd, name = tempfile.mkstemp(suffix=".wav", prefix="earcon_")
            os.close(fd)
            tmp = ep = Path(name)
        try:
            write_wav(ep, utt.earcon, EARCON_RATE)
            return self._run_child(utt, [*self.player, str(ep)], deadline_s=5.0, what="earcon")
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _run_child(self, utt: Utterance, args: list[str], *, stdin_data: bytes | None = None,
                   deadline_s: float = 30.0, what: str = "speech") -> subprocess.CompletedProcess:
        """Run one child to completion, killable by ``interrupt``; a child still
        running after ``deadline_s`` is treated as hung (killed, BackendError)."""
        with self._lock:
            if utt.cancel.is_set():
                return subprocess.CompletedProcess(args, -9, b"", b"")
            try:
                proc = self.spawn(args, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except OSError as exc:
                raise BackendError(f"{self.name}: cannot start {args[0]} ({exc})") from None
            self._proc = proc
        try:
            try:
                _out, err = proc.communicate(input=stdin_data, timeout=deadline_s)
            except subprocess.TimeoutExpired:
                kill_child(proc)
                raise BackendError(f"{self.name}: {what} did not finish within {deadline_s:.0f} s (killed)") from None
            except (BrokenPipeError, OSError, ValueError):
                # The child was killed while we fed it text; reap it below.
                kill_child(proc)
                err = b""
        finally:
            with self._lock:
                self._proc = None
        return subprocess.CompletedProcess(args, proc.returncode, b"", err or b"")

    def interrupt(self) -> None:
        """Stop the current utterance now (kill its child); safe from any thread."""
        with self._lock:
            if self._utt is not None:
                self._utt.cancel.set()
            proc = self._proc
        kill_child(proc, wait_s=0.2)

    def restart(self) -> None:
        """Bring the engine back after a failure (default: kill any child)."""
        self.interrupt()

    def close(self) -> None:
        """Stop speaking and release the engine; later ``play`` calls raise BackendError."""
        self._closed = True
        self.interrupt()
