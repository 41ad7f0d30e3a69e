"""The command channel in-process: parsing, a real FIFO whose writer comes and
goes, a real pseudo-terminal in cbreak mode restored on every exit path, and
the commands' effect on the real speech arbiter on the virtual clock."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import termios
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from assist.config import SpeechConfig
from assist.core.clock import VirtualClock
from assist.core.events import EventLog, ListSink
from assist.core.priority import Priority
from assist.runtime.control import (
    COMMANDS,
    KEYS_HELP,
    Command,
    ControlError,
    ControlReader,
    ControlSession,
    TerminalKeys,
    check_control_path,
    command_for_key,
    parse_command,
)
from assist.speech.arbiter import SpeechArbiter
from assist.speech.backends import NoneBackend
from tests.helpers_wait import wait_for

IMP, MSG, TXT = Priority.IMPORTANT, Priority.MESSAGE, Priority.TEXT


# ---------------------------------------------------------------- parsing
@pytest.mark.parametrize("line, name, at", [
    ("describe", "describe", None), ("  RePeat \r", "repeat", None), ("@4.0 describe", "describe", 4.0),
    ("@0 QUIT", "quit", 0.0), ("louder", "louder", None), ("quieter", "quieter", None),
])
def test_parse_accepts_commands_in_any_case_with_an_optional_time(line: str, name: str, at: float | None) -> None:
    cmd = parse_command(line)
    assert cmd is not None and cmd.name == name and cmd.at == at and cmd.reason is None


@pytest.mark.parametrize("line, fragment", [
    ("", "empty"), ("   ", "empty"), ("dance", "unknown command 'dance'"), ("@x describe", "bad time"),
    ("@-1 describe", "bad time"), ("@nan describe", "bad time"), ("@3", "empty"), ("\x00\xff" * 300, "unknown"),
])
def test_parse_refuses_bad_lines_with_a_reason(line: str, fragment: str) -> None:
    cmd = parse_command(line)
    assert cmd is not None and cmd.name is None and fragment in (cmd.reason or "")
    assert len(cmd.raw) <= 80


def test_comments_are_ignored_and_keys_map_to_commands() -> None:
    assert parse_command("# a note") is None
    assert [command_for_key(k, "terminal").name for k in "drp-+=q"] == \
        ["describe", "repeat", "toggle", "quieter", "louder", "louder", "quit"]
    assert command_for_key("\n", "terminal") is None and command_for_key("\x1b", "terminal") is None
    refused = command_for_key("x", "window")
    assert refused.name is None and "unknown key" in refused.reason and refused.via == "window"
    assert set(COMMANDS) == {"describe", "repeat", "pause", "resume", "quieter", "louder", "quit"}


def test_check_control_path_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="mkfifo"):
        check_control_path(str(tmp_path / "missing"))
    with pytest.raises(ControlError, match="is a folder"):
        check_control_path(str(tmp_path))
    fifo = tmp_path / "ctl"
    os.mkfifo(fifo)
    (tmp_path / "cmds.txt").write_text("describe\n")
    assert check_control_path(str(fifo)) == "fifo"
    assert check_control_path(str(tmp_path / "cmds.txt")) == "file"
    assert check_control_path("-") == "stdin"


# ---------------------------------------------------------------- readers
def test_fifo_keeps_listening_when_writers_close_and_reopen(tmp_path: Path) -> None:
    fifo = tmp_path / "ctl"
    os.mkfifo(fifo)
    got: list[Command] = []
    reader = ControlReader(str(fifo), got.append)
    reader.start()
    try:
        for n, text in enumerate(["describe\n", "pause\nresume\n", "quit"]):  # the last without a newline
            # A separate writer process each time, like a button daemon that restarts.
            subprocess.run([sys.executable, "-c", f"open({str(fifo)!r}, 'w').write({text!r})"], check=True,
                           timeout=10)
            assert wait_for(lambda n=n: reader.reopens > n, timeout=3.0), "the reader did not reopen after EOF"
        # A line written in two pieces is one command.
        with open(fifo, "w") as w:
            w.write("lou")
            w.flush()
            w.write("der\n")
        assert wait_for(lambda: len(got) == 5, timeout=3.0), got
    finally:
        reader.stop()
    assert [c.name for c in got] == ["describe", "pause", "resume", "quit", "louder"]


def test_a_regular_file_is_read_once_at_start(tmp_path: Path) -> None:
    path = tmp_path / "cmds.txt"
    path.write_text("@1.5 describe\n# note\nbogus\n")
    got: list[Command] = []
    reader = ControlReader(str(path), got.append)
    reader.start()  # synchronous: everything is known before the first frame
    assert [(c.name, c.at) for c in got] == [("describe", 1.5), (None, None)]
    assert reader._thread is None


# ---------------------------------------------------------------- terminal
@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


def _canonical(fd: int) -> bool:
    lflag = termios.tcgetattr(fd)[3]
    return bool(lflag & termios.ICANON) and bool(lflag & termios.ECHO)


def test_terminal_keys_in_cbreak_mode_and_restored_after_an_exception(pty_pair) -> None:
    master, slave = pty_pair
    assert _canonical(slave)
    got: list[Command] = []
    keys = TerminalKeys(got.append, stream=os.fdopen(os.dup(slave), "r"))
    with pytest.raises(RuntimeError):
        try:
            keys.start()
            assert not _canonical(slave)  # single keys, no echo
            os.write(master, b"dp")
            assert wait_for(lambda: len(got) == 2, timeout=3.0), got
            os.write(master, b"\x1b[A")  # an arrow key: ignored, not three unknown keys
            os.write(master, b"x\n+q")
            assert wait_for(lambda: len(got) == 5, timeout=3.0), got
            raise RuntimeError("a crash in the middle of the run")
        finally:
            keys.close()
    assert _canonical(slave)
    assert [(c.name, c.via) for c in got][:2] == [("describe", "terminal"), ("toggle", "terminal")]
    assert got[2].name is None and "unknown key 'x'" in got[2].reason
    assert [c.name for c in got[3:]] == ["louder", "quit"]
    keys.close()  # idempotent
    assert _canonical(slave)


def test_terminal_restored_by_sigterm_handler_then_previous_handler_runs(pty_pair) -> None:
    master, slave = pty_pair
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        keys = TerminalKeys(lambda c: None, stream=os.fdopen(os.dup(slave), "r"))
        keys.start()
        assert not _canonical(slave)
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_for(lambda: seen == [signal.SIGTERM], timeout=2.0)
        assert _canonical(slave)  # restored by the chained handler, before the run's own handler
        assert signal.getsignal(signal.SIGTERM) is not keys._on_signal  # handlers put back
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- commands on the arbiter
class _Host:
    """A run's side of describe: here it says a fixed description as a request would."""

    def __init__(self, arbiter: SpeechArbiter, enabled: bool = True) -> None:
        self.arbiter, self.enabled, self.described = arbiter, enabled, 0

    def describe_refusal(self) -> str | None:
        return None if self.enabled else "descriptions are off (caption.enabled = false)"

    def describe_now(self) -> None:
        self.described += 1
        self.arbiter.say("A quiet street with parked cars.", TXT, asked=True)


