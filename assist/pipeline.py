"""The agent: capture -> hazard worker / scene gate -> caption worker -> speech.

Two ways to run the same stages:

* live (default): one capture thread, a hazard worker at a fixed rate on the
  freshest frame, a caption worker fed by the scene gate, and the speech
  arbiter's own thread; the main thread only waits (or shows the preview).
* ``--every-frame``: every frame in order, each stage called synchronously on
  a virtual clock whose time is the video time, so a file gives the same log
  every run (evaluation and golden tests).

One stop event ends everything; shutdown is bounded to about a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assist import exitcodes
from assist.cli import CliError, RunOptions
from assist.clock import Clock, RealClock, VirtualClock
from assist.config import Config
from assist.detection import Detection
from assist.events import ConsoleSink, EventLog, JsonlFileSink
from assist.frames import Frame, LatestFrameSlot
from assist.speech.priority import Priority
from assist.workers import SupervisedWorker

log = logging.getLogger(__name__)


@dataclass
class SharedState:
    """What the workers publish for each other (guarded by ``lock``)."""

    lock: threading.Condition = field(default_factory=threading.Condition)  # notified on new detections
    detections: list[Detection] = field(default_factory=list)
    detections_frame: int = -1
    tracks: list[Any] = field(default_factory=list)
    caption: str | None = None


def _deadline(worker: SupervisedWorker | None) -> contextlib.AbstractContextManager[None]:
    """The worker's deadline watch around a model call (none when synchronous)."""
    return worker.busy() if worker is not None else contextlib.nullcontext()


def required_detector_path(cfg: Config, events: EventLog) -> str | None:
    """The detector weights by the design's resolution order; None when hazards
    are disabled. Missing: a ``model_missing`` event and CliError (exit 4)."""
    if not cfg.hazards.enabled:
        return None
    from assist.detector import DetectorModelMissing, resolve_detector

    try:
        path = resolve_detector(cfg.hazards)
    except DetectorModelMissing as exc:
        events.status("model_missing", text=str(exc), model="detector")
        raise CliError(str(exc), exitcodes.MODEL) from None
    if path is None:
        msg = (f"detector model {cfg.hazards.model!r} not found; set ASSIST_DETECTOR to a YOLO "
               "weights file or exported folder, or put it in models/ (downloads need internet)")
        events.status("model_missing", text=msg, model="detector")
        raise CliError(msg, exitcodes.MODEL)
    return path


def detector_load_error(path: str | None, exc: BaseException) -> CliError:
    """The exit-4 error for detector weights that were found but do not load."""
    from assist.detector import DetectorModelMissing

    if isinstance(exc, DetectorModelMissing):  # its message already names the file and the fix
        return CliError(str(exc), exitcodes.MODEL)
    return CliError(f"detector {path}: cannot load ({exc}); check the file or set ASSIST_DETECTOR "
                    "to a working YOLO model", exitcodes.MODEL)


