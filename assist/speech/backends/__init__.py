"""TTS backends behind one small interface, one file each: espeak-ng, pyttsx3 (in a child
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

Files: ``base`` (the interface, ``Utterance``, errors), ``process`` (child
processes), ``espeak``, ``pyttsx3``, ``none``; this module is the registry:
:func:`make_backend` builds the one ``speech.backend`` names.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from pathlib import Path

from assist.config import SpeechConfig
from assist.core.events import EventLog
from assist.speech.backends.base import BackendError, SpeechBackend, SpeechBackendUnavailable, Utterance
from assist.speech.backends.espeak import EspeakBackend
from assist.speech.backends.none import NoneBackend
from assist.speech.backends.process import Spawner, kill_child, spawn
from assist.speech.backends.process import spawn as spawn_child
from assist.speech.backends.pyttsx3 import Pyttsx3Backend

log = logging.getLogger(__name__)

#: Builds the run's speech backend: ``(speech config, event log, wav_dir) -> backend``.
#: :func:`make_backend` is the default; ``run_pipeline`` takes another (soak, fault injection).
BackendFactory = Callable[[SpeechConfig, EventLog, Path | None], SpeechBackend]


def _create(name: str, cfg: SpeechConfig, wav_dir: Path | None, spawn: Spawner) -> SpeechBackend:
    if name == "espeak":
        return EspeakBackend(cfg, wav_dir=wav_dir, spawn=spawn)
    if name == "pyttsx3":
        return Pyttsx3Backend(cfg, wav_dir=wav_dir, spawn=spawn)
    if name == "none":
        return NoneBackend(cfg, wav_dir=wav_dir, spawn=spawn)
    raise SpeechBackendUnavailable(f"unknown speech backend {name!r} (choose auto, espeak, pyttsx3 or none)")


def auto_order() -> list[str]:
    """Backends ``auto`` tries, best first: espeak-ng on Linux, the native pyttsx3 driver elsewhere."""
    if platform.system() == "Linux":
        return ["espeak", "pyttsx3", "none"]
    return ["pyttsx3", "espeak", "none"]


def make_backend(cfg: SpeechConfig, events: EventLog, *, wav_dir: Path | None = None,
                 spawn: Spawner = spawn_child) -> SpeechBackend:
    """The backend ``speech.backend`` names; ``auto`` picks the first that works.

    Emits a ``status`` event ``speech_backend`` saying which one and why.
    An explicitly named backend that cannot work raises
    SpeechBackendUnavailable (a config problem: exit 2), ``auto`` never
    raises (``none`` always works). ``spawn`` starts every engine child
    (a fault injector passes its own).
    """
    tried: list[str] = []
    names = auto_order() if cfg.backend == "auto" else [cfg.backend]
    backend: SpeechBackend | None = None
    for name in names:
        try:
            backend = _create(name, cfg, wav_dir, spawn)
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


__all__ = ["BackendError", "BackendFactory", "EspeakBackend", "NoneBackend", "Pyttsx3Backend", "Spawner",
           "SpeechBackend", "SpeechBackendUnavailable", "Utterance", "auto_order", "kill_child", "make_backend",
           "spawn"]
