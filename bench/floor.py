"""The machine's matmul rate and memory bandwidth, and from them a lower bound for one caption.

Greedy decoding on a CPU reads every decoder weight once per token, so a token cannot take less
than (weight bytes per token) / (memory bandwidth); the encoder cannot take less than its FLOPs
over the matmul rate. The bound ignores attention, layer norms and Python, so real runs sit above it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

ENCODER_GFLOP = 33.7          # ViT-B/16 at 224 px, one image (issue 8)
DECODER_FP32_BYTES = 550.75e6  # GPT-2 + cross-attention projections + 50257x768 head, per token (fp32)
DECODER_INT8_BYTES = 137.69e6  # the same in int8 (measured from the fast path's weights)


def _best(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_gflops(threads: int = 2, reps: int = 5) -> float:
    """fp32 GEMM rate on encoder-like shapes (197 tokens x 768 -> 3072), GFLOP/s, best of reps."""
    torch.set_num_threads(threads)
    a = torch.randn(197 * 4, 768)
    b = torch.randn(768, 3072)
    torch.mm(a, b)
    dt = _best(lambda: torch.mm(a, b), reps)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / dt / 1e9


def bandwidth_gbs(threads: int = 2, mb: int = 256, reps: int = 5) -> dict[str, float]:
    """Read bandwidth, GB/s: numpy sum over a large array, and a torch fp32 GEMV over the GPT-2 head."""
    torch.set_num_threads(threads)
    arr = np.ones(mb * 2**20 // 8)
    np_bw = arr.nbytes / _best(lambda: arr.sum(), reps) / 1e9
    w = torch.randn(50257, 768)
    h = torch.randn(1, 768)
    gemv_bw = w.numel() * 4 / _best(lambda: torch.nn.functional.linear(h, w), reps) / 1e9
    return {"numpy_sum": np_bw, "torch_gemv": gemv_bw}


def run(quick: bool = False, threads: int = 2, tokens: int = 16) -> dict[str, float]:
    """Measured rates and the caption floor (fp32 weights and int8 weights), in ms."""
    reps = 3 if quick else 7
    gf = matmul_gflops(threads, reps)
    bws = bandwidth_gbs(threads, reps=reps)
    bw = max(bws.values())
    enc_ms = ENCODER_GFLOP / gf * 1e3
    return {
        "matmul_gflops": round(gf, 1),
        "bandwidth_gbs": round(bw, 1),
        "bandwidth_numpy_gbs": round(bws["numpy_sum"], 1),
        "bandwidth_gemv_gbs": round(bws["torch_gemv"], 1),
        "caption_floor_ms": round(enc_ms + DECODER_FP32_BYTES / (bw * 1e9) * tokens * 1e3, 1),
        "caption_floor_int8_weights_ms": round(enc_ms + DECODER_INT8_BYTES / (bw * 1e9) * tokens * 1e3, 1),
        "encoder_floor_ms": round(enc_ms, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
