"""Describe: decide when the view is worth describing and say what is in it.

``scene_gate`` (``SceneGate``) scores every frame cheaply (change, stillness,
darkness, blur) and fires once per new, settled view; ``captioner`` finds and
loads the image-captioning model; ``fast/`` holds the fast decoding backends
behind one interface; ``caption_text`` cleans a raw caption and grounds it
against the detections; ``from_detections`` builds a sentence from detections
when there is no model; ``engine`` (``CaptionEngine``) is what the caption worker owns:
captioner + clean-up + grounding + that fallback. ``errors`` holds the stage's
errors.

The run's wiring holds the two stages by the protocols below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from assist.core.detection import Detection
from assist.core.frames import Frame

if TYPE_CHECKING:  # type names only
    from assist.describe.engine import CaptionResult
    from assist.describe.from_detections import WarnedObject
    from assist.describe.scene_gate import GateDecision


class SceneGating(Protocol):
    """Scores each frame; says when a frame should be described."""

    def update(self, frame: Frame) -> GateDecision:
        """Score one frame (called for every frame, in order, on the capture thread); when it
        fires, ``decision.frame`` (if set) is the frame to describe instead of this one."""
        ...


class Describer(Protocol):
    """Describes one frame (owned by the caption worker's thread)."""

    @property
    def mode(self) -> str:
        """'captioner' when a model is loaded, else 'detections'."""
        ...

    def describe(self, image_bgr: np.ndarray, detections: Sequence[Detection] | None, *,
                 recently_warned: Sequence[WarnedObject] = (), now: float = 0.0) -> CaptionResult:
        """One description; ``detections=None`` means no detector information;
        ``recently_warned`` (warned shortly before ``now``) are not named again."""
        ...


__all__ = ["Describer", "SceneGating"]