class Agent:
    """Wires the stages together for one run (see :func:`run_pipeline`)."""

    def __init__(self, cfg: Config, opts: RunOptions, events: EventLog, clock: Clock, *,
                 stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.opts = opts
        self.events = events
        self.clock = clock
        self.stop_event = stop or threading.Event()
        self.shared = SharedState()
        self.stop_reason = "end_of_input"
        self.arbiter: Any = None
        self.capture: Any = None
        self.gate: Any = None
        self.video_sink: Any = None
        self.detector_path: str | None = None
        self._language = cfg.speech.language
        self._hazard_slot = LatestFrameSlot("hazard")
        self._caption_slot = LatestFrameSlot("caption")
        self._workers: list[SupervisedWorker] = []
        self._frames_seen = 0
        self._t_first: float | None = None
        self.runner_done = threading.Event()
        self.display_frames = LatestFrameSlot("display")

    # ------------------------------------------------------------------ notices
    def notice(self, key: str, *, event: str | None = None, frame: int | None = None) -> None:
        """Speak a status notice (``camera_lost``, ``too_dark``, ...) and log it."""
        from assist.phrases import notice

        text = notice(key, self._language)
        self.events.status(event or key, text=text, frame=frame)
        if self.arbiter is not None:
            # Losing the camera or a model is news the user must hear even if
            # a warning comes at once: MESSAGE is never cancelled by one.
            urgent = key in ("camera_lost", "hazards_unavailable", "captions_unavailable")
            self.arbiter.say(text, Priority.MESSAGE if urgent else Priority.NOTIFICATION,
                             t_capture=self.clock.now(), frame=frame)

    # ------------------------------------------------------------------ speech
    def start_speech(self) -> None:
        """Create the speech backend and arbiter."""
        from assist.speech.arbiter import SpeechArbiter
        from assist.speech.backends import SpeechBackendUnavailable, make_backend

        try:
            backend = make_backend(self.cfg.speech, self.events, wav_dir=self.opts.speech_wav)
        except SpeechBackendUnavailable as exc:
            raise CliError(str(exc), exitcodes.USAGE) from None
        self.arbiter = SpeechArbiter(backend, self.events, self.cfg.speech, clock=self.clock,
                                     realtime=not self.opts.every_frame)
        self.arbiter.start()

    # ------------------------------------------------------------------ hazards
    def resolve_detector(self) -> str | None:
        """Find the detector weights; raise CliError(exit 4) when required and missing."""
        return required_detector_path(self.cfg, self.events)

    def make_hazard_state(self) -> tuple[Any, Any]:
        """(detector, analyzer) built in the calling (owning) thread."""
        from assist.detector import YoloDetector
        from assist.hazard_policy import HazardAnalyzer

        assert self.detector_path is not None
        return YoloDetector(self.detector_path, self.cfg.hazards), HazardAnalyzer(self.cfg.hazards, self._language)

    def process_hazards(self, state: tuple[Any, Any], frame: Frame, worker: SupervisedWorker | None = None) -> None:
        """Detect on one frame, update tracks, publish and announce."""
        detector, analyzer = state
        with _deadline(worker):
            detections = detector.detect(frame.image)
        announcements = analyzer.update(detections, frame.t_capture, frame.index)
        with self.shared.lock:
            self.shared.detections = list(detections)
            self.shared.detections_frame = frame.index
            self.shared.tracks = list(getattr(analyzer, "tracks", []))
            self.shared.lock.notify_all()
        for ann in announcements:
            self.events.emit("hazard", frame=ann.frame, text=ann.text, t=self._event_time(frame),
                             **ann.event_fields())
        if announcements and self.arbiter is not None:
            # Warnings decided together are spoken as one utterance, most
            # urgent first: queued separately, an urgent warning is never
            # interrupted, so the second would wait behind the first and
            # expire unsaid (seen on the demo: "bus very near" was dropped).
            ordered = sorted(announcements, key=lambda a: a.priority)
            text = " ".join(a.text.rstrip(".") + "." for a in ordered) if len(ordered) > 1 else ordered[0].text
            top = ordered[0]
            self.arbiter.say(text, top.priority, t_capture=top.t_capture, frame=top.frame, direction=top.direction)

    # ------------------------------------------------------------------ captions
    def make_caption_state(self) -> tuple[Any, Any]:
        """(caption engine, translator or None), built in the calling (owning) thread."""
        from assist.captioner import CaptionEngine

        engine = CaptionEngine.create(self.cfg.caption, self.events, language=self._language, hazards=self.cfg.hazards)
        translator = None
        if self.cfg.caption.translate_to:
            from assist.speech.translate import Translator

            translator = Translator.create(self.cfg.caption.translate_to, events=self.events)
        return engine, translator

    def process_caption(self, state: tuple[Any, Any], frame: Frame, worker: SupervisedWorker | None = None) -> None:
        """Describe one frame (and translate it); drop the result if it is ready too late."""
        engine, translator = state
        with self.shared.lock:
            if self.detector_path and not self.opts.every_frame:
                # Ground the caption in detections of this frame or a later
                # one, not of an older view: wait up to two detector periods.
                self.shared.lock.wait_for(
                    lambda: self.shared.detections_frame >= frame.index or self.stop_event.is_set(),
                    timeout=2.0 / self.cfg.hazards.rate_hz)
            # None = no detector information (none running, or it has produced
            # nothing for this frame: restarting after a fault); [] = it sees nothing.
            fresh = self.opts.every_frame or self.shared.detections_frame >= frame.index
            detections = list(self.shared.detections) if self.detector_path and fresh else None
        if detections is None and self.detector_path and getattr(engine, "mode", "") == "detections":
            # A description built from detections we do not have would say
            # "Nothing recognisable" with a bus in front: say nothing instead.
            log.info("no fresh detections for frame %d; description skipped", frame.index)
            return
        t0 = time.monotonic()
        with _deadline(worker):
            result = engine.describe(frame.image, detections)
            if translator is not None:
                result.text = translator.translate(result.text)
        latency_ms = (time.monotonic() - t0) * 1000.0
        age = self.clock.now() - frame.t_capture
        if age > self.cfg.caption.max_age_s:
            self.events.emit("speech", frame=frame.index, text=result.text, event="dropped",
                             priority=Priority.TEXT.label, reason="caption_too_old")
            return
        with self.shared.lock:
            self.shared.caption = result.text
        self.events.emit("caption", frame=frame.index, text=result.text, t=self._event_time(frame),
                         source=result.source, latency_ms=round(latency_ms, 1))
        if self.arbiter is not None:
            self.arbiter.say(result.text, Priority.TEXT, t_capture=frame.t_capture, frame=frame.index)

    # ------------------------------------------------------------------ gate
    def make_gate(self) -> Any:
        """The scene gate (cheap; runs inline on the capture thread)."""
        from assist.scene_gate import SceneGate

        return SceneGate(self.cfg.scene)

    def gate_frame(self, frame: Frame) -> bool:
        """Score one frame; True when it should be captioned."""
        if self.opts.source_kind == "images":
            # Each photo of a folder is its own scene: the gate, built for a
            # moving camera, would see one long cut and never settle.
            return self.cfg.caption.enabled
        decision = self.gate.update(frame)
        if self.opts.log_gate:
            self.events.emit("gate", frame=frame.index, t=self._event_time(frame), **decision.as_log_fields())
        if getattr(decision, "quality_changed", False):
            if decision.quality != "ok":
                self.notice(decision.quality, event="quality", frame=frame.index)
            else:
                self.events.status("quality", text=None, frame=frame.index, quality="ok")
        return bool(decision.fire) and self.cfg.caption.enabled

    def _event_time(self, frame: Frame) -> float | None:
        """Event time: now (live) or the frame's video time (every-frame)."""
        return frame.t_capture if self.opts.every_frame else None

    # ------------------------------------------------------------------ outputs
    def overlay(self, frame: Frame) -> Any:
        """The frame with boxes and the last caption drawn on it."""
        from assist.overlay import draw_overlay

        with self.shared.lock:
            tracks, caption = list(self.shared.tracks), self.shared.caption
        return draw_overlay(frame.image, tracks, caption)

    def write_video(self, frame: Frame, fps: float) -> None:
        """Append the annotated frame to --save-video."""
        if self.opts.save_video is None:
            return
        from assist.overlay import VideoSink

        image = self.overlay(frame)
        if self.video_sink is None:
            h, w = image.shape[:2]
            self.video_sink = VideoSink(self.opts.save_video, fps, (w, h))
        self.video_sink.write(image)

    # ------------------------------------------------------------------ limits
    def input_exhausted(self, frame: Frame) -> bool:
        """True when --max-frames / --max-seconds say stop."""
        self._frames_seen += 1
        if self._t_first is None:
            self._t_first = frame.t_capture
        if self.opts.max_frames is not None and self._frames_seen >= self.opts.max_frames:
            self.stop_reason = "max_frames"
            return True
        if self.opts.max_seconds is not None and frame.t_capture - self._t_first >= self.opts.max_seconds:
            self.stop_reason = "max_seconds"
            return True
        return False


# ---------------------------------------------------------------------- sources
def make_source_factory(cfg: Config, opts: RunOptions) -> tuple[Callable[[], Any], Any]:
    """(factory, first opened source). Raises CliError(exit 3) when it cannot open."""
    from assist.sources import SourceError, SourceSpec, open_source

    spec = SourceSpec(opts.source_kind, opts.source_value or None)

    def factory() -> Any:
        return open_source(spec, cfg.camera)

    try:
        first = factory()
    except SourceError as exc:
        raise CliError(str(exc), exitcodes.SOURCE) from None
    return factory, first


# ---------------------------------------------------------------------- runs
class StopSignal:
    """SIGINT/SIGTERM handling installed first thing in ``main``: the handler
    only sets an event (and remembers which signal), so a signal in any state
    (imports, model loading, reconnecting, speaking) is seen within ~50 ms by
    the main thread, which never runs anything slow itself."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None

    def install(self) -> StopSignal:
        """Install the handlers (main thread only; a no-op elsewhere)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._handle)
            signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name.lower()
        self.event.set()


