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
    describe_detections,
    ground_caption,
)
from assist.describe.captioner import Captioner, load_captioner
from assist.describe.errors import CaptionModelMissing
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
                log.warning("%s; describing scenes from detected objects until then", exc)
                if events is not None:
                    events.status("model_missing", text=f"{exc}; describing scenes from detected objects",
                                  model="captioner")
                captioner = None
            else:
                log.info("captioner loaded from %s (%s, %s, backend %s)", captioner.path, captioner.device,
                         str(captioner.dtype).replace("torch.", ""), captioner.backend)
        return cls(cfg, events, captioner, language, hazards)

    @property
    def mode(self) -> str:
        """'captioner' when a model is loaded, else 'detections'."""
        return "captioner" if self.captioner is not None else "detections"

    def describe(self, image_bgr: np.ndarray, detections: Sequence[Detection] | None) -> CaptionResult:
        """Describe one frame.

        Captioner path: raw caption -> :func:`clean_caption` -> (caption.grounding)
        :func:`ground_caption` against ``detections``. When there is no model,
        the model call raises, or its caption is empty after clean-up, the
        description is made from ``detections`` (source "detections").
        ``detections=None`` means "no detector information": no grounding.
        """
        dets = list(detections) if detections is not None else None
        if self.captioner is not None:
            try:
                raw = self.captioner.caption(image_bgr)
            except Exception as exc:  # noqa: BLE001 - a failing model must not silence descriptions
                self.failures += 1
                if self.failures == 1 or self.failures % 50 == 0:
                    log.warning("captioner failed (%d so far): %s; describing from detections", self.failures, exc,
                                exc_info=self.failures == 1)
            else:
                text = clean_caption(raw)
                if text:
                    if self.cfg.grounding and dets is not None:
                        text = ground_caption(text, dets, ahead_width=self.ahead_width,
                                              near_height=self.near_height, hazard_labels=self.hazard_labels)
                    return CaptionResult(text=text, source="captioner", raw=raw)
                log.debug("captioner output %r is empty after clean-up; describing from detections", raw)
        return CaptionResult(text=describe_detections(dets or [], self.language, ahead_width=self.ahead_width),
                             source="detections", raw=None)
