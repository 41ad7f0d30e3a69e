"""ViT image preprocessing equal to transformers' ``ViTImageProcessor`` without importing it.

Why not the real one: importing it pulls torchvision, scipy and sympy into the process, about
215 MB of resident memory for an agent that must stay under 1.2 GB with both models loaded
(bench/RESULTS.md). The arithmetic is small: transformers 5 resizes uint8 tensors with
torchvision, i.e. ``torch.nn.functional.interpolate(..., antialias=True)`` on uint8, which is
called here directly (equal to 1e-7), then rescale, normalize. ``tests/test_fast_caption.py``
checks it against the real processor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

IMAGENET_STANDARD = (0.5, 0.5, 0.5)
_MODES = {2: "bilinear", 3: "bicubic"}  # PIL resample codes -> torch modes (what torchvision maps them to)


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
        import torch

        img = np.ascontiguousarray(rgb.transpose(2, 0, 1))
        if self.do_resize and img.shape[1:] != self.size:
            mode = _MODES.get(self.resample)
            if mode is None:
                raise ValueError(f"unsupported resample filter {self.resample}")
            with torch.inference_mode():
                img = torch.nn.functional.interpolate(torch.from_numpy(img)[None], size=self.size, mode=mode,
                                                      antialias=True, align_corners=False)[0].numpy()
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
