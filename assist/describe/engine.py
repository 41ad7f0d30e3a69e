"""The caption engine the caption thread owns: captioner + clean-up +
grounding against the detections, with the description from detections as the
fallback when there is no model or it fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assist.config import CaptionConfig, HazardConfig
from assist.core.detection import Detection
from assist.core.events import EventLog
from assist.describe.caption_text import (
    clean_caption,
    ground_caption,
)
from assist.describe.captioner import Captioner, load_captioner
from assist.describe.errors import CaptionModelMissing
from assist.describe.from_detections import WarnedObject, describe_detections, drop_recently_warned
from assist.hazards.geometry import warned_labels

log = logging.getLogger(__name__)


@dataclass
class CaptionResult:
    """One description: the spoken ``text``, where it came from, and the raw model output."""

    text: str
    source: str  # "captioner" | "detections"
    raw: str | None = None


class CaptionEngine:
    """Captioner + clean-up + grounding, with the fallback from detections.

    Created in, and used only by, the owning caption thread. ``mode`` is
    "captioner" when a model is loaded, "detections" otherwise.
    """

    def __init__(self, cfg: CaptionConfig, events: EventLog | None, captioner: Captioner | None,
                 language: str = "en", hazards: HazardConfig | None = None) -> None:
        self.cfg = cfg
        self.events = events
        self.captioner = captioner
        self.language = language
        hz = hazards if hazards is not None else HazardConfig()
        self.ahead_width = hz.ahead_width
        self.near_height = hz.near_height
        self.hazard_labels = warned_labels(hz)
        self.failures = 0

    @classmethod
    def create(cls, cfg: CaptionConfig, events: EventLog | None, *, language: str = "en",
               hazards: HazardConfig | None = None, captioner: Captioner | None = None) -> CaptionEngine:
        """Load the captioner if it resolves; otherwise emit ``status``/``model_missing``,
        log how to get the weights, and describe from detections."""
        if captioner is None:
            try:
                captioner = load_captioner(cfg)
            except CaptionModelMissing as exc:
                # One short console line (the status event's ``brief``); the
                # full how-to-get-it text is in the log, and on stderr with -v.
                log.log(logging.INFO if events is not None else logging.WARNING,
                        "%s; describing scenes from detected objects until then", exc)
                if events is not None:
                    events.status("model_missing", text=f"{exc}; describing scenes from detected objects",
                                  model="captioner", brief=f"no captioner ({cfg.model}): describing scenes from "
                                  "detected objects (how to get it: the log, or -v; models/README.md)")
                captioner = None
            else:
                log.info("captioner loaded from %s (%s, %s, backend %s)", captioner.path, captioner.device,
                         str(captioner.dtype).replace("torch.", ""), captioner.backend)
        return cls(cfg, events, captioner, language, hazards)

    @property
    def mode(self) -> str:
        """'captioner' when a model is loaded, else 'detections'."""
        return "captioner" if self.captioner is not None else "detections"

    def describe(self, image_bgr: np.ndarray, detections: Sequence[Detection] | None, *,
                 recently_warned: Sequence[WarnedObject] = (), now: float = 0.0) -> CaptionResult:
        """Describe one frame.

        Captioner path: raw caption -> :func:`clean_caption` -> (caption.grounding)
        :func:`ground_caption` against ``detections``. When there is no model,
        the model call raises, or its caption is empty after clean-up, the
        description is made from ``detections`` (source "detections").
        ``detections=None`` means "no detector information": no grounding.
        ``recently_warned``: objects the user was warned about shortly before
        ``now`` (same clock); they are not named again (grounding does not
        append them, the description from detections leaves them out).
        """
        dets = list(detections) if detections is not None else None
        if self.captioner is not None:
            from assist.serve.client import RemoteModelUnavailable

            try:
                raw = self.captioner.caption(image_bgr)
            except RemoteModelUnavailable:
                raise  # a lost server is an outage: the caption worker says so and reconnects
            except Exception as exc:  # noqa: BLE001 - a failing model must not silence descriptions
                self.failures += 1
                if self.failures == 1 or self.failures % 50 == 0:
                    log.warning("captioner failed (%d so far): %s; describing from detections", self.failures, exc,
                                exc_info=self.failures == 1)
            else:
                text = clean_caption(raw)
                if text:
                    if self.cfg.grounding and dets is not None:
                        # Hedging checks every detection; only the "close ahead"
                        # additions skip what was just warned about.
                        fresh = drop_recently_warned(dets, recently_warned, now=now, ahead_width=self.ahead_width)
                        text = ground_caption(text, dets, ahead_width=self.ahead_width,
                                              near_height=self.near_height, hazard_labels=self.hazard_labels,
                                              add_from=fresh)
                    return CaptionResult(text=text, source="captioner", raw=raw)
                log.debug("captioner output %r is empty after clean-up; describing from detections", raw)
        return CaptionResult(text=describe_detections(dets or [], self.language, ahead_width=self.ahead_width,
                                                      recently_warned=recently_warned, now=now),
                             source="detections", raw=None)
