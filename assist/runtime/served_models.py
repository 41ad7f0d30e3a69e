"""The run's side of served models (issue 18): a captioner URL must answer at start,
and with ``--every-frame`` a lost detector server is waited for instead of ending the run.

Imported lazily by runtime/run.py and runtime/every_frame.py.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assist.config import Config
    from assist.core.events import EventLog
    from assist.core.frames import Frame
    from assist.runtime.run import HazardState, RunWiring

log = logging.getLogger(__name__)


def check_served_captioner(cfg: Config, events: EventLog) -> None:
    """A captioner named by URL must answer now: a wrong URL is an error (CaptionModelMissing: exit 4),
    not a silent fallback to descriptions from detections."""
    from assist.describe.captioner import ENV_VAR
    from assist.serve import is_remote

    ref = os.environ.get(ENV_VAR, "").strip() or cfg.caption.model.strip()
    if not cfg.caption.enabled or not is_remote(ref):
        return
    from assist.describe.errors import CaptionModelMissing
    from assist.serve.client import RemoteModelUnavailable, probe

    try:
        probe(ref)
    except RemoteModelUnavailable as exc:
        events.status("model_missing", text=str(exc), model="captioner")
        raise CaptionModelMissing(str(exc)) from None


def hazards_waiting_for_server(run: RunWiring, state: HazardState, frame: Frame) -> HazardState:
    """Every-frame with a served detector: when its server is lost, say so, wait for it (back-off, stoppable),
    say it is back and retry the same frame with the same tracks, so no frame is skipped and the warnings
    are those of an uninterrupted run. Returns the (possibly reconnected) hazard state."""
    from assist.hazards.detector import DetectorModelMissing, load_error
    from assist.serve.client import RemoteModelUnavailable

    while True:
        try:
            run.process_hazards(state, frame)
            return state
        except RemoteModelUnavailable as exc:
            log.warning("%s", exc)
            run.worker_notice("hazards", False, kind="error", message=str(exc), frame=frame.index)
        try:
            state = (run.make_hazard_state()[0], state[1])  # a new client; the same tracks
        except DetectorModelMissing as exc:
            if run.stop_event.is_set():
                return state
            raise load_error(run.detector_path, exc) from None
        run.worker_notice("hazards", True, frame=frame.index)
