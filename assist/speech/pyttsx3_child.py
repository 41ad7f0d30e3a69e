"""The pyttsx3 speaker, run as a child process of the agent.

Why a child: pyttsx3's Linux espeak driver plays with a blocking
``os.system("aplay ...")`` and has no way to stop mid-sentence (pyttsx3
#138, #402), and some drivers never return from ``runAndWait`` when the audio
device misbehaves. Killing this process (and its process group, which holds
any ``aplay``) is the only reliable interrupt, and it costs nothing but a
restart (~0.2 s) before the next utterance.

This file is standalone on purpose (it must not import ``assist``): the parent
starts it with ``python path/to/pyttsx3_child.py``.

Protocol: JSON Lines. stdin receives ``{"cmd": "say", "text": ..., "wav":
path-or-null, "play": bool}`` or ``{"cmd": "quit"}``; the original stdout
receives ``{"ready": true, "driver": ...}`` once, then one ``{"ok": true}`` or
``{"ok": false, "error": ...}`` per command. Everything else the engine
prints (pyttsx3 prints "Audio saved to ...") goes to stderr so it cannot
corrupt the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _open_protocol_channel() -> Any:
    """Keep the real stdout for the protocol and send fd 1 (and ``print``) to stderr."""
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


def _pick_voice(engine: Any, language: str) -> str | None:
    """The id of the first installed voice for ``language`` (en, fr, ...), or None."""
    lang = language.lower()
    try:
        voices = engine.getProperty("voices") or []
    except Exception:  # noqa: BLE001 - some drivers cannot list voices; keep the default
        return None
    for v in voices:
        for code in getattr(v, "languages", None) or []:
            if isinstance(code, bytes):
                code = code.decode("utf-8", "ignore")
            c = str(code).lower().lstrip("\x05").replace("-", "_")
            if c == lang or c.startswith(lang + "_"):
                return v.id
    for v in voices:  # espeak ids look like "gmw/en", "roa/fr"
        vid = str(getattr(v, "id", "")).lower()
        if vid.endswith("/" + lang) or vid == lang:
            return v.id
    return None


def _reset_save_file(engine: Any) -> None:
    """Work around pyttsx3 2.9x: after ``save_to_file`` the espeak driver keeps
    the file name, so the next ``say`` would overwrite that WAV instead of playing."""
    driver = getattr(getattr(engine, "proxy", None), "_driver", None)
    if driver is not None and hasattr(driver, "_save_file"):
        driver._save_file = None


def main(argv: list[str] | None = None) -> int:
    """Run the child: initialise pyttsx3, answer commands until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--driver", default="", help="pyttsx3 driver name (espeak, sapi5, nsss), empty = default")
    parser.add_argument("--rate", type=int, default=175)
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--voice", default="")
    parser.add_argument("--language", default="en")
    args = parser.parse_args(argv)
    proto = _open_protocol_channel()

    def send(msg: dict[str, Any]) -> None:
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    try:
        import pyttsx3

        engine = pyttsx3.init(args.driver or None)
        engine.setProperty("rate", args.rate)
        engine.setProperty("volume", max(0.0, min(1.0, args.volume)))
        voice = args.voice or _pick_voice(engine, args.language)
        if voice:
            engine.setProperty("voice", voice)
        driver = type(getattr(getattr(engine, "proxy", None), "_driver", None)).__module__
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides what to do
        send({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    send({"ready": True, "driver": driver, "voice": voice or ""})

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError as exc:
            send({"ok": False, "error": f"bad command: {exc}"})
            continue
        if msg.get("cmd") == "quit":
            break
        if msg.get("cmd") != "say":
            send({"ok": False, "error": f"unknown command {msg.get('cmd')!r}"})
            continue
        text = str(msg.get("text", ""))
        try:
            if msg.get("wav"):
                engine.save_to_file(text, msg["wav"])
                engine.runAndWait()
                _reset_save_file(engine)
            if msg.get("play", True):
                engine.say(text)
                engine.runAndWait()
            send({"ok": True})
        except Exception as exc:  # noqa: BLE001 - the parent restarts us or falls back
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
