"""The benchmark's GPU switch on a machine without CUDA: a one-line reason and exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the GPU run itself would start")
def test_caption_bench_device_cuda_without_cuda_exits_2() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "caption_bench.py"), "--device", "cuda"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""
