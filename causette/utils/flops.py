"""Measured matrix-multiply peak, the denominator of MFU (model FLOPs utilization).

MFU = (FLOPs the model needs per token × tokens per second) / peak FLOP/s of the hardware.
Vendors' peak figures are rarely reached and unknown for most laptop CPUs, so we measure the
peak of the operation that dominates a Transformer — a large square matmul — on this machine,
in the precision training uses, right before training. On a shared or throttled machine this
makes MFU honest: both numbers come from the same minute.
"""

from __future__ import annotations

import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@torch.no_grad()
def matmul_peak(device: torch.device | str = "cpu", dtype: torch.dtype = torch.bfloat16, n: int = 2048, seconds: float = 0.5) -> float:
    """Best FLOP/s of an ``n × n`` by ``n × n`` matmul over about ``seconds`` of repeats."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up (kernel selection, AMX tile set-up)
    _sync(device)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        a @ b
        _sync(device)
        dt = time.perf_counter() - t
        best = max(best, 2 * n**3 / dt)
    return best