def _session(cfg: SpeechConfig | None = None, enabled: bool = True):
    cfg = cfg or SpeechConfig(repeat_cooldown_s=30.0)
    clock = VirtualClock()
    events, sink = EventLog(clock), ListSink()
    events.add_sink(sink)
    arb = SpeechArbiter(NoneBackend(cfg), events, cfg, clock=clock, realtime=False)
    stopped = threading.Event()
    host = _Host(arb, enabled)
    session = ControlSession(events, host, lambda: arb, cfg, request_stop=stopped.set)
    return SimpleNamespace(clock=clock, sink=sink, arb=arb, session=session, host=host, stopped=stopped, cfg=cfg)


def _at(s, t: float, line: str | None = None) -> None:
    s.clock.advance_to(t)
    s.arb.advance_to(t)
    if line is not None:
        s.session.submit(parse_command(line))
    s.session.poll(t)


def _starts(s) -> list[tuple[float, str, bool]]:
    return [(e["t"], e["text"], bool(e.get("repeat"))) for e in s.sink.of_type("speech", event="start")]


def test_repeat_ignores_the_cooldown_and_says_nothing_to_repeat_first() -> None:
    s = _session()
    _at(s, 0.0, "repeat")
    assert s.sink.of_type("control")[-1] == {**s.sink.of_type("control")[-1], "command": "repeat", "ok": False}
    assert _starts(s)[-1][1] == "Nothing to repeat."
    _at(s, 1.0)
    s.arb.say("Car ahead", MSG)
    _at(s, 3.0, "repeat")  # well inside the 30 s cool-down
    _at(s, 3.1)
    s.arb.say("Car ahead", MSG)  # the agent itself repeating: still suppressed
    assert _starts(s)[-1] == (3.0, "Car ahead", True)
    assert s.sink.of_type("speech", event="suppressed")[-1]["text"] == "Car ahead"
    controls = s.sink.of_type("control")
    assert controls[-1]["ok"] is True and "reason" not in controls[-1]
    # The confirmation "Nothing to repeat." is never what repeat says.
    _at(s, 6.0, "pause")
    _at(s, 9.0, "repeat")
    assert _starts(s)[-1] == (9.0, "Car ahead", True)


