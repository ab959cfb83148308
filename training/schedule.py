"""The learning-rate schedule shared by pretraining and finetuning.

Example:
    >>> warmup_then_decay(0, peak=1e-3, warmup_steps=10, total_steps=100)
    0.0001
    >>> warmup_then_decay(100, peak=1e-3, warmup_steps=10, total_steps=100)
    0.0
"""

from __future__ import annotations

import math


def warmup_then_decay(
    step: int, peak: float, warmup_steps: int, total_steps: int, schedule: str = "linear"
) -> float:
    """Linear warm-up to ``peak``, then linear (or cosine, one-cycle) decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    remaining = max(0, total_steps - step) / max(1, total_steps - warmup_steps)
    if schedule == "cosine":
        return peak * 0.5 * (1 - math.cos(math.pi * remaining))
    if schedule != "linear":
        raise ValueError(f"unknown schedule {schedule!r}; use 'linear' or 'cosine'")
    return peak * remaining
