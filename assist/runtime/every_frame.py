"""``--every-frame``: every frame in order, each stage called synchronously on a
virtual clock whose time is the video time, so a file gives the same event log
every run (evaluation and the golden tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assist.capture import FrameSource, SourceFactory
from assist.core.clock import VirtualClock

if TYPE_CHECKING:
    from assist.runtime.run import RunWiring


def run_every_frame(run: RunWiring, factory: SourceFactory, first_source: FrameSource) -> None:
    """Deterministic: every frame in order, stages called synchronously."""
    from assist.capture.loop import CaptureLoop
    from assist.runtime.served_models import hazards_waiting_for_server

    cfg = run.cfg
    assert isinstance(run.clock, VirtualClock) and run.speaker is not None
    capture = CaptureLoop(factory, cfg.camera, run.events, notify=run.speak_notice, clock=run.clock,
                          every_frame=True, source=first_source)
    run.capture = capture
    hazard_state = None
    if run.detector_path:
        hazard_state = run.make_hazard_state()  # weights that do not load: DetectorModelMissing
    caption_engine = run.make_caption_state() if cfg.caption.enabled else None
    run.caption_state = caption_engine  # for describe requests
    control = run.control
    fps = first_source.fps or 10.0
    period = 1.0 / cfg.hazards.rate_hz
    next_detect = None
    for frame in capture.iter_frames():
        if run.stop_event.is_set():
            break
        run.clock.advance_to(frame.t_capture)
        run.speaker.advance_to(frame.t_capture)
        if hazard_state is not None and (next_detect is None or frame.t_capture >= next_detect - 1e-9):
            hazard_state = hazards_waiting_for_server(run, hazard_state, frame)
            next_detect = (frame.t_capture if next_detect is None else next_detect) + period
            while next_detect <= frame.t_capture:
                next_detect += period
        run.latest_frame = frame
        if control is not None:
            control.poll(frame.t_capture)  # commands due at this video time (deterministic)
            if run.stop_event.is_set():
                break
        due = run.gate_frame(frame)
        if due is not None and caption_engine is not None and not run.described_on_request(due):
            run.process_caption(caption_engine, due)
        run.write_video(frame, fps)
        if run.input_exhausted(frame):
            break
    if control is not None and not run.stop_event.is_set():
        control.finish()  # timed commands the input never reached: logged as refused
    if not run.stop_event.is_set():
        # Let queued speech finish on the virtual clock, so the final
        # `stopped` event comes after the last utterance.
        run.clock.advance_to(run.speaker.flush())
    run.raise_capture_error()
