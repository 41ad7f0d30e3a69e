"""Synthetic clips made from real photos, for testing the scene gate.

Every generator returns a :class:`Clip`: a list of 8-bit BGR frames, the frame
rate, and the frame ranges where the view rests on one scene, so tests can say
exactly which frames a correct gate fires on. Clips are deterministic (seeded).
They can also be written to a real video file (:func:`write_video`) and read
back with OpenCV (:func:`read_video`), so codec artefacts are exercised too.

Typical use::

    photos = [load_photo(p) for p in pick_photos(coco_dir, 3, offset=0)]
    clip = pan_tour(photos, still_s=4.0, pan_s=1.5)   # still, pan, still, pan, still
    frames = clip.as_frames()                          # assist.core.frames.Frame, t = index / fps
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from assist.core.frames import Frame

FPS = 10.0
SIZE = (320, 240)  # (width, height): small keeps tests fast; the gate downscales anyway


@dataclass
class Clip:
    """Frames plus what is known about them.

    ``scenes`` lists ``(start, end)`` frame ranges (end exclusive) during which
    the view rests on one scene; ``photos`` names the scene of each range.
    """

    frames: list[np.ndarray]
    fps: float = FPS
    scenes: list[tuple[int, int]] = field(default_factory=list)

    def as_frames(self, t0: float = 0.0, index0: int = 0) -> list[Frame]:
        """The clip as pipeline frames on its video-time clock (t = t0 + i / fps)."""
        return [Frame(index=index0 + i, t_capture=t0 + i / self.fps, image=img) for i, img in enumerate(self.frames)]

    def __len__(self) -> int:
        return len(self.frames)


def concat(*clips: Clip) -> Clip:
    """Join clips end to end (same fps), shifting their scene ranges."""
    frames: list[np.ndarray] = []
    scenes: list[tuple[int, int]] = []
    for c in clips:
        scenes += [(a + len(frames), b + len(frames)) for a, b in c.scenes]
        frames += c.frames
    return Clip(frames, clips[0].fps if clips else FPS, scenes)


# --------------------------------------------------------------------------- photos

def photo_paths(coco_dir: Path) -> list[Path]:
    """All COCO photos of the shared folder, in name order."""
    return sorted((Path(coco_dir) / "val2017").glob("*.jpg"))


def pick_photos(coco_dir: Path, n: int, offset: int = 0, stride: int = 7) -> list[Path]:
    """``n`` different photos spread over the folder (deterministic; ``offset`` picks another set)."""
    paths = photo_paths(coco_dir)
    if len(paths) < n:
        raise ValueError(f"need {n} photos in {coco_dir}/val2017, found {len(paths)}")
    return [paths[(offset + i * stride) % len(paths)] for i in range(n)]


def fit(image: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Scale to cover ``size`` (w, h) and centre-crop: no borders, no distortion."""
    w, h = size
    ih, iw = image.shape[:2]
    s = max(w / iw, h / ih)
    r = cv2.resize(image, (max(w, round(iw * s)), max(h, round(ih * s))), interpolation=cv2.INTER_AREA)
    y0, x0 = (r.shape[0] - h) // 2, (r.shape[1] - w) // 2
    return np.ascontiguousarray(r[y0:y0 + h, x0:x0 + w])


def load_photo(path: Path, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Read a photo as BGR, fitted to ``size``."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read photo {path}")
    return fit(img, size)


