"""espeak-ng, one child process per utterance (killed on interrupt).

It has two outputs, chosen once by a probe at start:

* ``device``: espeak-ng speaks to the sound card itself (lowest latency).
* ``paced``: there is no sound device (a headless box, CI). espeak-ng would
  print an ALSA error and return at once, which would make every utterance
  take 0 s; instead it writes audio to a pipe that we drain at real-time
  pace. The utterance then lasts exactly as long as it would aloud, the child
  really is alive mid-sentence, and interrupting it behaves as on a device.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import time
from pathlib import Path

from assist.config import SpeechConfig
from assist.speech.backends.base import BackendError, SpeechBackend, SpeechBackendUnavailable, Utterance
from assist.speech.backends.process import Spawner, find_player, kill_child, set_pipe_size
from assist.speech.backends.process import spawn as spawn_child
from assist.speech.wav import (
    SpeechRenderError,
    espeak_args,
    espeak_binary,
    espeak_voice,
    parse_stream_header,
    render_wav,
    write_pcm_wav,
)

log = logging.getLogger(__name__)


def probe_audio_device(binary: str, timeout_s: float = 5.0, *, spawn: Spawner = spawn_child) -> tuple[bool, str]:
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


class EspeakBackend(SpeechBackend):
    """espeak-ng, one child process per utterance (killed on interrupt).

    Voice from ``speech.voice`` or ``speech.language``, rate ``-s`` (wpm),
    volume ``-a``. ``output`` is ``auto`` (probe), ``device`` or ``paced``.
    """

    name = "espeak"

    def __init__(self, cfg: SpeechConfig, *, wav_dir: Path | None = None, output: str = "auto",
                 binary: str | None = None, spawn: Spawner = spawn_child) -> None:
        super().__init__(cfg, wav_dir=wav_dir, spawn=spawn)
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
        ok, reason = probe_audio_device(self.binary, spawn=self.spawn)
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
                proc = self.spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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
            set_pipe_size(fd, 4096)
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
