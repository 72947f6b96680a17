"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

__all__ = ["cpu_name", "cpu_yardstick_s"]


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_yardstick_s(repeats: int = 3) -> float:
    """Seconds (best of ``repeats``) of one fixed float32 CPU workload with torch's current thread count: a 3x3
    convolution of 32 channels on a ``(4, 32, 128, 128)`` batch, forward and backward (about 4 GFLOP). A yardstick to
    compare the speed of the machines that timed runs were made on (lower is faster), not a benchmark of anything.

    Raises:
        ValueError: ``repeats`` below 1.
    """
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}.")
    gen = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(32, 32, 3, padding=1)
    x = torch.rand(4, 32, 128, 128, generator=gen)
    best = float("inf")
    for call in range(int(repeats) + 1):  # call 0 warms up (allocations, kernel choice) and is not counted
        start = time.perf_counter()
        conv(x).square().mean().backward()
        if call:
            best = min(best, time.perf_counter() - start)
        conv.zero_grad()
    return best
