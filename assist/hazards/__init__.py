"""Hazards: find objects in a frame, follow them over time and decide which
ones to warn about, when and how urgently.

``detector`` (``YoloDetector``: the YOLO weights, found by the resolution order
of ../shared/DESIGN.md) turns an image into
:class:`~assist.core.detection.Detection` records; ``tracker`` (``IouTracker``)
links them into tracks; ``geometry`` measures direction, clock position and
distance in metres from a box and a class size prior (the one place those
bands live); ``world`` (``WorldModel``) keeps one record per tracked object
(distance, clock, time to contact, walking path, what the user was told),
updated by every detector run; ``policy``
(``HazardPolicy``) confirms each track's state over frames and produces the
:class:`~assist.hazards.policy.Announcement` records that become ``hazard``
events and spoken warnings. ``errors`` holds the stage's errors.

The run's wiring holds the two stages by the protocols below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from assist.core.detection import Detection

if TYPE_CHECKING:  # type names only: the policy module imports this package's neighbours
    from assist.hazards.policy import Announcement, TrackView
    from assist.hazards.world import WorldModel


class Detector(Protocol):
    """Finds objects in one BGR image (called from one thread only)."""

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """The objects in the image, boxes normalised to 0..1."""
        ...


class HazardAnalysis(Protocol):
    """Turns each detector run's detections into hazard announcements."""

    @property
    def tracks(self) -> Sequence[TrackView]:
        """The live tracks as the overlay and the captions see them."""
        ...

    @property
    def world(self) -> WorldModel:
        """The world model the announcer composes warnings from."""
        ...

    def update(self, detections: list[Detection], t_capture: float, frame_index: int,
               aspect: float = ...) -> list[Announcement]:
        """Update the tracks with one run's detections (``aspect``: the frame's
        width / height, for distances); the warnings to give now."""
        ...


__all__ = ["Detector", "HazardAnalysis"]
