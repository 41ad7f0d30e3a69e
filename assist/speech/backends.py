"""TTS backends behind one small interface: espeak-ng, pyttsx3 (in a child
process) and ``none`` (log as if spoken).

Every backend plays an :class:`Utterance` with a blocking ``play`` that
returns when the speech is over or was interrupted, and an ``interrupt`` that
another thread may call at any time: it kills the child process that is
speaking, so the warning that caused it starts within milliseconds. Speech
runs in a child for exactly that reason (pyttsx3's Linux driver blocks in
``aplay`` and cannot be stopped; ovos-audio kills its player the same way).

espeak-ng has two outputs, chosen once by a probe at start:

* ``device``: espeak-ng speaks to the sound card itself (lowest latency).
* ``paced``: there is no sound device (a headless box, CI). espeak-ng would
  print an ALSA error and return at once, which would make every utterance
  take 0 s; instead it writes audio to a pipe that we drain at real-time
  pace. The utterance then lasts exactly as long as it would aloud, the child
  really is alive mid-sentence, and interrupting it behaves as on a device.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:  # POSIX only: used to shrink the espeak-ng pipe on Linux
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from assist.config import SpeechConfig
from assist.core.events import EventLog
from assist.core.priority import Priority
from assist.speech.earcon import EARCON_RATE
from assist.speech.wav import (
    SpeechRenderError,
    espeak_args,
    espeak_binary,
    espeak_voice,
    parse_stream_header,
    render_wav,
    slug,
    write_pcm_wav,
    write_wav,
)

log = logging.getLogger(__name__)

IS_POSIX = os.name == "posix"


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


# --------------------------------------------------------------------------- child processes


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """Start a child in its own process group (POSIX), so a kill also reaches
    whatever it started (pyttsx3 runs ``sh -c aplay``)."""
    if IS_POSIX:
        kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(args, **kwargs)  # noqa: S603 - fixed argument lists, never a shell


def kill_child(proc: subprocess.Popen | None, wait_s: float = 1.0) -> None:
    """Kill a child (and its process group on POSIX) and reap it; never raises."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            if IS_POSIX:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError, OSError):
            with contextlib.suppress(OSError):
                proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(timeout=wait_s)


def find_player() -> list[str] | None:
    """A command that plays a WAV file on the sound device, or None.

    Used for earcons (espeak-ng only speaks text). paplay/pw-play go through
    the sound server, aplay straight to ALSA, afplay is macOS's own.
    """
    for cmd in (["paplay"], ["pw-play"], ["aplay", "-q"], ["afplay"]):
        if shutil.which(cmd[0]):
            return cmd
    return None


# --------------------------------------------------------------------------- base