def person_cutout(coco_dir: Path, height_px: int) -> tuple[np.ndarray, np.ndarray]:
    """A real person from COCO (its segmentation mask), scaled to ``height_px``.

    Returns (BGR patch, float mask 0..1). Picks the tallest upright, uncrowded
    person whose box lies inside its photo, so the cut-out is a whole body.
    """
    data = json.loads((Path(coco_dir) / "annotations" / "instances_val2017.json").read_text())
    images = {im["id"]: im for im in data["images"]}
    best = None
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        im = images[a["image_id"]]
        if (a["category_id"] != 1 or a["iscrowd"] or not isinstance(a["segmentation"], list)
                or w > 0.6 * h or x < 1 or y < 1 or x + w > im["width"] - 1 or y + h > im["height"] - 1):
            continue
        if best is None or h > best[0]["bbox"][3]:
            best = (a, im)
    if best is None:
        raise ValueError(f"no whole upright person in {coco_dir}")
    a, im = best
    img = cv2.imread(str(Path(coco_dir) / "val2017" / im["file_name"]), cv2.IMREAD_COLOR)
    mask = np.zeros(img.shape[:2], np.uint8)
    for poly in a["segmentation"]:
        cv2.fillPoly(mask, [np.asarray(poly, np.float32).reshape(-1, 2).round().astype(np.int32)], 255)
    x, y, w, h = (round(v) for v in a["bbox"])
    patch, m = img[y:y + h, x:x + w], mask[y:y + h, x:x + w]
    s = height_px / h
    size = (max(1, round(w * s)), height_px)
    patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(m, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return patch, m


# --------------------------------------------------------------------------- generators

def still(photo: np.ndarray, seconds: float, fps: float = FPS) -> Clip:
    """One photo, unchanged, for ``seconds``."""
    n = round(seconds * fps)
    return Clip([photo] * n, fps, [(0, n)])


def pan_tour(photos: Sequence[np.ndarray], still_s: float = 4.0, pan_s: float = 1.5, fps: float = FPS) -> Clip:
    """Rest on each photo, then pan sideways (constant speed) to the next.

    The photos stand side by side like a panorama; the view rests on one for
    ``still_s`` and slides to the next in ``pan_s``. Each pan frame moves the
    view by the same step, and the first frame of the next scene is one more
    step, so the view moves up to and including each scene's first frame.
    """
    h, w = photos[0].shape[:2]
    pano = np.concatenate(list(photos), axis=1)
    n_still, n_pan = round(still_s * fps), round(pan_s * fps)
    frames: list[np.ndarray] = []
    scenes: list[tuple[int, int]] = []
    for k in range(len(photos)):
        scenes.append((len(frames), len(frames) + n_still))
        frames += [pano[:, k * w:(k + 1) * w]] * n_still
        if k + 1 < len(photos):
            for j in range(1, n_pan + 1):
                x = k * w + round(w * j / (n_pan + 1))
                frames.append(np.ascontiguousarray(pano[:, x:x + w]))
    return Clip(frames, fps, scenes)


def cuts(photos: Sequence[np.ndarray], still_s: float = 4.0, fps: float = FPS) -> Clip:
    """Hard cuts: each photo for ``still_s``, no transition."""
    return concat(*(still(p, still_s, fps) for p in photos))


def zoom(photo: np.ndarray, seconds: float, to: float = 2.0, fps: float = FPS) -> Clip:
    """Zoom into the centre of ``photo`` from 1x to ``to``x (walking towards it); no scene range."""
    h, w = photo.shape[:2]
    n = round(seconds * fps)
    frames = []
    for i in range(n):
        z = 1.0 + (to - 1.0) * (i + 1) / n
        cw, ch = w / z, h / z
        m = np.float32([[z, 0, -(w - cw) / 2 * z], [0, z, -(h - ch) / 2 * z]])
        frames.append(cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR))
    return Clip(frames, fps, [])


