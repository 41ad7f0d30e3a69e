"""ViT image preprocessing equal to transformers' ``ViTImageProcessor`` without importing it.

Why not the real one: importing it pulls torchvision, scipy and sympy into the process, about
215 MB of resident memory for an agent that must stay under 1.2 GB with both models loaded
(bench/RESULTS.md). The arithmetic is small: transformers 5 resizes uint8 tensors with
torchvision, i.e. ``torch.nn.functional.interpolate(..., antialias=True)`` on uint8, then rescale,
normalize. That uint8 resize is PyTorch's AVX2 kernel (ported from Pillow-SIMD): int16 fixed-point
weights, a horizontal then a vertical pass through uint8. It is re-done here in NumPy with the same
integer arithmetic (:func:`resize_uint8_aa`), so the warm captioner runs without importing torch
(-700 MB resident) and its pixels are bit-equal to torch's (``tests/test_fast_caption.py`` checks
both against the real processor and torch). Pillow's own resize differs by 1 in up to 14 % of pixels.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

IMAGENET_STANDARD = (0.5, 0.5, 0.5)
_MODES = {2: "bilinear", 3: "bicubic"}  # PIL resample codes -> torch modes (what torchvision maps them to)


def _aa_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(first input index [out], int16 weights [out, K], precision bits) of PyTorch's antialiased bilinear
    uint8 resize along one axis (``_compute_index_ranges_int16_weights``, align_corners False, no scale
    given), computed in float64 as there."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0  # (interp_size 2 * 0.5) * scale, or 1 when upsampling
    kmax = int(np.ceil(support)) * 2 + 1
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    xmins = np.zeros(out_size, np.int64)
    w = np.zeros((out_size, kmax), np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)  # C++ static_cast truncates toward zero, as int() does
        xsize = min(max(min(int(center + support + 0.5), in_size) - xmin, 0), kmax)
        for j in range(xsize):
            x = abs((j + xmin - center + 0.5) * invscale)
            w[i, j] = 1.0 - x if x < 1.0 else 0.0
        total = 0.0
        for j in range(xsize):  # summed in order, as the C++ loop does
            total += w[i, j]
        if total != 0.0:
            w[i, :xsize] /= total
        xmins[i] = xmin
    w_max = float(w.max())
    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    v = w * (1 << precision)
    wi = np.where(v < 0, np.trunc(-0.5 + v), np.trunc(0.5 + v)).astype(np.int64)
    return xmins, wi, precision


@functools.lru_cache(maxsize=16)
def _aa_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(input index [K, out], int32 weight [K, out], precision) per tap, taps that are zero everywhere left
    out (cached: a camera's frames keep their size)."""
    xmins, wi, prec = _aa_weights(in_size, out_size)
    idx = np.minimum(xmins[:, None] + np.arange(wi.shape[1]), in_size - 1)  # weights past xsize are 0
    keep = np.flatnonzero(wi.any(axis=0))
    return np.ascontiguousarray(idx[:, keep].T), np.ascontiguousarray(wi[:, keep].T.astype(np.int32)), prec


def _aa_rows(rows: np.ndarray, out_size: int) -> np.ndarray:
    """Resize every row of a uint8 [R, W] array to ``out_size``: ``(half + sum(pixel * w16)) >> bits``,
    clamped to 0..255, in int32 (the largest sum, 255 x 2^22, fits). One gather-multiply-add per tap, on
    this thread: a dense float BLAS product measured 8-24 ms and would use BLAS's own threads, where the
    detector needs the other core. 640x480 -> 224x224: 7.3 ms (torch's AVX2 kernel 0.7 ms; a caption
    ~290 ms, so +2.5 %)."""
    idx, wi, prec = _aa_taps(rows.shape[1], out_size)
    acc = np.full((rows.shape[0], out_size), 1 << (prec - 1), np.int32)
    for k in range(idx.shape[0]):
        acc += rows[:, idx[k]] * wi[k]
    acc >>= prec
    return np.clip(acc, 0, 255).astype(np.uint8)