class SpeechBackend:
    """What the arbiter needs of a TTS engine.

    Subclasses implement ``_speak``; ``play`` adds the earcon, the WAV copy
    for ``--speech-wav`` and the bookkeeping that makes ``interrupt`` safe
    from any thread.
    """

    name = "base"
    player: list[str] | None = None  # command that plays a WAV file (aplay/paplay/afplay), when one exists

    def __init__(self, cfg: SpeechConfig, *, wav_dir: Path | None = None) -> None:
        self.cfg = cfg
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
                proc = spawn(args, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
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


# --------------------------------------------------------------------------- none


class NoneBackend(SpeechBackend):
    """Speaks nothing: each utterance takes its estimated duration (interruptible),
    so a headless log shows what a listener would have heard and when."""

    name = "none"

    def describe(self) -> str:
        """One line for the status event."""
        return "none (silent: speech is logged with estimated durations)"

    def _speak(self, utt: Utterance) -> None:
        if self.wav_dir is not None:
            self.save_wav(utt)
        utt.cancel.wait(self.estimate_duration(utt.text))


# --------------------------------------------------------------------------- espeak-ng


def probe_audio_device(binary: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """Does espeak-ng reach a sound device here? (ok, reason).

    Speaks one silent syllable (amplitude 0). Without a device espeak-ng
    prints ALSA errors and an ``error:`` line and exits 0 at once; a probe
    that hangs (a wedged sound server) counts as no device, never as a hang.
    """
    try:
        proc = spawn([binary, "-a", "0", "a"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
    except OSError as exc:
        return False, f"cannot start {binary} ({exc})"
    try:
        _out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_child(proc)
        return False, f"audio output did not answer within {timeout_s:g} s"
    text = err.decode("utf-8", "replace")
    bad = [ln for ln in text.splitlines() if ln.lower().startswith("error") or "cannot open" in ln.lower()]
    if proc.returncode != 0 or bad:
        return False, (bad[-1] if bad else f"exit {proc.returncode}")
    return True, "sound device"


def check_espeak_voice(binary: str, voice: str) -> None:
    """Raise SpeechBackendUnavailable when espeak-ng has no voice of that name."""
    try:
        proc = subprocess.run([binary, "-q", "-v", voice, "a"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechBackendUnavailable(f"espeak-ng at {binary} does not run ({exc}); reinstall espeak-ng") from None
    if proc.returncode != 0:
        raise SpeechBackendUnavailable(
            f"espeak-ng has no voice {voice!r} "
            "(set speech.voice to one listed by `espeak-ng --voices`, or leave it empty)")


def _set_pipe_size(fd: int, size: int) -> None:
    """Shrink a pipe (Linux) so the engine runs at most ~0.1 s ahead of playback."""
    if fcntl is None or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)


class EspeakBackend(SpeechBackend):
    """espeak-ng, one child process per utterance (killed on interrupt).

    Voice from ``speech.voice`` or ``speech.language``, rate ``-s`` (wpm),
    volume ``-a``. ``output`` is ``auto`` (probe), ``device`` or ``paced``.
    """

    name = "espeak"

    def __init__(self, cfg: SpeechConfig, *, wav_dir: Path | None = None, output: str = "auto",
                 binary: str | None = None) -> None:
        super().__init__(cfg, wav_dir=wav_dir)
        found = binary or espeak_binary()
        if found is None:
            raise SpeechBackendUnavailable("espeak-ng not found: install it (apt install espeak-ng) "
                                           "or choose another speech backend (--speech pyttsx3|none)")
        self.binary = found
        self.voice = espeak_voice(cfg.language, cfg.voice)
        check_espeak_voice(self.binary, self.voice)
        if output not in ("auto", "device", "paced"):
            raise ValueError(f"output must be auto, device or paced (got {output!r})")
        self._requested_output = output
        self.output, self.output_reason = self._choose_output()
        self.player = find_player()

    def _choose_output(self) -> tuple[str, str]:
        if self._requested_output != "auto":
            return self._requested_output, "requested"
        ok, reason = probe_audio_device(self.binary)
        if not ok:
            log.info("espeak-ng: no sound device (%s); speech is paced silently", reason)
        return ("device", reason) if ok else ("paced", reason)

    def describe(self) -> str:
        """One line for the status event."""
        where = "sound device" if self.output == "device" else f"no sound device ({self.output_reason}): paced silently"
        return f"espeak-ng voice {self.voice}, {self.cfg.rate} wpm, {where}"

    def _args(self) -> list[str]:
        return espeak_args(self.binary, language=self.cfg.language, voice=self.cfg.voice, rate=self.cfg.rate,
                           volume=self.cfg.volume)

    def _deadline(self, text: str) -> float:
        # Generous: a hung engine is caught, a slow machine is not punished.
        return 3.0 * self.estimate_duration(text) + 5.0

    def _play_earcon(self, utt: Utterance) -> None:
        if self.output == "paced" or self.player is None or utt.earcon is None:
            # No device (or nothing to play a WAV with): the tone is written
            # for --speech-wav and otherwise skipped, taking its real length.
            super()._play_earcon(utt)
            return
        res = self._play_earcon_with_player(utt)
        if res.returncode != 0 and not utt.cancel.is_set():
            log.debug("earcon player failed (exit %s); skipped", res.returncode)

    def _speak(self, utt: Utterance) -> None:
        if self.output == "device":
            self._speak_device(utt)
        else:
            self._speak_paced(utt)

    def _speak_device(self, utt: Utterance) -> None:
        sp = self.speech_wav_path(utt)
        if sp is not None:
            # espeak-ng -w writes instead of speaking, so the debug copy is a
            # second (fast, ~20x real time) render before playback.
            try:
                render_wav(utt.text, sp, language=self.cfg.language, voice=self.cfg.voice, rate=self.cfg.rate,
                           volume=self.cfg.volume)
            except SpeechRenderError as exc:
                log.warning("--speech-wav: %s", exc)
        # Text goes in on stdin: as an argument, text starting with "-" would be an option.
        res = self._run_child(utt, [*self._args(), "--stdin"], stdin_data=utt.text.encode("utf-8"),
                              deadline_s=self._deadline(utt.text))
        if utt.cancel.is_set():
            return
        err = res.stderr.decode("utf-8", "replace").strip().splitlines()
        failed = [ln for ln in err if ln.lower().startswith("error")]
        if res.returncode != 0 or failed:
            # A device that vanished (headset unplugged) shows up here; restart() re-probes it.
            raise BackendError(f"espeak-ng failed (exit {res.returncode}): {(failed or err or ['no message'])[-1]}")

    def _speak_paced(self, utt: Utterance) -> None:
        args = [*self._args(), "--stdout", "--stdin"]
        with self._lock:
            if utt.cancel.is_set():
                return
            try:
                proc = spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            except OSError as exc:
                raise BackendError(f"espeak-ng: cannot start {self.binary} ({exc})") from None
            self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        deadline = self._deadline(utt.text)
        # The watchdog kills a hung engine; reading would otherwise block forever.
        hung = threading.Event()

        def _watchdog() -> None:
            hung.set()
            kill_child(proc, wait_s=0.2)

        timer = threading.Timer(deadline, _watchdog)
        timer.daemon = True
        timer.start()
        pcm = bytearray()
        try:
            fd = proc.stdout.fileno()
            _set_pipe_size(fd, 4096)
            try:
                proc.stdin.write(utt.text.encode("utf-8"))
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            header = b""
            fmt = None
            while fmt is None:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                header += chunk
                fmt = parse_stream_header(header)
                if fmt is None and len(header) > 4096:
                    raise BackendError("espeak-ng --stdout: not a WAV stream")
            if fmt is not None:
                rate, channels, hlen = fmt
                bytes_per_s = float(rate * channels * 2)
                pcm += header[hlen:]
                t0 = time.monotonic()
                while not utt.cancel.is_set():
                    ahead = len(pcm) / bytes_per_s - (time.monotonic() - t0)
                    if ahead > 0.01 and utt.cancel.wait(ahead):
                        break
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        break
                    pcm += chunk
                # The last chunk still has to "play out".
                rest = len(pcm) / bytes_per_s - (time.monotonic() - t0)
                if rest > 0 and not utt.cancel.is_set():
                    utt.cancel.wait(rest)
                sp = self.speech_wav_path(utt)
                if sp is not None and pcm:
                    write_pcm_wav(sp, bytes(pcm), rate, channels)
        finally:
            timer.cancel()
            if utt.cancel.is_set() or hung.is_set():
                kill_child(proc, wait_s=0.5)
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2.0)
                kill_child(proc, wait_s=0.2)
            with contextlib.suppress(OSError):
                proc.stdout.close()
            with self._lock:
                self._proc = None
        if hung.is_set() and not utt.cancel.is_set():
            raise BackendError(f"espeak-ng did not finish within {deadline:.0f} s (killed)")
        if not utt.cancel.is_set() and proc.returncode not in (0, None):
            raise BackendError(f"espeak-ng failed (exit {proc.returncode})")
        if not pcm and not utt.cancel.is_set() and re.search(r"\w", utt.text):
            raise BackendError("espeak-ng produced no audio")

    def restart(self) -> None:
        """Kill any child and re-probe the sound device (it may have gone or come back)."""
        super().restart()
        self.output, self.output_reason = self._choose_output()
        self.player = find_player()

    @property
    def current_pid(self) -> int | None:
        """PID of the espeak-ng child speaking now (tests check it really ran)."""
        with self._lock:
            return self._proc.pid if self._proc is not None else None


# --------------------------------------------------------------------------- pyttsx3


CHILD_SCRIPT = Path(__file__).with_name("pyttsx3_child.py")


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
                 start_timeout_s: float = 20.0) -> None:
        super().__init__(cfg, wav_dir=wav_dir)
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
            proc = spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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


# --------------------------------------------------------------------------- factory


def _create(name: str, cfg: SpeechConfig, wav_dir: Path | None) -> SpeechBackend:
    if name == "espeak":
        return EspeakBackend(cfg, wav_dir=wav_dir)
    if name == "pyttsx3":
        return Pyttsx3Backend(cfg, wav_dir=wav_dir)
    if name == "none":
        return NoneBackend(cfg, wav_dir=wav_dir)
    raise SpeechBackendUnavailable(f"unknown speech backend {name!r} (choose auto, espeak, pyttsx3 or none)")


def auto_order() -> list[str]:
    """Backends ``auto`` tries, best first: espeak-ng on Linux, the native pyttsx3 driver elsewhere."""
    if platform.system() == "Linux":
        return ["espeak", "pyttsx3", "none"]
    return ["pyttsx3", "espeak", "none"]


def make_backend(cfg: SpeechConfig, events: EventLog, *, wav_dir: Path | None = None) -> SpeechBackend:
    """The backend ``speech.backend`` names; ``auto`` picks the first that works.

    Emits a ``status`` event ``speech_backend`` saying which one and why.
    An explicitly named backend that cannot work raises
    SpeechBackendUnavailable (a config problem: exit 2), ``auto`` never
    raises (``none`` always works).
    """
    tried: list[str] = []
    names = auto_order() if cfg.backend == "auto" else [cfg.backend]
    backend: SpeechBackend | None = None
    for name in names:
        try:
            backend = _create(name, cfg, wav_dir)
            break
        except SpeechBackendUnavailable as exc:
            if cfg.backend != "auto":
                raise
            log.info("speech backend %s unavailable: %s", name, exc)
            tried.append(f"{name}: {exc}")
    assert backend is not None  # "none" cannot fail
    events.status("speech_backend", text=f"speech: {backend.describe()}", backend=backend.name,
                  requested=cfg.backend, unavailable=tried)
    return backend