def run_pipeline(cfg: Config, opts: RunOptions, *, extra_sinks: tuple[Callable[[dict[str, Any]], None], ...] = (),
                 stop: StopSignal | None = None, hard_exit: bool = False) -> int:
    """Run the agent to the end of input or until stopped; returns an exit code.

    The stages start in a runner thread; this (main) thread only supervises,
    shows the preview and reacts to signals, so stopping takes about a second
    whatever the stages are doing. ``extra_sinks`` receive every event (tests,
    benchmarks); ``stop`` lets a caller end the run from another thread.
    ``hard_exit`` (the CLI) ends the process at once when a stage is stuck in
    a call that cannot be interrupted, instead of waiting for it.
    """
    stop = stop or StopSignal().install()
    clock: Clock = VirtualClock() if opts.every_frame else RealClock()
    events = EventLog(clock)
    file_sink: JsonlFileSink | None = None
    if opts.log_path is not None:
        try:
            file_sink = JsonlFileSink(opts.log_path, on_error=lambda m: print(f"error: {m}", file=sys.stderr))
        except OSError as exc:
            raise CliError(f"--log {opts.log_path}: cannot open ({exc.strerror or exc})", exitcodes.USAGE) from None
        events.add_sink(file_sink)
    if opts.headless and cfg.log.console:
        events.add_sink(ConsoleSink())
    for sink in extra_sinks:
        events.add_sink(sink)
    agent = Agent(cfg, opts, events, clock, stop=stop.event)
    result: dict[str, Any] = {"code": exitcodes.OK}

    def runner() -> None:
        try:
            result["code"] = _run(agent)
        except CliError as exc:
            if not stop.event.is_set():
                print(f"error: {exc}", file=sys.stderr)
                agent.stop_reason = "error"
                result["code"] = exc.code
        except Exception as exc:  # noqa: BLE001 - a bug: log it, stop cleanly, say how to report
            log.debug("internal error", exc_info=True)
            print(f"error: internal error ({type(exc).__name__}: {exc}); run with -v for details and report it "
                  "with the log", file=sys.stderr)
            agent.stop_reason = "internal_error"
            result["code"] = exitcodes.INTERNAL
        finally:
            agent.runner_done.set()

    thread = threading.Thread(target=runner, name="runner", daemon=True)
    thread.start()
    show = not opts.headless
    while not agent.runner_done.is_set() and not stop.event.is_set():
        frame = agent.display_frames.get(timeout=0.03)
        if frame is not None and show:
            show = _show_preview(agent, frame)
    if stop.event.is_set() and stop.reason:
        agent.stop_reason = stop.reason
    _shutdown(agent)
    thread.join(0.2)
    code = result["code"]
    events.status("stopped", reason=agent.stop_reason, exit_code=code)
    if file_sink is not None:
        file_sink.close()
    if hard_exit and (thread.is_alive() or any(w.alive for w in agent._workers)):
        # A model call or an import is still running (it cannot be
        # interrupted); the log is complete and flushed, so end now rather
        # than wait for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(agent: Agent) -> int:
    cfg, opts, events = agent.cfg, agent.opts, agent.events
    if opts.source_kind == "images":
        # A folder of photos is a slideshow of unrelated scenes, one frame
        # each: hazards are confirmed on one frame (there is no second), and
        # every photo is described (see gate_frame).
        cfg.hazards.confirm_frames, cfg.hazards.confirm_evidence = 1, 0.0
    agent.detector_path = agent.resolve_detector()
    factory, first_source = make_source_factory(cfg, opts)
    events.status("started", source=f"{opts.source_kind}:{opts.source_value}" if opts.source_value
                  else opts.source_kind, detector=agent.detector_path, every_frame=opts.every_frame)
    agent.start_speech()
    agent.gate = agent.make_gate()
    if opts.every_frame:
        return _run_every_frame(agent, factory, first_source)
    return _run_live(agent, factory, first_source)


