"""WAV files: render any utterance with espeak-ng, write numpy audio, and
measure WAVs (duration, loudness, per-channel loudness) for tests and the
``--speech-wav DIR`` debugging option.

Only the standard library ``wave`` module and numpy are used, so reading and
writing work on every platform; rendering speech needs the espeak-ng binary.
"""

from __future__ import annotations

import logging
import re
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: espeak-ng voices for the languages the agent speaks (``speech.language``).
ESPEAK_VOICES = {"en": "en", "fr": "fr", "de": "de", "es": "es"}


class SpeechRenderError(RuntimeError):
    """Speech could not be rendered (engine missing or failed)."""


def espeak_binary() -> str | None:
    """Path of the espeak-ng (or legacy espeak) binary, or None when not installed."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


def espeak_voice(language: str, voice: str = "") -> str:
    """The espeak-ng voice: an explicit ``speech.voice`` wins, else the language's default."""
    return voice or ESPEAK_VOICES.get(language, language or "en")


def espeak_args(binary: str, *, language: str = "en", voice: str = "", rate: int = 175,
                volume: float = 1.0) -> list[str]:
    """Command-line options shared by every espeak-ng call.

    ``volume`` 0..1 maps to espeak-ng's amplitude 0..200 with 1.0 -> 100 (its
    default): louder than 100 clips on some voices, so we never go above it.
    """
    amplitude = int(round(max(0.0, min(1.0, volume)) * 100))
    return [binary, "-v", espeak_voice(language, voice), "-s", str(int(rate)), "-a", str(amplitude)]


def slug(text: str, max_len: int = 40) -> str:
    """A file-name-safe short form of ``text`` (for WAV names in ``--speech-wav``)."""
    s = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return s[:max_len] or "utterance"


def render_wav(text: str, path: str | Path, *, language: str = "en", voice: str = "", rate: int = 175,
               volume: float = 1.0, timeout_s: float = 30.0) -> Path:
    """Render ``text`` to a WAV file with espeak-ng (``espeak-ng -w``) and return its path.

    Raises SpeechRenderError with a one-line reason when espeak-ng is missing,
    the voice does not exist or the engine fails.
    """
    binary = espeak_binary()
    if binary is None:
        raise SpeechRenderError("espeak-ng not found: install it (apt install espeak-ng) to render speech to WAV")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = espeak_args(binary, language=language, voice=voice, rate=rate, volume=volume)
    # "--" would be safer against text starting with "-", but espeak-ng does
    # not support it; stdin input avoids the problem entirely.
    args += ["-w", str(out), "--stdin"]
    try:
        proc = subprocess.run(args, input=text.encode("utf-8"), capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise SpeechRenderError(f"espeak-ng took longer than {timeout_s:g} s to render {text[:40]!r}") from None
    except OSError as exc:
        raise SpeechRenderError(f"espeak-ng could not be started ({exc})") from None
    if proc.returncode != 0 or not out.is_file():
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SpeechRenderError(f"espeak-ng failed (exit {proc.returncode}): {msg[-1] if msg else 'no message'}")
    return out


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float audio in -1..1 (or int16 already) -> int16, clipped."""
    if samples.dtype == np.int16:
        return samples
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono ``(n,)`` or multi-channel ``(n, channels)`` audio as 16-bit PCM WAV."""
    data = to_int16(np.asarray(samples))
    channels = 1 if data.ndim == 1 else data.shape[1]
    return write_pcm_wav(path, np.ascontiguousarray(data).astype("<i2").tobytes(), sample_rate, channels)


def write_pcm_wav(path: str | Path, pcm: bytes, sample_rate: int, channels: int = 1) -> Path:
    """Write raw 16-bit little-endian PCM bytes as a WAV file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as fh:
        fh.setnchannels(channels)
        fh.setsampwidth(2)
        fh.setframerate(int(sample_rate))
        fh.writeframes(pcm[: len(pcm) - len(pcm) % (2 * channels)])
    return out


def parse_stream_header(header: bytes) -> tuple[int, int, int] | None:
    """(sample_rate, channels, header_length) of a streamed 16-bit PCM WAV header, or None.

    espeak-ng ``--stdout`` writes a RIFF header whose sizes are placeholders
    (0x7ffff...), so the ``wave`` module cannot be used on the stream: we walk
    the chunks ourselves up to the start of the ``data`` chunk.
    """
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    pos, rate, channels = 12, 0, 0
    while pos + 8 <= len(header):
        cid, size = header[pos:pos + 4], struct.unpack("<I", header[pos + 4:pos + 8])[0]
        if cid == b"fmt ":
            if pos + 8 + 16 > len(header):
                return None
            _fmt, channels, rate = struct.unpack("<HHI", header[pos + 8:pos + 16])
            pos += 8 + size + (size & 1)
        elif cid == b"data":
            return (rate, channels, pos + 8) if rate and channels else None
        else:
            pos += 8 + size + (size & 1)
    return None


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV: (float32 samples in -1..1 shaped (n, channels), sample rate)."""
    with wave.open(str(path), "rb") as fh:
        if fh.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported (got {8 * fh.getsampwidth()}-bit)")
        channels, rate = fh.getnchannels(), fh.getframerate()
        raw = fh.readframes(fh.getnframes())
    data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return data.reshape(-1, channels), rate


def wav_duration(path: str | Path) -> float:
    """Length of a WAV file in seconds."""
    with wave.open(str(path), "rb") as fh:
        return fh.getnframes() / float(fh.getframerate())


def rms(samples: np.ndarray) -> float:
    """Root-mean-square level of float audio (0 = silence, ~0.7 = full-scale sine)."""
    a = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS loudness in dB relative to full scale (-inf for digital silence)."""
    level = rms(samples)
    return float(20.0 * np.log10(level)) if level > 0 else float("-inf")


def wav_rms(path: str | Path) -> float:
    """RMS loudness of a whole WAV file (all channels together), 0..1."""
    samples, _ = read_wav(path)
    return rms(samples)


def channel_rms(path: str | Path) -> list[float]:
    """RMS loudness of each channel of a WAV file (left first)."""
    samples, _ = read_wav(path)
    return [rms(samples[:, c]) for c in range(samples.shape[1])]


def voiced_duration(path: str | Path, *, frame_s: float = 0.02, threshold_dbfs: float = -40.0) -> float:
    """Seconds between the first and last frame louder than ``threshold_dbfs``.

    Engines pad speech with silence; this measures the speech itself, which is
    what should scale with the number of words.
    """
    samples, rate = read_wav(path)
    mono = samples.mean(axis=1)
    n = max(1, int(rate * frame_s))
    frames = len(mono) // n
    if frames == 0:
        return 0.0
    levels = np.sqrt(np.mean(mono[: frames * n].reshape(frames, n) ** 2, axis=1) + 1e-20)
    loud = np.nonzero(20.0 * np.log10(levels) > threshold_dbfs)[0]
    if loud.size == 0:
        return 0.0
    return float((loud[-1] - loud[0] + 1) * n / rate)
