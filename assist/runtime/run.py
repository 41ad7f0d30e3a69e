"""One run: capture -> hazard worker / scene gate -> caption worker -> speech.

Two ways to run the same stages:

* live (default, :mod:`assist.runtime.live`): one capture thread, a hazard
  worker at a fixed rate on the freshest frame, a caption worker fed by the
  scene gate, and the speech arbiter's own thread; the main thread only waits
  (or shows the preview).
* ``--every-frame`` (:mod:`assist.runtime.every_frame`): every frame in order,
  each stage called synchronously on a virtual clock whose time is the video
  time, so a file gives the same log every run (evaluation and golden tests).

:class:`RunWiring` holds the stages of one run (typed by the protocols of
their packages) and the policy between them: warnings decided together are
one utterance, a caption waits for fresh detections, a late caption is
dropped. One stop event ends everything; shutdown is bounded to about a
second. The stages raise their own errors; which exit code each becomes is
decided by the caller (``exit_code``: ``assist.app.errors.exit_code``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from assist.capture import FrameSource, SourceFactory
from assist.capture.errors import SourceError
from assist.config import Config, HazardConfig
from assist.core.clock import Clock
from assist.core.detection import Detection
from assist.core.events import EventLog
from assist.core.frames import Frame, LatestFrameSlot
from assist.core.priority import Priority
from assist.describe import Describer, SceneGating
from assist.describe.from_detections import WarnedObject, merge_recent, remember_warned
from assist.hazards import Detector, HazardAnalysis
from assist.runtime.control import ControlSession
from assist.runtime.observer import NullRunObserver, RunObserver
from assist.runtime.options import RunOptions, RunSeams
from assist.runtime.workers import SupervisedWorker
from assist.speech import Speaker

if TYPE_CHECKING:
    from assist.capture.loop import CaptureLoop
    from assist.hazards.policy import TrackView
    from assist.runtime.outputs import VideoSink
    from assist.speech.announcer import Announcer
    from assist.speech.translate import Translator

log = logging.getLogger(__name__)

# A description leaves out what was warned about this recently (seconds).
WARNED_WINDOW_S = 5.0
# Descriptions of an unchanged view merge the detector runs of this many seconds.
RECENT_DETECTIONS_S = 1.0
#: Maps how a run ended (None: it ended normally; else the error that ended it)
#: to the process exit code, or None for an error no stage declares (a bug: the
#: run then asks again with :class:`InternalError`).
ExitCodeOf = Callable[[BaseException | None], int | None]

HazardState = tuple[Detector, HazardAnalysis]
CaptionState = tuple[Describer, "Translator | None"]


@dataclass
class SharedState:
    """What the workers publish for each other (guarded by ``lock``)."""

    lock: threading.Condition = field(default_factory=threading.Condition)  # notified on new detections
    detections: list[Detection] = field(default_factory=list)
    detections_frame: int = -1
    tracks: list[TrackView] = field(default_factory=list)
    caption: str | None = None
    recent_runs: list[tuple[float, list[Detection]]] = field(default_factory=list)  # (t_capture, detections)


def _deadline(worker: SupervisedWorker | None) -> contextlib.AbstractContextManager[None]:
    """The worker's deadline watch around a model call (none when synchronous)."""
    return worker.busy() if worker is not None else contextlib.nullcontext()


def load_detector(path: str, cfg: HazardConfig, *, stop: threading.Event | None = None) -> Detector:
    """The real detector (the default ``RunSeams.detector_factory``); ``stop`` ends a wait for a
    served detector's server (assist/serve/client.py)."""
    from assist.hazards.detector import YoloDetector

    return YoloDetector(path, cfg, stop=stop)


def load_describer(cfg: Config, events: EventLog) -> Describer:
    """The real caption engine (the default ``RunSeams.describer_factory``)."""
    from assist.describe.engine import CaptionEngine

    return CaptionEngine.create(cfg.caption, events, language=cfg.speech.language, hazards=cfg.hazards)


