"""The user's command channel: describe, repeat, pause, resume, quieter, louder, quit.

Commands come from three places, all turned into the same :class:`Command`:

* ``--control PATH|-``: one command per line from a FIFO, a regular file or
  standard input. A FIFO is reopened when its writer closes it, so a button
  daemon that restarts keeps being heard; a regular file (or stdin redirected
  from one) is read once to its end, at start, so a command file gives the
  same log every ``--every-frame`` run. A line may carry a time:
  ``@4.0 describe`` runs when the video (``--every-frame``) or the run (live,
  seconds since the first frame) reaches 4.0 s.
* single keys on an interactive terminal (``d r p - + q``), in cbreak mode;
  the terminal's settings are restored on every exit path (normal end,
  Ctrl-C, SIGTERM, an exception, interpreter exit).
* the same keys in the preview window (``cv2.waitKey``, see :meth:`ControlSession.window_key`).

Commands are queued by those threads and executed by the pipeline's own loop
(:meth:`ControlSession.poll`): live, the main thread every ~30 ms; with
``--every-frame``, the frame loop before each frame, on the virtual clock, so
timed commands are deterministic. Every command is logged as a ``control``
event (``command``, ``ok``, ``reason`` when refused, ``via``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import re
import select
import signal
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

log = logging.getLogger(__name__)

COMMANDS = ("describe", "repeat", "pause", "resume", "quieter", "louder", "quit")
# Single keys (terminal and preview window). "p" toggles; "=" is "+" without
# Shift on most layouts.
KEYS = {"d": "describe", "r": "repeat", "p": "toggle", "-": "quieter", "+": "louder", "=": "louder", "q": "quit"}
KEYS_HELP = "keys: d describe, r repeat, p pause, - quieter, + louder, q quit"
LEVELS = ("quiet", "normal", "verbose")
# The longest command text kept in the log (a stray binary write must not bloat it).
_MAX_LOGGED = 80
_POLL_S = 0.1  # reader threads wake this often to notice the end of the run
# A terminal's escape sequence (CSI "ESC [ ... final", SS3 "ESC O x", or ESC + one char).
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-9;?]*[@-~]|O.|.)?", re.S)

# Short spoken confirmations, in the speech languages. Kept here (not in the
# phrase tables) so this feature is one module.
_SAY: dict[str, dict[str, str]] = {
    "en": {"paused": "Paused. Urgent warnings only.", "resumed": "Resumed.", "nothing": "Nothing to repeat.",
           "quiet": "Quiet: urgent warnings only.", "normal": "Normal.", "verbose": "Verbose.",
           "no_descriptions": "Descriptions are off."},
    "fr": {"paused": "En pause. Alertes urgentes seulement.", "resumed": "Reprise.", "nothing": "Rien à répéter.",
           "quiet": "Discret : alertes urgentes seulement.", "normal": "Normal.", "verbose": "Détaillé.",
           "no_descriptions": "Descriptions désactivées."},
    "de": {"paused": "Pause. Nur dringende Warnungen.", "resumed": "Weiter.", "nothing": "Nichts zu wiederholen.",
           "quiet": "Leise: nur dringende Warnungen.", "normal": "Normal.", "verbose": "Ausführlich.",
           "no_descriptions": "Beschreibungen sind aus."},
    "es": {"paused": "En pausa. Solo avisos urgentes.", "resumed": "Reanudado.", "nothing": "Nada que repetir.",
           "quiet": "Silencioso: solo avisos urgentes.", "normal": "Normal.", "verbose": "Detallado.",
           "no_descriptions": "Descripciones desactivadas."},
}


def phrase(key: str, language: str = "en") -> str:
    """A spoken confirmation (``paused``, ``resumed``, ``nothing``, a verbosity level, ...)."""
    return _SAY.get(language, _SAY["en"])[key]


class ControlError(Exception):
    """``--control`` names something that cannot be read (the message says why and the fix)."""


# ---------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class Command:
    """One command as received. ``name`` is a canonical command (or "toggle"
    for the p key) or None when refused, with ``reason`` saying why. ``at``:
    the video/run time it is due (None = at once). ``via``: control, terminal
    or window; ``key``: the key pressed."""

    raw: str
    name: str | None
    reason: str | None = None
    at: float | None = None
    via: str = "control"
    key: str | None = None


def parse_command(line: str, via: str = "control") -> Command | None:
    """Parse one line (case-insensitive, surrounding blanks ignored).

    Returns None for a ``#`` comment; an unknown, malformed or empty line gives a
    Command with ``name=None`` and a reason (never an exception).
    """
    text = line.strip()
    if text.startswith("#"):
        return None
    raw = text[:_MAX_LOGGED]
    at: float | None = None
    if text.startswith("@"):
        stamp, _, rest = text[1:].partition(" ")
        try:
            at = float(stamp)
            if not 0.0 <= at < float("inf"):
                raise ValueError
        except ValueError:
            return Command(raw, None, f"bad time {('@' + stamp)[:20]!r}: give seconds, e.g. '@4.0 describe'", via=via)
        text = rest.strip()
        raw = text[:_MAX_LOGGED]
    if not text:
        return Command(raw, None, "empty command", at=at, via=via)
    word = text.lower()
    if word not in COMMANDS:
        return Command(raw, None, f"unknown command {raw[:30]!r}; one of {', '.join(COMMANDS)}", at=at, via=via)
    return Command(raw, word, at=at, via=via)


def command_for_key(char: str, via: str) -> Command | None:
    """The command of a single key press, None for keys to ignore (Enter, Space,
    the bytes of an arrow key), a refused Command for another printable key."""
    if char in KEYS:
        return Command(char, KEYS[char], via=via, key=char)
    if len(char) == 1 and char.isprintable() and not char.isspace():
        return Command(char, None, f"unknown key {char!r}; {KEYS_HELP}", via=via, key=char)
    return None


# ---------------------------------------------------------------------- sources
def check_control_path(path: str) -> str:
    """'stdin', 'fifo' or 'file' for ``--control PATH``; ControlError with the fix otherwise."""
    if path == "-":
        return "stdin"
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ControlError(f"--control {path}: does not exist; create a FIFO with 'mkfifo {path}', or give a "
                           "command file, or - for standard input") from None
    except OSError as exc:
        raise ControlError(f"--control {path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISFIFO(mode):
        kind = "fifo"
    elif stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISDIR(mode):
        raise ControlError(f"--control {path}: is a folder; give a FIFO (mkfifo), a command file or -")
    else:
        kind = "fifo"  # a character device or socket-like path: read it like a stream
    if not os.access(p, os.R_OK):
        raise ControlError(f"--control {path}: not readable; check its permissions")
    return kind


class _LineSplitter:
    """Bytes in, complete lines out (a partial line waits for its end)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        if len(self._buf) > 4096:  # a writer that never ends its line: do not grow forever
            lines.append(self._buf)
            self._buf = b""
        return [ln.decode("utf-8", errors="replace") for ln in lines]

    def rest(self) -> list[str]:
        data, self._buf = self._buf, b""
        return [data.decode("utf-8", errors="replace")] if data.strip() else []


