"""Start one run, supervise it from the main thread, stop it.

:func:`run_pipeline` builds the event log and the :class:`~assist.runtime.run.RunWiring`,
starts the stages in a runner thread (:mod:`assist.runtime.live` or
:mod:`assist.runtime.every_frame`) and keeps the main thread for what must
answer at once: signals, the preview window, the user's commands. Shutdown is
ordered and bounded to about a second. Split from ``run.py``, which holds the
wiring of the stages, so each stays one readable module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from assist.config import Config
from assist.core.clock import Clock, RealClock, VirtualClock
from assist.core.events import ConsoleSink, EventLog, JsonlFileSink
from assist.core.log_lock import LogInUse
from assist.runtime.console_outputs import preview_gone, print_outputs, run_outputs
from assist.runtime.control import ControlSession
from assist.runtime.display import headless_or_preview
from assist.runtime.errors import InternalError, OutputUnavailable
from assist.runtime.options import RunOptions, RunSeams
from assist.runtime.preview import PreviewWindow
from assist.runtime.run import ExitCodeOf, RunWiring
from assist.runtime.signals import StopSignal

log = logging.getLogger(__name__)


def run_pipeline(cfg: Config, opts: RunOptions, *, exit_code: ExitCodeOf,
                 extra_sinks: tuple[Callable[[dict[str, Any]], None], ...] = (),
                 stop: StopSignal | None = None, hard_exit: bool = False, seams: RunSeams | None = None) -> int:
    """Run the pipeline to the end of input or until stopped; returns the exit code.

    The stages start in a runner thread; this (main) thread only supervises,
    shows the preview and reacts to signals, so stopping takes about a second
    whatever the stages are doing. ``exit_code`` maps how the run ended to the
    code (the command line passes ``assist.app.errors.exit_code``); a stage
    error is printed as its one line. ``extra_sinks`` receive every event
    (tests, benchmarks); ``stop`` lets a caller end the run from another
    thread; ``seams`` injects a source factory, a speech backend factory, model
    factories and an observer. ``hard_exit`` (the CLI) ends the process at once
    when a stage is stuck in a call that cannot be interrupted, instead of
    waiting for it.
    """
    stop = stop or StopSignal().install()
    clock: Clock = VirtualClock() if opts.every_frame else RealClock()
    events = EventLog(clock)
    file_sink: JsonlFileSink | None = None
    if opts.log_path is not None:
        try:
            file_sink = JsonlFileSink(opts.log_path, on_error=lambda m: print(f"error: {m}", file=sys.stderr))
        except LogInUse as exc:  # another run holds it: "log PATH is in use by another run (pid N)"
            raise OutputUnavailable(str(exc)) from None
        except OSError as exc:
            raise OutputUnavailable(f"--log {opts.log_path}: cannot open ({exc.strerror or exc})") from None
        events.add_sink(file_sink)
    opts.headless = headless_or_preview(opts.headless)  # no display: one line, then headless (Qt would abort)
    console = ConsoleSink(verbose=log.getEffectiveLevel() <= logging.DEBUG)
    if opts.headless and cfg.log.console:
        events.add_sink(console)
    for sink in extra_sinks:
        events.add_sink(sink)
    run = RunWiring(cfg, opts, events, clock, stop=stop.event, seams=seams)
    ok = exit_code(None)
    assert ok is not None
    result: dict[str, int] = {"code": ok}
    try:
        run.control = _make_control(run, stop)
    except Exception:
        if file_sink is not None:
            file_sink.close()
        raise
    try:
        return _supervise(run, stop, exit_code, result, file_sink, hard_exit, console)
    finally:
        run.control.close()  # the terminal is restored on every way out


def _make_control(run: RunWiring, stop: StopSignal) -> ControlSession:
    """The command channel of this run (--control, terminal keys, preview window keys).
    ControlError when --control names nothing readable."""

    def request_stop() -> None:
        stop.reason = "request"
        stop.event.set()

    control = ControlSession(run.events, run, lambda: run.speaker, run.cfg.speech, request_stop=request_stop,
                             path=run.opts.control, keys=True, window=not run.opts.headless,
                             language=run.cfg.speech.language)
    try:
        control.start()
    except Exception:
        control.close()
        raise
    return control


def _supervise(run: RunWiring, stop: StopSignal, exit_code: ExitCodeOf, result: dict[str, int],
               file_sink: JsonlFileSink | None, hard_exit: bool, console: ConsoleSink) -> int:
    """Start the runner thread; supervise, preview and take commands until the run ends."""
    events, opts, cfg = run.events, run.opts, run.cfg
    assert run.control is not None

    def runner() -> None:
        try:
            _run(run)
        except Exception as exc:  # noqa: BLE001 - a stage error (its one line) or a bug (reported as one)
            code = exit_code(exc)
            if code is not None:  # a stage error: its one line (unless we are stopping anyway)
                if not stop.event.is_set():
                    print(f"error: {exc}", file=sys.stderr)
                    events.status("failed", text=str(exc), exit_code=code, printed=True)  # the log says what failed
                    if run.stop_reason != "source_lost":  # a camera lost for good keeps its own reason
                        run.stop_reason = "error"
                    result["code"] = code
            else:  # a bug: log it, stop cleanly, say how to report
                log.debug("internal error", exc_info=True)
                print(f"error: internal error ({type(exc).__name__}: {exc}); run with -v for details and report "
                      "it with the log", file=sys.stderr)
                run.stop_reason = "internal_error"
                bug = exit_code(InternalError(exc))
                assert bug is not None, "exit_code must map InternalError"
                result["code"] = bug
        finally:
            run.runner_done.set()

    thread = threading.Thread(target=runner, name="runner", daemon=True)
    thread.start()
    # The window lives in a child process: Qt exits the process whose X connection breaks (see preview.py).
    window = None if opts.headless else PreviewWindow(run.control.window_key)  # d r p - + q, Esc: commands
    lost = False
    while not run.runner_done.is_set() and not stop.event.is_set():
        frame = run.display_frames.get(timeout=0.03)
        if window is not None and not lost and window.ended and not stop.event.is_set():
            lost = not preview_gone(events, console, cfg.log.console, *window.why_ended())
        elif frame is not None and window is not None and not lost:
            window.show(run.overlay(frame))
        if not opts.every_frame:  # every-frame: the frame loop runs commands, on the video clock
            run.control.poll(run.control_time(), ready=run.latest_frame is not None)
    if stop.event.is_set() and stop.reason:
        run.stop_reason = stop.reason
    _shutdown(run, window)
    thread.join(0.2)
    code = result["code"]
    events.status("stopped", reason=run.stop_reason, exit_code=code, outputs=run_outputs(opts))
    if not (cfg.log.console and (opts.headless or lost)):  # no console lines: still say where outputs went
        print_outputs(opts)
    if file_sink is not None:
        file_sink.close()
    if hard_exit and (thread.is_alive() or any(w.alive for w in run.workers)):
        # A model call or an import is still running (it cannot be
        # interrupted); the log is complete and flushed, so end now rather
        # than wait for it.
        sys.stdout.flush()
        sys.stderr.flush()
        run.control.close()  # os._exit skips finally blocks and atexit
        os._exit(code)
    return code


def _run(run: RunWiring) -> None:
    from assist.hazards.detector import required_detector_path
    from assist.runtime.every_frame import run_every_frame
    from assist.runtime.live import run_live
    from assist.runtime.served_models import check_served_captioner

    opts, events = run.opts, run.events
    run.detector_path = required_detector_path(run.hazard_cfg, events)
    check_served_captioner(run.cfg, events)  # a captioner URL must answer now (DESIGN: exit 4)
    factory, first_source = run.open_source()
    run.first_source = first_source
    if not run.stills and getattr(first_source, "frame_count", None) == 1:
        # A one-frame video is one photo: confirmed on its one frame and described (issue 13).
        run.stills = True
        run.hazard_cfg = dataclasses.replace(run.hazard_cfg, confirm_frames=1, confirm_evidence=0.0)
    events.status("started", source=f"{opts.source_kind}:{opts.source_value}" if opts.source_value
                  else opts.source_kind, detector=run.detector_path, every_frame=opts.every_frame)
    run.start_speech()
    run.gate = run.make_gate()
    run.observer.run_started(run)
    if opts.every_frame:
        run_every_frame(run, factory, first_source)
    else:
        run_live(run, factory, first_source)


def _shutdown(run: RunWiring, window: PreviewWindow | None = None) -> None:
    """Stop everything within about a second, in order."""
    run.stop_event.set()
    if window is not None:
        window.close()  # the child closes its window while the stages stop
    if run.capture is not None:
        run.capture.stop(timeout=0.5)
    run.hazard_slot.close()
    run.caption_slot.close()
    for worker in run.workers:
        worker.join(timeout=0.2)
    if run.speaker is not None:
        run.speaker.stop(timeout=0.3)
    if run.video_sink is not None:
        run.video_sink.close()
    if window is not None:
        window.wait(0.2)  # then killed: it never outlives the agent


__all__ = ["run_pipeline"]
