"""Choose bf16 autocast only where it is fast: CUDA, or a CPU with native bf16 matmuls (AMX).

On CPUs without bf16 units (e.g. AVX2-only AMD EPYC) bf16 matmuls are emulated and run ~100x
slower than fp32, so ``precision="auto"`` measures a small matmul both ways once and decides.

Example:
    >>> use_bf16("fp32", torch.device("cpu")), use_bf16("bf16", torch.device("cpu"))
    (False, True)
    >>> auto = use_bf16("auto", torch.device("cpu"))   # False on an AVX2-only CPU, True with AMX
"""

from __future__ import annotations

import contextlib
import functools
import time

import torch

PRECISIONS = ("auto", "bf16", "fp32")


@functools.cache
def _cpu_bf16_is_faster(size: int = 512, repeats: int = 3) -> bool:
    a = torch.randn(
        size, size, generator=torch.Generator().manual_seed(0)
    )  # leaves the global RNG alone
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = a.to(dtype)
        x @ x  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            x @ x
        timings[dtype] = time.perf_counter() - start
    return timings[torch.bfloat16] < timings[torch.float32]


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to run under bf16 autocast for ``precision`` ('auto' | 'bf16' | 'fp32')."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_bf16_is_faster()


def autocast(enabled: bool, device: torch.device):
    """bf16 autocast on ``device`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