def _run_every_frame(agent: Agent, factory: Callable[[], Any], first_source: Any) -> int:
    """Deterministic: every frame in order, stages called synchronously."""
    from assist.capture import CaptureLoop

    cfg = agent.cfg
    assert isinstance(agent.clock, VirtualClock)
    capture = CaptureLoop(factory, cfg.camera, agent.events, notify=agent.notice, clock=agent.clock,
                          every_frame=True, source=first_source)
    agent.capture = capture
    hazard_state = None
    if agent.detector_path:
        from assist.detector import DetectorModelMissing

        try:
            hazard_state = agent.make_hazard_state()
        except DetectorModelMissing as exc:
            raise detector_load_error(agent.detector_path, exc) from None
    caption_engine = agent.make_caption_state() if cfg.caption.enabled else None
    fps = first_source.fps or 10.0
    period = 1.0 / cfg.hazards.rate_hz
    next_detect = None
    for frame in capture.iter_frames():
        if agent.stop_event.is_set():
            break
        agent.clock.advance_to(frame.t_capture)
        agent.arbiter.advance_to(frame.t_capture)
        if hazard_state is not None and (next_detect is None or frame.t_capture >= next_detect - 1e-9):
            agent.process_hazards(hazard_state, frame)
            next_detect = (frame.t_capture if next_detect is None else next_detect) + period
            while next_detect <= frame.t_capture:
                next_detect += period
        if agent.gate_frame(frame) and caption_engine is not None:
            agent.process_caption(caption_engine, frame)
        agent.write_video(frame, fps)
        if agent.input_exhausted(frame):
            break
    if not agent.stop_event.is_set():
        # Let queued speech finish on the virtual clock, so the final
        # `stopped` event comes after the last utterance.
        agent.clock.advance_to(agent.arbiter.flush())
    _raise_capture_error(agent)
    return exitcodes.OK


