"""Live runs: a capture thread, a hazard worker at ``hazards.rate_hz`` on the
freshest frame, a caption worker fed by the scene gate, the speech arbiter's
own thread; frames that a busy worker cannot take are replaced, never queued."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from assist.capture import FrameSource, SourceFactory
from assist.core.frames import Frame
from assist.runtime.workers import SupervisedWorker

if TYPE_CHECKING:
    from assist.runtime.run import CaptionState, HazardState, RunWiring


def run_live(run: RunWiring, factory: SourceFactory, first_source: FrameSource) -> None:
    """Live: threads, freshest frames, real time."""
    from assist.capture.loop import CaptureLoop
    from assist.hazards.detector import load_error

    cfg, stop = run.cfg, run.stop_event
    fps = first_source.fps or 15.0

    def slot_stats() -> dict[str, int]:
        return {"hazard_drops": run.hazard_slot.dropped, "caption_drops": run.caption_slot.dropped}

    capture = CaptureLoop(factory, cfg.camera, run.events, notify=run.speak_notice, clock=run.clock,
                          every_frame=False, extra_stats=slot_stats, source=first_source)
    run.capture = capture

    # Workers own their models; they are built inside their own threads.
    if run.detector_path:
        period = 1.0 / cfg.hazards.rate_hz

        def hazard_step(state: HazardState) -> None:
            t0 = time.monotonic()
            frame = run.hazard_slot.get(timeout=0.25)
            if frame is None:
                return
            run.process_hazards(state, frame, hazard_worker)
            stop.wait(max(0.0, period - (time.monotonic() - t0)))

        hazard_worker = SupervisedWorker(
            "hazards", run.make_hazard_state, hazard_step, stop=stop, deadline_s=cfg.hazards.deadline_s,
            on_fault=lambda kind, msg: run.worker_notice("hazards", False, kind=kind, message=msg),
            on_recovered=lambda: run.worker_notice("hazards", True))
        run.workers.append(hazard_worker)
    if cfg.caption.enabled:
        def caption_step(state: CaptionState) -> None:
            frame = run.caption_slot.get(timeout=0.25)
            if frame is not None:
                run.process_caption(state, frame, caption_worker)

        caption_worker = SupervisedWorker(
            "captions", run.make_caption_state, caption_step, stop=stop, deadline_s=cfg.caption.deadline_s,
            on_fault=lambda kind, msg: run.worker_notice("captions", False, kind=kind, message=msg),
            on_recovered=lambda: run.worker_notice("captions", True))
        run.workers.append(caption_worker)
    # The detector comes up first; the captioner starts loading only once it is ready, so its imports and graph
    # loading (torch: 1.5-2.5 s of CPU) do not compete with the detector's start on a small machine (issue 17).
    # A live source starts as soon as the detector is ready (warnings first); a file waits for the captioner
    # too, so its first scene is not lost to a slow model load (a caption older than caption.max_age_s is dropped).
    for worker in sorted(run.workers, key=lambda w: w.name != "hazards"):
        worker.start()
        if first_source.is_live and worker.name != "hazards":
            continue
        while not worker.ready.wait(0.05):
            if stop.is_set():
                return
        if worker.setup_error is not None:
            err = worker.setup_error
            if worker.name == "hazards":
                raise load_error(run.detector_path, err)
            run.events.status("model_missing", text=f"captioner cannot load: {err}", model="captioner")

    def on_frame(frame: Frame) -> None:
        run.latest_frame = frame  # what describe requests caption
        if run.detector_path:  # no hazard worker, no consumer: a frame left there would hold up _drain
            run.hazard_slot.put(frame)
        due = run.gate_frame(frame)
        if due is not None:
            run.caption_slot.put(due)
        run.display_frames.put(frame)
        run.write_video(frame, fps)
        if run.input_exhausted(frame):
            exhausted.set()

    exhausted = threading.Event()
    capture.start(on_frame)
    while not stop.is_set() and not exhausted.is_set():
        if capture.wait(0.05):  # the source ended (a file) or gave up
            break
    if not stop.is_set():
        capture.stop(timeout=0.5)
        _drain(run)
    run.raise_capture_error()


def _drain(run: RunWiring, timeout: float = 8.0) -> None:
    """At the end of a file: let the last frame, caption and warnings finish (bounded)."""
    deadline = time.monotonic() + timeout
    assert run.speaker is not None
    while time.monotonic() < deadline and not run.stop_event.is_set():
        pending = run.hazard_slot.pending or run.caption_slot.pending
        busy = any(w.is_busy for w in run.workers)
        if not pending and not busy and run.speaker.wait_idle(0.05):
            return
        time.sleep(0.02)