class RunWiring:
    """The wiring of one run: its stages, what they share, and the policy
    between them (see :func:`assist.runtime.pipeline.run_pipeline`)."""

    def __init__(self, cfg: Config, opts: RunOptions, events: EventLog, clock: Clock, *,
                 stop: threading.Event | None = None, seams: RunSeams | None = None) -> None:
        self.cfg = cfg
        self.opts = opts
        self.events = events
        self.clock = clock
        self.seams = seams or RunSeams()
        self.observer: RunObserver = self.seams.observer or NullRunObserver()
        # A folder of photos is a slideshow of unrelated scenes, one frame
        # each: hazards are confirmed on one frame (there is no second), and
        # every photo is described (see gate_frame). A copy: the config itself
        # is never changed while running.
        self.hazard_cfg = (dataclasses.replace(cfg.hazards, confirm_frames=1, confirm_evidence=0.0)
                           if opts.source_kind == "images"
                           else cfg.hazards)
        self.stop_event = stop or threading.Event()
        self.shared = SharedState()
        self.stop_reason = "end_of_input"
        self.speaker: Speaker | None = None
        self.capture: CaptureLoop | None = None
        self.gate: SceneGating | None = None
        self.video_sink: VideoSink | None = None
        self.announcer: Announcer | None = None
        self.detector_path: str | None = None
        self._language = cfg.speech.language
        self.hazard_slot = LatestFrameSlot("hazard")
        self.caption_slot = LatestFrameSlot("caption")
        self.workers: list[SupervisedWorker] = []
        self._frames_seen = 0
        self._t_first: float | None = None
        # caption triggers by frame index (the caption slot carries frames only) and
        # the objects recently warned about (descriptions do not repeat them)
        self._caption_triggers: dict[int, str] = {}
        self._warned: list[WarnedObject] = []
        self._change_started: float | None = None  # capture time of the first frame of a view change
        self.runner_done = threading.Event()
        self.display_frames = LatestFrameSlot("display")
        # Frames that are each their own scene: a folder of photos, or a one-frame video (issue 13).
        self.stills = opts.source_kind == "images"
        self.first_source: FrameSource | None = None
        # User control (issue 16, assist/runtime/control.py).
        self.control: ControlSession | None = None
        self.latest_frame: Frame | None = None
        self._describe_request: int | None = None  # frame index asked for, under shared.lock
        self.caption_state: CaptionState | None = None  # every-frame: the caption engine, for requests

    # ------------------------------------------------------------------ control (ControlHost)
    def describe_refusal(self) -> str | None:
        """Why a requested description cannot be made now (None: it can)."""
        if not self.cfg.caption.enabled:
            return "descriptions are off (caption.enabled = false)"
        if self.latest_frame is None:
            return "no frame yet"
        return None

    def describe_now(self) -> None:
        """Caption the freshest frame now, whatever the gate says (trigger ``request``):
        at once with --every-frame, else by the caption worker as its next frame."""
        frame = self.latest_frame
        assert frame is not None
        with self.shared.lock:
            self._describe_request = frame.index
        if self.opts.every_frame:
            if self.caption_state is not None:
                self.process_caption(self.caption_state, frame, trigger="request")
            return
        self.caption_slot.put(frame)

    def described_on_request(self, frame: Frame) -> bool:
        """Every-frame: True when ``frame`` was just described on request (the gate need not)."""
        return self._describe_request == frame.index

    def control_time(self) -> float | None:
        """Live: seconds since the first frame, for ``@t`` commands (None before it)."""
        return None if self._t_first is None else self.clock.now() - self._t_first

    def slot_backlog(self) -> dict[str, int]:
        """Frames waiting for the hazard and the caption worker (0 or 1 each)."""
        return {"hazard": int(self.hazard_slot.pending), "caption": int(self.caption_slot.pending)}

    # ------------------------------------------------------------------ notices
    def notice(self, key: str, *, event: str | None = None, frame: int | None = None, **details: Any) -> None:
        """Speak a status notice (``camera_lost``, ``too_dark``, ...) and log it: one event with ``details``."""
        text = self.speak_notice(key, frame=frame)  # said: its SAY line shows it on the console
        self.events.status(event or key, text=text, frame=frame, said=self.announcer is not None, **details)

    def worker_notice(self, worker: str, ok: bool, *, kind: str | None = None, message: str | None = None,
                      frame: int | None = None) -> None:
        """A worker's state changed: say "... unavailable" / "... back" and log ONE status event
        (``worker_fault`` with ``kind``, ``message``; ``worker_recovered``) with the words, as for the camera."""
        self.notice(f"{worker}_{'back' if ok else 'unavailable'}", event="worker_recovered" if ok else "worker_fault",
                    frame=frame, worker=worker, **({} if ok else {"kind": kind, "message": message}))

    def speak_notice(self, key: str, *, frame: int | None = None) -> str:
        """Speak a notice (a state, see Announcer.state) without logging it; return its words
        (the capture loop logs each camera change once, with its details and these words)."""
        from assist.speech.phrases import notice

        return self.announcer.state(key, frame=frame) if self.announcer is not None else notice(key, self._language)

    # ------------------------------------------------------------------ speech
    def start_speech(self) -> None:
        """Create the speech backend and arbiter (SpeechBackendUnavailable when
        an explicitly chosen backend cannot work)."""
        from assist.speech.arbiter import SpeechArbiter
        from assist.speech.backends import make_backend

        make = self.seams.speech_backend_factory
        if make is not None:
            backend = make(self.cfg.speech, self.events, self.opts.speech_wav)
        else:
            backend = make_backend(self.cfg.speech, self.events, wav_dir=self.opts.speech_wav)
        arbiter = SpeechArbiter(backend, self.events, self.cfg.speech, clock=self.clock,
                                realtime=not self.opts.every_frame, on_decision=self.observer.speech_decision)
        from assist.speech.announcer import Announcer

        self.announcer = Announcer(arbiter, self.cfg.speech, clock=self.clock.now)
        arbiter.start()
        self.speaker = arbiter

    # ------------------------------------------------------------------ hazards
    def make_hazard_state(self) -> HazardState:
        """(detector, hazard policy) built in the calling (owning) thread."""
        from assist.hazards.policy import HazardPolicy

        assert self.detector_path is not None
        if self.seams.detector_factory is not None:
            detector = self.seams.detector_factory(self.detector_path, self.hazard_cfg)
        else:
            detector = load_detector(self.detector_path, self.hazard_cfg, stop=self.stop_event)
        policy = HazardPolicy(self.hazard_cfg, self._language, hfov_deg=self.cfg.camera.hfov_deg,
                              verbosity=self.cfg.speech.verbosity)
        return detector, policy

    def process_hazards(self, state: HazardState, frame: Frame, worker: SupervisedWorker | None = None) -> None:
        """Detect on one frame, update tracks, publish and announce."""
        detector, analyzer = state
        with _deadline(worker):
            detections = detector.detect(frame.image)
        aspect = frame.image.shape[1] / max(1, frame.image.shape[0])  # for distances
        announcements = analyzer.update(detections, frame.t_capture, frame.index, aspect=aspect)
        with self.shared.lock:
            self.shared.detections = list(detections)
            self.shared.detections_frame = frame.index
            runs = self.shared.recent_runs
            runs.append((frame.t_capture, list(detections)))
            while runs and runs[0][0] < frame.t_capture - RECENT_DETECTIONS_S:
                runs.pop(0)
            self.shared.tracks = list(analyzer.tracks)
            self.shared.lock.notify_all()
        for ann in announcements:
            text = self.announcer.describe(ann, analyzer.world) if self.announcer is not None else ann.text
            self.events.emit("hazard", frame=ann.frame, text=text, t=self._event_time(frame),
                             **ann.event_fields())
        if announcements:
            self._remember_warned(announcements)
        if self.announcer is not None:  # every run: what a full warning had no room for goes next
            self.announcer.warn(announcements, analyzer.world)  # words composed when it starts

    def _remember_warned(self, announcements: list[Any]) -> None:
        """Keep what was just warned about (a few seconds' worth) for the next description."""
        with self.shared.lock:
            boxes = {tr.track_id: tuple(tr.bbox) for tr in self.shared.tracks}
            self._warned = remember_warned(self._warned, announcements, boxes, WARNED_WINDOW_S)

    # ------------------------------------------------------------------ captions
    def make_caption_state(self) -> CaptionState:
        """(caption engine, translator or None), built in the calling (owning) thread."""
        engine = (self.seams.describer_factory or load_describer)(self.cfg, self.events)
        translator = None
        if self.cfg.caption.translate_to:
            from assist.speech.translate import Translator

            translator = Translator.create(self.cfg.caption.translate_to, events=self.events)
        return engine, translator

    def process_caption(self, state: CaptionState, frame: Frame, worker: SupervisedWorker | None = None, *,
                        trigger: str | None = None) -> None:
        """Describe one frame (and translate it); drop the result if it is ready too late.

        ``trigger`` (startup, scene_change, walking, refresh, request, image) is
        logged with the caption; None: a pending user request (live) or the one
        the gate recorded for this frame. Objects warned about in the last few
        seconds are left out unless the scene changed (scene_change, image).
        ``trigger="request"``: the user asked, so stale detections are used
        rather than none and the result is spoken at once (see SpeechArbiter.say's
        ``asked``)."""
        engine, translator = state
        with self.shared.lock:
            if (trigger is None and not self.opts.every_frame and self._describe_request is not None
                    and frame.index >= self._describe_request):
                trigger, self._describe_request = "request", None
            if trigger is None:
                trigger = self._caption_triggers.pop(frame.index, "scene_change")
            # A photo of a folder, or the user asking, gets the whole view. Otherwise what was warned
            # about since the view changed (_view_changed) is left out: "A bedroom with a bed." after "Dog ...".
            warned = [] if trigger in ("image", "request") else list(self._warned)
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
            asked = trigger == "request"
            detections = list(self.shared.detections) if self.detector_path and (fresh or asked) else None
            if detections is not None and trigger not in ("scene_change", "image", "request"):
                # The same view for a moment (startup, walking, refresh): the detector
                # flickers on real footage, so describe what the last runs saw.
                detections = merge_recent([d for _, d in self.shared.recent_runs])
        if detections is None and self.detector_path and engine.mode == "detections":
            # A description built from detections we do not have would say
            # "Nothing recognisable" with a bus in front: say nothing instead.
            log.info("no fresh detections for frame %d; description skipped", frame.index)
            return
        t0 = time.monotonic()
        with _deadline(worker):
            result = engine.describe(frame.image, detections, recently_warned=warned, now=frame.t_capture)
            if not result.text:
                log.info("frame %d: everything in view was just warned about; no description", frame.index)
                return
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
        # t: when the description was made (the startup frame may be older than the decision)
        self.events.emit("caption", frame=frame.index, text=result.text,
                         t=self.clock.now() if self.opts.every_frame else None,
                         source=result.source, latency_ms=round(latency_ms, 1), trigger=trigger, **self._file_of(frame))
        if self.speaker is not None:
            self.speaker.say(result.text, Priority.TEXT, t_capture=frame.t_capture, frame=frame.index, asked=asked)

    # ------------------------------------------------------------------ gate
    def make_gate(self) -> SceneGating:
        """The scene gate (cheap; runs inline on the capture thread)."""
        from assist.describe.scene_gate import SceneGate

        return SceneGate(self.cfg.scene)

    def gate_frame(self, frame: Frame) -> Frame | None:
        """Score one frame; the frame to describe (this one or the gate's sharper
        startup pick) when a description is due, else None. Its trigger is
        recorded for :meth:`process_caption`."""
        if self.stills:
            # Each photo of a folder is its own scene: the gate, built for a
            # moving camera, would see one long cut and never settle.
            return self._due(frame, "image") if self.cfg.caption.enabled else None
        assert self.gate is not None
        decision = self.gate.update(frame)
        if self.opts.log_gate:
            self.events.emit("gate", frame=frame.index, t=self._event_time(frame), **decision.as_log_fields())
        if decision.state == "moving" and decision.score >= 100.0:
            self._view_changed(frame)
        else:
            self._change_started = None
        if decision.quality_changed:
            if decision.quality != "ok":
                self.notice(decision.quality, event="quality", frame=frame.index)
            else:
                self.events.status("quality", text=None, frame=frame.index, quality="ok")
        if not (decision.fire and self.cfg.caption.enabled):
            return None
        return self._due(decision.frame or frame, decision.trigger or "scene_change")

    def _view_changed(self, frame: Frame) -> None:
        """The view changed, not shifted (a cut, a turn: gate score 100): a waiting description is of a scene
        no longer in front (dropped ``superseded``); what was warned about before the change may be described
        again. The gate says so for every frame of the change (two or three after a cut): what was warned about
        on those frames is of the new view and stays left out (seen on the dense clip: "Dog on the left, very
        near" on the frame after a cut, then "A bedroom with a bed and a dog on the left.")."""
        if self._change_started is None:
            self._change_started = frame.t_capture
        started = self._change_started
        if (supersede := getattr(self.speaker, "supersede_descriptions", None)) is not None:
            supersede(started)
        with self.shared.lock:
            self._warned = [w for w in self._warned if w.t >= started]

    def _due(self, frame: Frame, trigger: str) -> Frame:
        """Record the trigger of a frame about to be described (bounded: the slot may drop frames)."""
        if len(self._caption_triggers) > 16:
            self._caption_triggers.clear()
        self._caption_triggers[frame.index] = trigger
        return frame

    def _file_of(self, frame: Frame) -> dict[str, str]:
        """``{"file": name}`` for a frame of a folder of photos (named as it is described), else {}."""
        delivered = getattr(self.first_source, "delivered", None) if self.stills else None
        return {"file": delivered[frame.index].name} if delivered and 0 <= frame.index < len(delivered) else {}

    def _event_time(self, frame: Frame) -> float | None:
        """Event time: now (live) or the frame's video time (every-frame)."""
        return frame.t_capture if self.opts.every_frame else None

    # ------------------------------------------------------------------ outputs
    def overlay(self, frame: Frame) -> np.ndarray:
        """The frame with boxes and the last caption drawn on it."""
        from assist.runtime.outputs import draw_overlay

        with self.shared.lock:
            tracks, caption = list(self.shared.tracks), self.shared.caption
        return draw_overlay(frame.image, tracks, caption)

    def write_video(self, frame: Frame, fps: float) -> None:
        """Append the annotated frame to --save-video."""
        if self.opts.save_video is None:
            return
        from assist.runtime.outputs import VideoSink

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

    # ------------------------------------------------------------------ sources
    def open_source(self) -> tuple[SourceFactory, FrameSource]:
        """(factory, first opened source): the injected factory, else the source
        the options name. Raises SourceError when it cannot open."""
        factory = self.seams.source_factory
        if factory is None:
            from assist.capture.sources import SourceSpec, open_source

            spec = SourceSpec(self.opts.source_kind, self.opts.source_value or None)
            camera = self.cfg.camera

            def factory() -> FrameSource:
                return open_source(spec, camera)

        return factory, factory()

    def raise_capture_error(self) -> None:
        """A source that failed for good mid-run (a camera not back after
        camera.reconnect_attempts tries, a file that cannot be read) ends the run
        with its SourceError, like a source that cannot be opened; the speech
        already queued (the "Camera lost" notice) has been let finish."""
        err = self.capture.error if self.capture is not None else None
        if err is None or self.stop_event.is_set():
            return
        if isinstance(err, SourceError):
            self.stop_reason = "source_lost"
        raise err


__all__ = ["RunWiring", "SharedState", "load_describer", "load_detector"]