def test_pause_mutes_all_but_urgent_warnings_and_logs_what_it_muted() -> None:
    s = _session()
    s.arb.say("A kitchen with a refrigerator.", TXT)
    _at(s, 0.5, "PAUSE")
    assert [(e["event"], e["text"]) for e in s.sink.of_type("speech")] == [
        ("start", "A kitchen with a refrigerator."), ("interrupted", "A kitchen with a refrigerator."),
        ("start", "Paused. Urgent warnings only.")]
    assert s.sink.of_type("control")[0]["t"] == 0.5
    _at(s, 4.0)
    s.arb.say("Person on the left", MSG)
    s.arb.say("A street at night.", TXT)
    s.arb.say("Bus ahead, very near", IMP, direction="ahead")
    dropped = [(e["text"], e["reason"]) for e in s.sink.of_type("speech", event="dropped")]
    assert ("Person on the left", "paused") in dropped and ("A street at night.", "paused") in dropped
    assert _starts(s)[-1][1] == "Bus ahead, very near"
    _at(s, 6.0, "pause")
    assert s.sink.of_type("control")[-1]["ok"] is False and s.sink.of_type("control")[-1]["reason"] == "already paused"
    _at(s, 8.0, "describe")  # asked for: spoken even while paused
    assert _starts(s)[-1] == (8.0, "A quiet street with parked cars.", False)
    _at(s, 10.0, "resume")
    _at(s, 12.0)
    s.arb.say("Person on the right", MSG)
    assert _starts(s)[-1][1] == "Person on the right"
    assert [c["command"] for c in s.sink.of_type("control")] == ["PAUSE", "pause", "describe", "resume"]


def test_quieter_and_louder_step_verbosity_and_say_the_level() -> None:
    s = _session()
    said = []
    for t, line in enumerate(["louder", "louder", "quieter", "quieter", "quieter"]):
        _at(s, 2.0 * t, line)
        said.append((s.cfg.verbosity, _starts(s)[-1][1], s.sink.of_type("control")[-1]["ok"]))
    assert said == [("verbose", "Verbose.", True), ("verbose", "Verbose.", False), ("normal", "Normal.", True),
                    ("quiet", "Quiet: urgent warnings only.", True), ("quiet", "Quiet: urgent warnings only.", False)]
    _at(s, 12.0)
    s.arb.say("Dog ahead", MSG)
    s.arb.say("Truck ahead, very near", IMP)
    assert s.sink.of_type("speech", event="dropped")[-1]["reason"] == "quiet"
    assert _starts(s)[-1][1] == "Truck ahead, very near"


def test_describe_quit_timed_and_refused_commands() -> None:
    s = _session(enabled=False)
    s.session.submit(parse_command("@2.0 describe"))
    s.session.submit(parse_command("@5.0 quit"))
    s.session.submit(parse_command("@9.0 repeat"))
    _at(s, 1.0)
    assert not s.sink.of_type("control")  # not due yet
    _at(s, 2.0)
    c = s.sink.of_type("control")[-1]
    assert (c["command"], c["ok"], c["at"], c["t"]) == ("describe", False, 2.0, 2.0)
    assert "caption.enabled" in c["reason"] and _starts(s)[-1][1] == "Descriptions are off."
    _at(s, 5.0)
    assert s.stopped.is_set() and s.sink.of_type("control")[-1]["command"] == "quit"
    s.session.finish()
    last = s.sink.of_type("control")[-1]
    assert (last["command"], last["ok"], last["reason"]) == ("repeat", False, "the input ended before it was due")


def test_requested_description_cuts_off_a_description_but_never_a_warning() -> None:
    s = _session()
    s.arb.say("A long description of a park with trees and benches and people.", TXT)
    _at(s, 0.5, "describe")
    assert _starts(s)[-1] == (0.5, "A quiet street with parked cars.", False)
    _at(s, 5.0)
    s.arb.say("Car on the right, approaching", MSG)
    _at(s, 5.2, "describe")
    assert _starts(s)[-1][1] == "Car on the right, approaching"  # the warning plays on
    s.arb.flush()
    events = [(e["event"], e["text"]) for e in s.sink.of_type("speech")]
    assert ("end", "Car on the right, approaching") in events
    assert events[-1] == ("end", "A quiet street with parked cars.")


def test_preview_window_keys_and_the_help_line_printed_once(tmp_path: Path) -> None:
    out = tmp_path / "console.txt"
    s = _session()
    with out.open("w") as console:
        session = ControlSession(EventLog(), s.host, lambda: s.arb, s.cfg, request_stop=s.stopped.set,
                                 window=True, console=console)
        session.start()
        session.window_key(-1)  # no key this frame
        session.window_key(ord("d"))
        session.window_key(27)  # Esc = quit
        session.poll(0.0)
        session.close()
    assert out.read_text().splitlines() == [KEYS_HELP]
    assert s.host.described == 1 and s.stopped.is_set()


def test_stdin_as_a_pipe_and_as_a_redirected_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, w = os.pipe()
    got: list[Command] = []
    with os.fdopen(r, "r") as pipe_in:
        monkeypatch.setattr(sys, "stdin", pipe_in)
        reader = ControlReader("-", got.append)
        reader.start()
        os.write(w, b"describe\nquit\n")
        os.close(w)  # EOF: no more commands, the reader ends by itself
        assert wait_for(lambda: len(got) == 2, timeout=3.0)
        reader._thread.join(2.0)
        assert not reader._thread.is_alive()
    path = tmp_path / "cmds.txt"
    path.write_text("@2 pause\n")
    with path.open() as file_in:
        monkeypatch.setattr(sys, "stdin", file_in)
        got.clear()
        ControlReader("-", got.append).start()  # a regular file: read at once
        assert [(c.name, c.at) for c in got] == [("pause", 2.0)]
