"""Drawing tracks and the last caption on frames, and writing them to a video file.

Used by the preview window and ``--save-video``. Boxes are coloured by hazard
tier (high red, medium orange, low yellow, other classes grey) and labelled
with class and track id; the last caption sits in a dark band at the bottom.
OpenCV's Hershey fonts only draw ASCII, so accents are stripped from captions
(translated captions stay readable; the spoken text is unaffected).
"""

from __future__ import annotations

import logging
import textwrap
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

# BGR colours per tier.
TIER_COLOURS: dict[str | None, tuple[int, int, int]] = {
    "high": (0, 0, 255),
    "medium": (0, 140, 255),
    "low": (0, 215, 255),
    None: (170, 170, 170),
}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def draw_overlay(image_bgr: np.ndarray, tracks: Iterable[Any], caption: str | None) -> np.ndarray:
    """A copy of the frame with one box per track and the caption at the bottom.

    ``tracks`` are objects with ``bbox`` (0..1), ``label`` and optionally
    ``track_id``, ``tier``, ``proximity``, ``approaching`` (TrackView, Track or
    Detection all fit).
    """
    img = image_bgr.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 720.0)  # text and lines readable from 240p to 4K
    thick = max(2, round(3 * scale))  # 2 px at least: thinner lines vanish in mp4v compression
    font = cv2.FONT_HERSHEY_SIMPLEX
    for tr in tracks:
        x1, y1, x2, y2 = (float(v) for v in tr.bbox)
        p1 = (int(round(x1 * (w - 1))), int(round(y1 * (h - 1))))
        p2 = (int(round(x2 * (w - 1))), int(round(y2 * (h - 1))))
        colour = TIER_COLOURS.get(getattr(tr, "tier", None), TIER_COLOURS[None])
        cv2.rectangle(img, p1, p2, colour, thick)
        tid = getattr(tr, "track_id", None)
        text = f"{tr.label} #{tid}" if tid is not None else str(tr.label)
        if getattr(tr, "proximity", "far") in ("near", "very near"):
            text += f" {tr.proximity}"
        if getattr(tr, "approaching", False):
            text += " >>"
        (tw, th), base = cv2.getTextSize(text, font, 0.5 * scale, max(1, thick // 2))
        ty = p1[1] - 4 if p1[1] - th - base - 4 >= 0 else min(h - 1, p1[1] + th + 4)
        cv2.rectangle(img, (p1[0], ty - th - 2), (p1[0] + tw + 4, ty + base), colour, -1)
        cv2.putText(img, text, (p1[0] + 2, ty), font, 0.5 * scale, (0, 0, 0), max(1, thick // 2), cv2.LINE_AA)
    if caption:
        fs = 0.6 * scale
        (cw, ch), cbase = cv2.getTextSize("M", font, fs, max(1, thick // 2))
        chars = max(10, int((w - 16) / max(1, cw)))
        lines = textwrap.wrap(_ascii(caption), chars)[:3]
        band = (ch + cbase + 6) * len(lines) + 8
        overlay = img.copy()
        cv2.rectangle(overlay, (0, h - band), (w, h), (0, 0, 0), -1)
        img = cv2.addWeighted(overlay, 0.6, img, 0.4, 0)
        y = h - band + ch + 6
        for line in lines:
            cv2.putText(img, line, (8, y), font, fs, (255, 255, 255), max(1, thick // 2), cv2.LINE_AA)
            y += ch + cbase + 6
    return img


class VideoSink:
    """Writes annotated frames to a video file (mp4v), resizing frames that differ from ``size``.

    ``size`` is (width, height). Raises OSError with a clear message when the
    file cannot be created.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.frames = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"{self.path}: cannot create its folder ({exc.strerror or exc})") from None
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self._writer: cv2.VideoWriter | None = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
        if not self._writer.isOpened():
            self._writer = None
            raise OSError(f"{self.path}: cannot write video (check the folder exists and is writable, "
                          f"and use a .mp4 name)")

    def write(self, img: np.ndarray) -> None:
        """Append one BGR frame."""
        if self._writer is None:
            raise ValueError(f"{self.path}: video already closed")
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(img))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            log.info("wrote %d frames to %s", self.frames, self.path)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