def _run_live(agent: Agent, factory: Callable[[], Any], first_source: Any) -> int:
    """Live: threads, freshest frames, real time."""
    from assist.capture import CaptureLoop

    cfg, stop = agent.cfg, agent.stop_event
    fps = first_source.fps or 15.0

    def slot_stats() -> dict[str, int]:
        return {"hazard_drops": agent._hazard_slot.dropped, "caption_drops": agent._caption_slot.dropped}

    capture = CaptureLoop(factory, cfg.camera, agent.events, notify=agent.notice, clock=agent.clock,
                          every_frame=False, extra_stats=slot_stats, source=first_source)
    agent.capture = capture

    # Workers own their models; they are built inside their own threads.
    if agent.detector_path:
        period = 1.0 / cfg.hazards.rate_hz

        def hazard_step(state: Any) -> None:
            t0 = time.monotonic()
            frame = agent._hazard_slot.get(timeout=0.25)
            if frame is None:
                return
            agent.process_hazards(state, frame, hazard_worker)
            stop.wait(max(0.0, period - (time.monotonic() - t0)))

        hazard_worker = SupervisedWorker(
            "hazards", agent.make_hazard_state, hazard_step, stop=stop, deadline_s=cfg.hazards.deadline_s,
            on_fault=lambda kind, msg: agent.notice("hazards_unavailable", event="worker_fault"),
            on_recovered=lambda: agent.events.status("worker_recovered", worker="hazards"))
        agent._workers.append(hazard_worker)
    if cfg.caption.enabled:
        def caption_step(engine: Any) -> None:
            frame = agent._caption_slot.get(timeout=0.25)
            if frame is not None:
                agent.process_caption(engine, frame, caption_worker)

        caption_worker = SupervisedWorker(
            "captions", agent.make_caption_state, caption_step, stop=stop, deadline_s=cfg.caption.deadline_s,
            on_fault=lambda kind, msg: agent.notice("captions_unavailable", event="worker_fault"),
            on_recovered=lambda: agent.events.status("worker_recovered", worker="captions"))
        agent._workers.append(caption_worker)
    # The detector comes up first and frames flow as soon as it is ready (warnings first, on a file too); the
    # captioner loads behind it, so its imports and graph loading do not compete with the detector's start on
    # a small machine. The caption slot keeps the first gated frame until the captioner takes it.
    for worker in sorted(agent._workers, key=lambda w: w.name != "hazards"):
        worker.start()
        while worker.name == "hazards" and not worker.ready.wait(0.05):
            if stop.is_set():
                return exitcodes.OK
        if worker.name == "hazards" and worker.setup_error is not None:
            raise detector_load_error(agent.detector_path, worker.setup_error)
    caption_reported = threading.Event()

    def report_captioner() -> None:
        for worker in agent._workers:
            if worker.name == "captions" and worker.ready.is_set() and not caption_reported.is_set():
                caption_reported.set()
                if worker.setup_error is not None:
                    agent.events.status("model_missing", text=f"captioner cannot load: {worker.setup_error}",
                                        model="captioner")

    def on_frame(frame: Frame) -> None:
        if agent.detector_path:  # no hazard worker, no consumer: a frame left there would hold up _drain
            agent._hazard_slot.put(frame)
        if agent.gate_frame(frame):
            agent._caption_slot.put(frame)
        agent.display_frames.put(frame)
        agent.write_video(frame, fps)
        if agent.input_exhausted(frame):
            exhausted.set()

    exhausted = threading.Event()
    capture.start(on_frame)
    while not stop.is_set() and not exhausted.is_set():
        report_captioner()
        if capture.wait(0.05):  # the source ended (a file) or gave up
            break
    if not stop.is_set():
        capture.stop(timeout=0.5)
        _drain(agent)
    report_captioner()
    _raise_capture_error(agent)
    return exitcodes.OK