def resize_uint8_aa(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [C, H, W] -> uint8 [C, h, w]: ``torch.nn.functional.interpolate(mode="bilinear",
    antialias=True, align_corners=False)`` on uint8 (PyTorch's AVX2 kernel), bit for bit, in NumPy:
    the horizontal pass first into uint8, then the vertical one, each ``(sum(pixel * w16) + half) >> bits``
    clamped to 0..255. Integer sums are exact, so the order of the additions cannot matter."""
    out = img
    c, h, w = out.shape
    if w != size[1]:  # the horizontal pass first, into uint8, as torch does
        out = _aa_rows(out.reshape(c * h, w), size[1]).reshape(c, h, size[1])
    if h != size[0]:
        cols = np.ascontiguousarray(out.transpose(0, 2, 1)).reshape(-1, h)
        out = _aa_rows(cols, size[0]).reshape(c, out.shape[2], size[0]).transpose(0, 2, 1)
    return np.ascontiguousarray(out)


class ViTPreprocessor:
    """``preprocessor_config.json`` of a ViT captioner applied to RGB uint8 images."""

    def __init__(self, conf: dict[str, Any]) -> None:
        size = conf.get("size", {"height": 224, "width": 224})
        if isinstance(size, int):
            size = {"height": size, "width": size}
        if "shortest_edge" in size or "height" not in size:
            raise ValueError(f"unsupported ViT size setting {size!r}")
        self.size = (int(size["height"]), int(size["width"]))
        self.resample = int(conf.get("resample", 2))
        self.do_resize = bool(conf.get("do_resize", True))
        self.do_rescale = bool(conf.get("do_rescale", True))
        self.rescale_factor = float(conf.get("rescale_factor", 1 / 255))
        self.do_normalize = bool(conf.get("do_normalize", True))
        self.mean = np.array(conf.get("image_mean", IMAGENET_STANDARD), dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.array(conf.get("image_std", IMAGENET_STANDARD), dtype=np.float32).reshape(-1, 1, 1)

    @classmethod
    def from_folder(cls, folder: str | Path) -> ViTPreprocessor:
        """Read ``preprocessor_config.json``; ValueError when it is not a ViT-style processor."""
        conf = json.loads((Path(folder) / "preprocessor_config.json").read_text())
        kind = conf.get("image_processor_type") or conf.get("feature_extractor_type") or ""
        if kind not in ("ViTImageProcessor", "ViTFeatureExtractor", "ViTImageProcessorFast"):
            raise ValueError(f"image processor {kind!r} is not ViT")
        return cls(conf)

    def one(self, rgb: np.ndarray) -> np.ndarray:
        """[3, H, W] float32 for one RGB uint8 image."""
        img = np.ascontiguousarray(rgb.transpose(2, 0, 1))
        if self.do_resize and img.shape[1:] != self.size:
            mode = _MODES.get(self.resample)
            if mode == "bilinear":
                img = resize_uint8_aa(img, self.size)  # NumPy, no torch: bit-equal to torch's kernel
            elif mode is not None:
                import torch  # bicubic: torch's own kernel (not re-done in NumPy; ViT captioners use bilinear)

                with torch.inference_mode():
                    img = torch.nn.functional.interpolate(torch.from_numpy(img)[None], size=self.size, mode=mode,
                                                          antialias=True, align_corners=False)[0].numpy()
            else:
                raise ValueError(f"unsupported resample filter {self.resample}")
        x = img.astype(np.float32)
        if self.do_rescale:
            x = x * np.float32(self.rescale_factor)
        if self.do_normalize:
            x = (x - self.mean) / self.std
        return x

    def __call__(self, images: Sequence[np.ndarray], return_tensors: str = "np") -> SimpleNamespace:
        """Same call shape as a transformers image processor: ``.pixel_values`` [B, 3, H, W]."""
        batch = np.stack([self.one(im) for im in images])
        if return_tensors == "pt":
            import torch

            return SimpleNamespace(pixel_values=torch.from_numpy(batch))
        return SimpleNamespace(pixel_values=batch)