def brightness_steps(photo: np.ndarray, seconds: float, factors: Sequence[float] = (1.0, 1.3, 0.7, 1.0, 0.7, 1.3),
                     fps: float = FPS) -> Clip:
    """Auto-exposure jumps: the same view with its brightness multiplied by each factor in turn."""
    n = round(seconds * fps)
    per = max(1, n // len(factors))
    frames = [scale_brightness(photo, factors[min(i // per, len(factors) - 1)]) for i in range(n)]
    return Clip(frames, fps, [(0, n)])


def scale_brightness(photo: np.ndarray, factor: float) -> np.ndarray:
    """Multiply every pixel by ``factor`` (saturating, like a camera's exposure change)."""
    return cv2.convertScaleAbs(photo, alpha=factor)


def noisy(photo: np.ndarray, seconds: float, sigma: float = 8.0, fps: float = FPS, seed: int = 0) -> Clip:
    """Fresh Gaussian sensor noise (``sigma`` in 8-bit levels) on every frame."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fps)
    base = photo.astype(np.float32)
    frames = [np.clip(base + rng.normal(0, sigma, photo.shape), 0, 255).astype(np.uint8) for _ in range(n)]
    return Clip(frames, fps, [(0, n)])


def shaken(photo: np.ndarray, seconds: float, amplitude_px: float = 3.0, fps: float = FPS, seed: int = 0) -> Clip:
    """Hand shake: every frame shifted by a random sub-pixel offset of up to ``amplitude_px`` each way."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fps)
    h, w = photo.shape[:2]
    frames = []
    for _ in range(n):
        dx, dy = rng.uniform(-amplitude_px, amplitude_px, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return Clip(frames, fps, [(0, n)])


def person_walk(photo: np.ndarray, person: tuple[np.ndarray, np.ndarray], seconds: float,
                fps: float = FPS, wait_s: float = 1.0) -> Clip:
    """A person walks across an otherwise still view, left to right, after ``wait_s``.

    ``person`` is a (patch, mask) pair from :func:`person_cutout`; it enters and
    leaves the view entirely, bottom-aligned like someone on the same floor.
    """
    patch, mask = person
    h, w = photo.shape[:2]
    ph, pw = patch.shape[:2]
    n, n_wait = round(seconds * fps), round(wait_s * fps)
    n_walk = max(1, n - 2 * n_wait)
    frames = []
    for i in range(n):
        x = -pw + round((w + pw) * (i - n_wait) / n_walk) if n_wait <= i < n_wait + n_walk else None
        frames.append(paste(photo, patch, mask, x, h - ph) if x is not None else photo)
    return Clip(frames, fps, [(0, n)])


def paste(photo: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """``photo`` with ``patch`` blended in at (x, y) through ``mask``, clipped to the frame."""
    out = photo.copy()
    h, w = photo.shape[:2]
    ph, pw = patch.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
    if x1 <= x0 or y1 <= y0:
        return out
    p = patch[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
    out[y0:y1, x0:x1] = (p * m + out[y0:y1, x0:x1].astype(np.float32) * (1 - m)).astype(np.uint8)
    return out


def darkened(photo: np.ndarray, seconds: float, factor: float = 0.06, fps: float = FPS, seed: int = 0) -> Clip:
    """A view too dark to describe: scaled down to ``factor`` with a little sensor noise on top."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fps)
    base = photo.astype(np.float32) * factor
    frames = [np.clip(base + rng.normal(0, 2.0, photo.shape), 0, 255).astype(np.uint8) for _ in range(n)]
    return Clip(frames, fps, [(0, n)])


def defocused(photo: np.ndarray, seconds: float, sigma_px: float = 6.0, fps: float = FPS) -> Clip:
    """An out-of-focus view (Gaussian blur of ``sigma_px`` at the frame's size)."""
    n = round(seconds * fps)
    return Clip([cv2.GaussianBlur(photo, (0, 0), sigma_px)] * n, fps, [(0, n)])


# --------------------------------------------------------------------------- video files

def write_video(frames: Iterable[np.ndarray], path: Path, fps: float = FPS, fourcc: str = "mp4v") -> Path:
    """Encode frames into a real video file with OpenCV (default MPEG-4 part 2, ``mp4v``)."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video to {path}")
    try:
        for f in frames:
            writer.write(f)
    finally:
        writer.release()
    return Path(path)


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    """Decode every frame of a video file with OpenCV; returns (frames, fps)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or FPS
    frames = []
    try:
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
    finally:
        cap.release()
    return frames, fps
