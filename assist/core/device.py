"""Where a model runs: the one device choice for the detector, the captioner,
its fast decoding paths and training (``auto`` | ``cpu`` | ``cuda``)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _cuda_driver_present() -> bool:
    """True when the CUDA driver library loads. PyTorch needs it for any CUDA device, so False here means
    False for torch too, found without importing torch (~700 MB). No cuInit: initialising CUDA in this
    process would break CUDA in forked children; torch decides when the driver is there."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def cuda_available() -> bool:
    """True when PyTorch sees a CUDA device (False when torch is missing or broken). Without a CUDA
    driver the answer is False without importing torch (the warm CPU captioner never loads it)."""
    import sys

    if "torch" not in sys.modules and not _cuda_driver_present():
        return False
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