class ControlReader:
    """Reads ``--control`` lines into ``sink`` (thread-safe callable).

    A regular file (or stdin redirected from one) is read to its end in
    :meth:`start`, so timed commands in it are all known before the first frame.
    A FIFO or a pipe is read by a daemon thread: a FIFO is opened non-blocking
    (opening it never waits for a writer) and reopened at EOF, i.e. whenever
    its writer closes, so writers may come and go; stdin at EOF is simply done.
    """

    def __init__(self, path: str, sink: Callable[[Command], None]) -> None:
        self.path = path
        self.kind = check_control_path(path)
        self._sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reopens = 0  # FIFO reopen count (tests, debugging)

    def _emit_lines(self, lines: list[str]) -> None:
        for line in lines:
            cmd = parse_command(line)
            if cmd is not None:
                self._sink(cmd)

    def start(self) -> None:
        """Read a regular file now; start the thread for a FIFO or a pipe."""
        if self.kind == "stdin":
            fd = sys.stdin.fileno() if sys.stdin is not None else -1
            if fd >= 0 and stat.S_ISREG(os.fstat(fd).st_mode):
                self._emit_lines(os.read(fd, 1 << 20).decode("utf-8", errors="replace").splitlines())
                return
            target: Callable[[], None] = lambda: self._read_stream(fd)  # noqa: E731
        elif self.kind == "file":
            self._emit_lines(Path(self.path).read_text(encoding="utf-8", errors="replace").splitlines())
            return
        else:
            target = self._read_fifo
        self._thread = threading.Thread(target=target, name="control-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it notices within ~0.1 s; it is a daemon either way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(0.3)

    def _read_stream(self, fd: int) -> None:
        """Standard input as a pipe: read until EOF (then no more commands) or stop."""
        if fd >= 0:
            self._pump(fd)

    def _pump(self, fd: int) -> bool:
        """Read lines from ``fd`` until EOF (True) or stop (False)."""
        split = _LineSplitter()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while not self._stop.is_set():
            if not poller.poll(_POLL_S * 1000):
                continue
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                log.warning("--control %s: read failed (%s); no more commands from it", self.path, exc)
                return False
            if not data:
                self._emit_lines(split.rest())
                return True
            self._emit_lines(split.feed(data))
        return False

    def _read_fifo(self) -> None:
        warned = False
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:  # removed mid-run: it may be made again
                if not warned:
                    log.warning("--control %s: cannot open (%s); retrying every second", self.path, exc)
                    warned = True
                self._stop.wait(1.0)
                continue
            warned = False
            try:
                eof = self._pump(fd)
            finally:
                os.close(fd)
            if eof:
                # The writer closed. Reopen: while we hold no read end, a new
                # writer's open() waits for us, so nothing written is lost.
                self.reopens += 1
                log.debug("--control %s: writer closed; reopening", self.path)


# ---------------------------------------------------------------------- terminal keys
def interactive_terminal() -> bool:
    """True when stdin and stdout are a terminal this process may set up (not
    in the background of a shell: changing its mode there would stop us)."""
    try:
        if sys.stdin is None or sys.stdout is None or not (sys.stdin.isatty() and sys.stdout.isatty()):
            return False
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:  # not our controlling terminal: no job control applies
        return True


class TerminalKeys:
    """Single-key commands on the terminal, in cbreak mode (no Enter needed,
    no echo; Ctrl-C still sends SIGINT).

    The settings are restored by :meth:`close`, which is idempotent and is
    reached from every exit path: the caller's ``finally``, an ``atexit`` hook
    (an exception nobody caught), and SIGINT/SIGTERM handlers chained in front
    of the existing ones (a signal restores at once, before anything else).
    """

    def __init__(self, sink: Callable[[Command], None], stream: TextIO | None = None) -> None:
        self._sink = sink
        self._stream = stream or sys.stdin
        self._fd = self._stream.fileno()
        self._saved: list[Any] | None = None
        # Re-entrant: a signal handler (same thread) may call close() inside close().
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prev_handlers: dict[int, Any] = {}

    def start(self) -> None:
        """Enter cbreak mode and start reading keys."""
        import termios
        import tty

        with self._lock:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd, termios.TCSANOW)
        atexit.register(self.close)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                prev = signal.getsignal(sig)
                self._prev_handlers[sig] = prev
                signal.signal(sig, self._on_signal)
        self._thread = threading.Thread(target=self._read, name="control-keys", daemon=True)
        self._thread.start()

    def _on_signal(self, signum: int, frame: Any) -> None:
        prev = self._prev_handlers.get(signum)
        self.close()
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def close(self) -> None:
        """Restore the terminal (idempotent, safe from a signal handler)."""
        import termios

        self._stop.set()
        with self._lock:
            saved, self._saved = self._saved, None
            if saved is not None:
                with contextlib.suppress(termios.error, OSError):  # the terminal went away
                    termios.tcsetattr(self._fd, termios.TCSANOW, saved)
        atexit.unregister(self.close)
        if threading.current_thread() is threading.main_thread():
            for sig, prev in self._prev_handlers.items():
                if signal.getsignal(sig) == self._on_signal:
                    signal.signal(sig, prev)
            self._prev_handlers.clear()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], _POLL_S)
                if not ready:
                    continue
                data = os.read(self._fd, 32)
            except (OSError, ValueError):
                return
            if not data:
                return  # the terminal hung up
            # Arrow and function keys send escape sequences: not command keys.
            text = _ESCAPE_SEQUENCE.sub("", data.decode("utf-8", errors="ignore"))
            for char in text:
                cmd = command_for_key(char, "terminal")
                if cmd is not None:
                    self._sink(cmd)


