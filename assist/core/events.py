"""The event log: JSON Lines, one object per line, flushed per line.

Every event has ``t`` (seconds since start on the pipeline clock), ``type``,
``frame`` (or null) and ``text`` (what is or would be spoken, or null).
Sinks (the JSONL file, the console, test collectors) are plain callables; an
exception in one is contained so it can never stop the others or the agent.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from assist.core.clock import Clock, RealClock
from assist.core.log_lock import open_locked_log, release_pid_file

log = logging.getLogger(__name__)

Event = dict[str, Any]
Sink = Callable[[Event], None]

def _jsonable(value: Any) -> Any:
    """Make numpy scalars, tuples and other odd values JSON-friendly."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    return value


class JsonlFileSink:
    """Append events to a file, one JSON object per line, flushed per line so
    a crash loses nothing already written. A disk that fills up or a file that
    becomes unwritable reports one error and then the sink goes quiet: the
    agent keeps speaking (issue: losing the log must never silence warnings).
    """

    def __init__(self, path: str | Path, on_error: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self._on_error = on_error
        self._failed = False
        # Locked, then truncated: a second run on the same path raises LogInUse
        # instead of interleaving its lines with ours (assist/core/log_lock.py).
        self._fh: TextIO | None
        self._fh, self._pid_file = open_locked_log(self.path)

    def __call__(self, event: Event) -> None:
        if self._fh is None or self._failed:
            return
        try:
            self._fh.write(json.dumps(event, ensure_ascii=False) + "\n")
            self._fh.flush()
        except (OSError, ValueError) as exc:
            self._failed = True
            msg = f"event log {self.path}: cannot write ({exc}); continuing without the log"
            if self._on_error is not None:
                # The owner prints it: logging it as well put it on the console twice.
                log.debug(msg)
                self._on_error(msg)
            else:
                log.error(msg)

    @property
    def failed(self) -> bool:
        """True once a write has failed."""
        return self._failed

    def close(self) -> None:
        """Close the file (errors on close are reported like write errors)."""
        if self._fh is not None:
            if self._pid_file:
                release_pid_file(self.path)
            try:
                self._fh.close()
            except OSError as exc:
                if not self._failed and self._on_error is not None:
                    self._on_error(f"event log {self.path}: cannot close ({exc})")
            self._fh = None


# Status events shown on a quiet console even though they carry no text.
_CONSOLE_STATUS_WITHOUT_TEXT = ("started", "stopped")


def _outputs_suffix(outputs: Any) -> str:
    """"; log: a.jsonl; video: b.mp4" from a ``stopped`` event's ``outputs``."""
    if not isinstance(outputs, dict):
        return ""
    return "".join(f"; {name}: {where}" for name, where in outputs.items() if where)


def format_console_line(event: Event, verbose: bool = False) -> str | None:
    """One readable line per event a user cares about, or None to skip.

    Quiet by default (issue 13): what is said (SAY), hazards, captions, and the
    status events a user must know about, each once and short. A status notice
    that is also spoken (``said``) is shown by its SAY line only, an error
    already printed on stderr (``printed``) is not repeated; periodic
    ``capture`` statistics and other status events without text stay in the
    log. ``verbose`` (``-v``) shows every status event with its full text.
    """
    etype = event.get("type")
    t = event.get("t", 0.0)
    if etype == "speech" and event.get("event") == "start":
        return f"[{t:7.2f}s] SAY ({event.get('priority')}): {event.get('text')}"
    if etype == "hazard":
        where = f"{event.get('label')} {event.get('direction')} {event.get('proximity')}"
        return f"[{t:7.2f}s] HAZARD {where}: {event.get('text')}"
    if etype == "caption":
        name = f" {event['file']}" if event.get("file") else ""  # a photo of --images, named as it is described
        return f"[{t:7.2f}s] CAPTION ({event.get('source')}){name}: {event.get('text')}"
    if etype == "control":
        verdict = "ok" if event.get("ok") else f"refused: {event.get('reason')}"
        return f"[{t:7.2f}s] CONTROL {event.get('command')!r} ({event.get('via')}): {verdict}"
    if etype != "status":
        return None
    name = event.get("event")
    head = f"[{t:7.2f}s] STATUS {name}"
    if name == "stopped":
        code = event.get("exit_code")
        reason = event.get("reason")
        detail = ", ".join(str(x) for x in (reason, f"exit {code}" if code else None) if x)
        return head + (f" ({detail})" if detail else "") + _outputs_suffix(event.get("outputs"))
    if verbose:
        return head + (f": {event['text']}" if event.get("text") else "")
    if event.get("said") or event.get("printed"):
        return None  # its SAY line, or the error line on stderr, already says it
    if name == "started":
        return head + (f": {event['source']}" if event.get("source") else "")
    text = event.get("brief") or event.get("text")
    if text:
        return f"{head}: {text}"
    return head if name in _CONSOLE_STATUS_WITHOUT_TEXT else None


class ConsoleSink:
    """Print one readable line per event a user cares about (see :func:`format_console_line`)."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False) -> None:
        self._stream = stream
        self.verbose = verbose

    def __call__(self, event: Event) -> None:
        line = format_console_line(event, self.verbose)
        if line is not None:
            stream = self._stream or sys.stdout
            print(line, file=stream, flush=True)


class EventLog:
    """Thread-safe event fan-out with a shared time origin."""

    def __init__(self, clock: Clock | None = None, t0: float | None = None) -> None:
        self.clock = clock or RealClock()
        self.t0 = self.clock.now() if t0 is None else t0
        self._sinks: list[Sink] = []
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add_sink(self, sink: Sink) -> None:
        """Register a callable that receives every event dict."""
        with self._lock:
            self._sinks.append(sink)

    def emit(self, type: str, *, frame: int | None = None, text: str | None = None,
             t: float | None = None, **fields: Any) -> Event:
        """Build an event, send it to every sink and return it.

        ``t`` is an absolute clock time (defaults to now); the log stores it
        relative to the start of the run.
        """
        when = self.clock.now() if t is None else t
        event: Event = {"t": round(max(0.0, when - self.t0), 3), "type": type,
                        "frame": frame, "text": text}
        event.update({k: _jsonable(v) for k, v in fields.items()})
        with self._lock:
            self.counts[type] = self.counts.get(type, 0) + 1
            sinks = list(self._sinks)
            # Sinks are called under the lock so lines never interleave and
            # the file order equals the emit order.
            for sink in sinks:
                try:
                    sink(event)
                except Exception:  # noqa: BLE001 - a broken sink must not stop the agent
                    log.exception("event sink %r failed", sink)
        return event

    def status(self, event: str, text: str | None = None, **fields: Any) -> Event:
        """Shorthand for a ``status`` event."""
        return self.emit("status", text=text, event=event, **fields)


class ListSink:
    """Collects events in memory (tests, benchmarks)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, etype: str, **match: Any) -> list[Event]:
        """Events of one type whose fields equal ``match``."""
        return [e for e in self.events if e["type"] == etype
                and all(e.get(k) == v for k, v in match.items())]
