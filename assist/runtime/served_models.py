"""The run's side of served models (issue 18): a captioner URL must answer at start,
and with ``--every-frame`` a lost detector server is waited for instead of ending the run.

Imported lazily by the pipeline (it imports the pipeline lazily too: no module-level cycle).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assist.config import Config
    from assist.events import EventLog
    from assist.frames import Frame
    from assist.pipeline import Agent

log = logging.getLogger(__name__)


def check_served_captioner(cfg: Config, events: EventLog) -> None:
    """A captioner named by URL must answer now: a wrong URL is an error (exit 4), not a silent fallback."""
    from assist.captioner import ENV_VAR
    from assist.serve import is_remote

    ref = os.environ.get(ENV_VAR, "").strip() or cfg.caption.model.strip()
    if not cfg.caption.enabled or not is_remote(ref):
        return
    from assist import exitcodes
    from assist.cli import CliError
    from assist.serve.client import RemoteModelUnavailable, probe

    try:
        probe(ref)
    except RemoteModelUnavailable as exc:
        events.status("model_missing", text=str(exc), model="captioner")
        raise CliError(str(exc), exitcodes.MODEL) from None


def hazards_waiting_for_server(agent: Agent, state: tuple[Any, Any], frame: Frame) -> tuple[Any, Any]:
    """Every-frame with a served detector: when its server is lost, say so, wait for it (back-off, stoppable),
    say it is back and retry the same frame with the same tracks, so no frame is skipped and the warnings
    are those of an uninterrupted run. Returns the (possibly reconnected) hazard state."""
    from assist.detector import DetectorModelMissing, YoloDetector
    from assist.pipeline import detector_load_error
    from assist.serve.client import RemoteModelUnavailable

    while True:
        try:
            agent.process_hazards(state, frame)
            return state
        except RemoteModelUnavailable as exc:
            log.warning("%s", exc)
            agent.notice("hazards_unavailable", event="worker_fault", frame=frame.index)
        try:
            state = (YoloDetector(agent.detector_path or "", agent.cfg.hazards, stop=agent.stop_event), state[1])
        except DetectorModelMissing as exc:
            if agent.stop_event.is_set():
                return state
            raise detector_load_error(agent.detector_path, exc) from None
        agent.events.status("worker_recovered", worker="hazards", frame=frame.index)
        agent.notice("hazards_back", frame=frame.index)