# ---------------------------------------------------------------------- execution
class ControlHost(Protocol):
    """What a run offers the commands (implemented by the pipeline's Agent)."""

    def describe_refusal(self) -> str | None:
        """Why a description cannot be made now, or None when it can."""
        ...

    def describe_now(self) -> None:
        """Caption the freshest frame now, trigger ``request``."""
        ...


class ControlSession:
    """Commands from every source, executed by :meth:`poll` in the pipeline's loop.

    ``arbiter`` is a callable returning the speech arbiter (created after this
    session); ``speech_cfg`` is the live config section whose ``verbosity``
    quieter/louder step; ``request_stop`` ends the run with reason ``request``.
    """

    def __init__(self, events: Any, host: ControlHost, arbiter: Callable[[], Any], speech_cfg: Any, *,
                 request_stop: Callable[[], None], path: str | None = None, keys: bool = False,
                 window: bool = False, language: str = "en", console: TextIO | None = None) -> None:
        self.events = events
        self.host = host
        self._arbiter = arbiter
        self.speech_cfg = speech_cfg
        self._request_stop = request_stop
        self.language = language
        self._inbox: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._pending: list[Command] = []
        self.reader = ControlReader(path, self._inbox.put) if path is not None else None
        self.terminal: TerminalKeys | None = None
        self._keys = keys and interactive_terminal() and path != "-"
        self._window = window
        self._console = console
        self._closed = False

    def start(self) -> None:
        """Open the sources; print the key help once when keys work here."""
        if self.reader is not None:
            self.reader.start()
        if self._keys:
            terminal = TerminalKeys(self._inbox.put)
            try:
                terminal.start()
                self.terminal = terminal
            except Exception as exc:  # noqa: BLE001 - keys are a convenience: run without them
                terminal.close()  # whatever start() changed is put back
                log.warning("terminal keys unavailable (%s)", exc)
        if self.terminal is not None or self._window:
            print(KEYS_HELP, file=self._console or sys.stdout, flush=True)

    def close(self) -> None:
        """Stop the readers and restore the terminal (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.terminal is not None:
            self.terminal.close()
        if self.reader is not None:
            self.reader.stop()

    def window_key(self, code: int) -> None:
        """A key code from ``cv2.waitKey`` in the preview window (-1/255 = none; Esc = quit)."""
        if code < 0 or (code & 0xFF) == 0xFF:
            return
        char = "q" if (code & 0xFF) == 27 else chr(code & 0xFF)
        cmd = command_for_key(char, "window")
        if cmd is not None:
            self._inbox.put(cmd)

    def submit(self, cmd: Command) -> None:
        """Queue a command (any thread)."""
        self._inbox.put(cmd)

    def poll(self, t: float | None, *, ready: bool = True) -> None:
        """Execute the commands due at media time ``t`` (None: only untimed ones).

        Until ``ready`` (no frame yet) only ``quit`` runs; the rest wait.
        """
        while True:
            try:
                self._pending.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        if not self._pending:
            return
        keep: list[Command] = []
        for cmd in self._pending:
            due = cmd.at is None or (t is not None and t >= cmd.at - 1e-9)
            if due and (ready or cmd.name == "quit"):
                self.execute(cmd)
            else:
                keep.append(cmd)
        self._pending = keep

    def finish(self) -> None:
        """At the end of the input: log timed commands it never reached as refused."""
        self.poll(None, ready=False)
        for cmd in self._pending:
            self._log(cmd, cmd.name or "", False, "the input ended before it was due")
        self._pending = []

    # ------------------------------------------------------------------ commands
    def _log(self, cmd: Command, action: str, ok: bool, reason: str | None = None) -> None:
        fields: dict[str, Any] = {"command": cmd.raw, "ok": ok, "via": cmd.via}
        if reason:
            fields["reason"] = reason
        if cmd.name is not None and action != cmd.raw.lower():
            fields["action"] = action
        if cmd.at is not None:
            fields["at"] = cmd.at
        self.events.emit("control", **fields)

    def _say(self, key: str) -> None:
        arbiter = self._arbiter()
        if arbiter is not None:
            arbiter.say_feedback(phrase(key, self.language))

    def execute(self, cmd: Command) -> None:
        """Run one command now and log it (never raises for a bad command)."""
        if cmd.name is None:
            self._log(cmd, "", False, cmd.reason)
            return
        arbiter = self._arbiter()
        action = cmd.name
        if action == "toggle":
            action = "resume" if arbiter is not None and arbiter.paused else "pause"
        if action == "quit":
            self._log(cmd, action, True)
            self._request_stop()
        elif action == "describe":
            refusal = self.host.describe_refusal()
            self._log(cmd, action, refusal is None, refusal)
            if refusal is None:
                self.host.describe_now()
            elif "caption.enabled" in refusal:
                self._say("no_descriptions")
        elif arbiter is None:
            self._log(cmd, action, False, "speech is not running yet")
        elif action == "repeat":
            can = arbiter.last_said is not None
            self._log(cmd, action, can, None if can else "nothing to repeat yet")
            if not (can and arbiter.repeat_last()):
                self._say("nothing")
        elif action in ("pause", "resume"):
            want = action == "pause"
            already = arbiter.paused == want
            self._log(cmd, action, not already, f"already {'paused' if want else 'running'}" if already else None)
            arbiter.set_paused(want)
            self._say("paused" if want else "resumed")
        else:  # quieter / louder
            level = getattr(self.speech_cfg, "verbosity", "normal")
            i = LEVELS.index(level) if level in LEVELS else 1
            j = max(0, min(len(LEVELS) - 1, i + (1 if action == "louder" else -1)))
            self._log(cmd, action, i != j, None if i != j else f"already {level}")
            self.speech_cfg.verbosity = LEVELS[j]
            self._say(LEVELS[j])


__all__ = ["COMMANDS", "KEYS", "KEYS_HELP", "Command", "ControlError", "ControlReader", "ControlSession",
           "TerminalKeys", "check_control_path", "command_for_key", "interactive_terminal", "parse_command", "phrase"]
