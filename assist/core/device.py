"""Where a model runs: the one device choice for the detector, the captioner,
its fast decoding paths and training (``auto`` | ``cpu`` | ``cuda``)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def cuda_available() -> bool:
    """True when PyTorch sees a CUDA device (False when torch is missing or broken)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - torch broken or absent: the CPU is the safe answer
        return False


def pick_device(requested: str, setting: str, *, warn: bool = True) -> str:
    """'cuda' or 'cpu' for a ``requested`` device (auto = CUDA when available).

    A CUDA request on a machine without CUDA falls back to the CPU with one
    warning naming ``setting`` (the config key or flag that asked for it).
    """
    if requested == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if requested == "cuda" and warn:
        log.warning("%s = cuda but no CUDA device is available: using the CPU", setting)
    return "cpu"


__all__ = ["cuda_available", "pick_device"]
