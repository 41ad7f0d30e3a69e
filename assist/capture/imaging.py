"""Image normalisation and image-file decoding.

Every stage after capture relies on one image format: 8-bit BGR, HxWx3,
C-contiguous, no larger than ``camera.max_side_px`` on its long side. Cameras,
video decoders and image files deliver many other things (grayscale, BGRA,
16-bit PNG, float arrays from tests, odd sizes, 8K photos), so everything goes
through :func:`normalize_image` once, in the capture thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from assist.capture.errors import SourceError

log = logging.getLogger(__name__)

# Extensions we treat as images in a folder. OpenCV can decode more (or fewer,
# depending on its build); decoding failures are reported per file anyway.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp",
                    ".pgm", ".ppm", ".pbm", ".pnm", ".pfm", ".jp2", ".sr", ".ras", ".hdr", ".exr", ".avif")

# ANYCOLOR|ANYDEPTH keeps 16-bit and grayscale data for us to convert with the
# right scaling, and (unlike IMREAD_UNCHANGED) still applies EXIF orientation so
# phone photos are upright. The alpha channel is dropped by the decoder, which is
# what normalize_image would do anyway.
_IMREAD_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Scale any numeric dtype to uint8 (0..255)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if img.dtype == np.uint16:
        # 65535 -> 255: a right shift keeps the full range of 16-bit PNGs and
        # 16-bit camera modes; it is exact and cheaper than a float division.
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.integer):
        # Signed or 32-bit data has no agreed white level: clip to 0..255,
        # which is right for the common "uint8 values in a wider int" case.
        return np.clip(img, 0, 255).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        # NaN is no light; +inf is saturated (clipped to 255 below).
        f = np.nan_to_num(img, nan=0.0, posinf=1e30, neginf=0.0)
        # Float images are 0..1 by convention (OpenCV, skimage); a float array
        # holding 0..255 values is also common, so decide by the data's range.
        scale = 255.0 if f.size and float(f.max()) <= 1.0 else 1.0
        return np.clip(np.clip(f, 0.0, 1e4) * scale + 0.5, 0, 255).astype(np.uint8)
    raise TypeError(f"unsupported image dtype {img.dtype}")


def normalize_image(img: np.ndarray | None, max_side_px: int) -> np.ndarray | None:
    """Return ``img`` as 8-bit BGR, HxWx3, C-contiguous, long side <= ``max_side_px``.

    Accepts grayscale (HxW or HxWx1), gray+alpha, BGR, BGRA, 16-bit, float
    (0..1 or 0..255) and other integer images. Frames larger than
    ``max_side_px`` are downscaled with INTER_AREA (the least aliasing for
    shrinking). Returns None for None, zero-size or unusable arrays (wrong
    number of dimensions, unknown dtype): such a frame is a failed read, never a
    placeholder.
    """
    if img is None or not isinstance(img, np.ndarray) or img.size == 0:
        return None
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        log.debug("unusable frame shape %s", img.shape)
        return None
    try:
        img = _to_uint8(img)
    except TypeError as exc:
        log.debug("unusable frame: %s", exc)
        return None
    if img.ndim == 2:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_GRAY2BGR)
    else:
        channels = img.shape[2]
        if channels == 2:  # gray + alpha
            img = cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2BGR)
        elif channels == 4:
            # Alpha is dropped, not composited: a camera frame's alpha is
            # meaningless, and for transparent PNGs the colour under alpha is
            # what the picture was drawn with.
            img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGRA2BGR)
        elif channels > 4:
            img = img[:, :, :3]
    h, w = img.shape[:2]
    longest = max(h, w)
    if longest > max_side_px:
        scale = max_side_px / longest
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def decode_image_file(path: str | Path) -> np.ndarray:
    """Decode an image file as it is stored (may be 16-bit or grayscale).

    Raises :class:`assist.capture.errors.SourceError` with a one-line message for a
    missing file, a folder, an unreadable file or data OpenCV cannot decode.
    Reading the bytes ourselves (instead of ``cv2.imread``) also works with
    non-ASCII paths on Windows.
    """
    p = Path(path)
    if not p.exists():
        raise SourceError(f"image not found: {p} (check the path)")
    if p.is_dir():
        raise SourceError(f"{p} is a folder, not an image (use --images DIR for a folder of images)")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as exc:
        raise SourceError(f"cannot read image {p}: {exc.strerror or exc} (check its permissions)") from None
    if data.size == 0:
        raise SourceError(f"image {p} is an empty file (0 bytes); use a JPEG or PNG image")
    try:
        img = cv2.imdecode(data, _IMREAD_FLAGS)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise SourceError(f"cannot decode image {p}: corrupt or unsupported format "
                          "(use JPEG, PNG, BMP, TIFF or WebP)")
    return img


def read_image(path: str | Path, max_side_px: int = 8192) -> np.ndarray:
    """Read an image file as 8-bit BGR (HxWx3), downscaled to ``max_side_px``.

    Raises :class:`assist.capture.errors.SourceError` (one-line message) when the file
    is missing, unreadable, corrupt or of an unsupported format.
    """
    img = normalize_image(decode_image_file(path), max_side_px)
    if img is None:  # decoded but unusable, e.g. an odd channel layout
        raise SourceError(f"cannot use image {path}: unsupported pixel format (use an 8-bit JPEG or PNG)")
    return img
