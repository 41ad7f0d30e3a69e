"""The detection record shared by the detector, tracker, captioner and overlay."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    """One detected object. ``bbox`` is (x1, y1, x2, y2) normalised to 0..1,
    so every rule built on it is independent of the frame's resolution."""

    label: str
    confidence: float
    bbox: tuple[float, float, float, float]
    class_id: int = -1
    track_id: int | None = None

    @property
    def center_x(self) -> float:
        """Horizontal centre, 0 (left edge) .. 1 (right edge)."""
        return (self.bbox[0] + self.bbox[2]) / 2.0

    @property
    def height(self) -> float:
        """Box height as a fraction of the frame height."""
        return max(0.0, self.bbox[3] - self.bbox[1])

    @property
    def area(self) -> float:
        """Box area as a fraction of the frame area."""
        return max(0.0, self.bbox[2] - self.bbox[0]) * self.height
