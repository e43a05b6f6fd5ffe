"""FLOP accounting and the machine's measured matmul peak (for "fraction of peak" figures)."""

from __future__ import annotations

import time

import torch


def linear_macs(model: torch.nn.Module) -> int:
    """Multiply-accumulates of one forward pass per example through the model's Linear layers.

    VIB's decoder is counted once; it is tiny (K x 10) next to the encoder.
    """
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def train_flops_per_example(model: torch.nn.Module) -> float:
    """Nominal training FLOPs per example: forward (2 x MACs) + backward (4 x MACs) = 6 x MACs."""
    return 6.0 * linear_macs(model)


_PEAK: dict = {}


def matmul_peak_gflops(device: torch.device | str = "cpu", n: int = 2048, seconds: float = 1.0) -> float:
    """Best fp32 GFLOP/s of a square n x n matmul on this device, measured now (cached per process)."""
    device = torch.device(device)
    key = (str(device), n, torch.get_num_threads())
    if key in _PEAK:
        return _PEAK[key]
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        sync()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    _PEAK[key] = best
    return best