def _raise_capture_error(agent: Agent) -> None:
    """A source that failed for good mid-run (a camera not back after
    camera.reconnect_attempts tries, a file that cannot be read) ends the run
    with its message and exit 3, like a source that cannot be opened; the
    speech already queued (the "Camera lost" notice) has been let finish."""
    from assist.sources import SourceError

    err = agent.capture.error if agent.capture is not None else None
    if err is None or agent.stop_event.is_set():
        return
    if isinstance(err, SourceError):
        agent.stop_reason = "source_lost"
        raise CliError(str(err), exitcodes.SOURCE)
    raise err


def _drain(agent: Agent, timeout: float = 8.0) -> None:
    """At the end of a file: let the last frame, caption and warnings finish (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not agent.stop_event.is_set():
        pending = agent._hazard_slot.pending or agent._caption_slot.pending
        busy = any(w.is_busy for w in agent._workers)
        if not pending and not busy and agent.arbiter.wait_idle(0.05):
            return
        time.sleep(0.02)


def _show_preview(agent: Agent, frame: Frame) -> bool:
    """Show the preview window; False when no display is available."""
    import cv2

    try:
        cv2.imshow("assist", agent.overlay(frame))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            agent.stop_reason = "user"
            agent.stop_event.set()
        return True
    except cv2.error:
        log.warning("no display for the preview window; continuing headless")
        agent.events.status("preview_unavailable")
        return False


def _shutdown(agent: Agent) -> None:
    """Stop everything within about a second, in order."""
    agent.stop_event.set()
    if agent.capture is not None:
        agent.capture.stop(timeout=0.5)
    agent._hazard_slot.close()
    agent._caption_slot.close()
    for worker in agent._workers:
        worker.join(timeout=0.2)
    if agent.arbiter is not None:
        agent.arbiter.stop(timeout=0.3)
    if agent.video_sink is not None:
        agent.video_sink.close()
    if not agent.opts.headless:
        try:
            import cv2

            cv2.destroyAllWindows()
        except Exception:  # noqa: BLE001 - best effort
            pass


__all__ = ["Agent", "run_pipeline"]
