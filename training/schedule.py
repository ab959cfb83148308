"""The learning-rate schedules shared by pretraining and finetuning, and the batch ramp.

A step-counted schedule (``warmup_then_decay``) suits finetuning; pretraining with a token budget
follows the share of the budget seen (``budget_learning_rate``, ``ramped_accumulation``), so the
same recipe means the same run on a 4k and a 20k tokens/s machine.

Example:
    >>> warmup_then_decay(0, peak=1e-3, warmup_steps=10, total_steps=100)
    0.0001
    >>> warmup_then_decay(100, peak=1e-3, warmup_steps=10, total_steps=100)
    0.0
    >>> [round(triangle(p, peak=1.0), 3) for p in (0.0, 0.375, 0.75, 0.875, 1.0)]
    [0.25, 0.625, 1.0, 0.5, 0.0]
    >>> [ramped_accumulation(p, final=4, ramp=0.6) for p in (0.0, 0.2, 0.4, 0.6, 0.9)]
    [1, 2, 3, 4, 4]
"""

from __future__ import annotations

import math

SCHEDULES = ("linear", "cosine", "triangle")


def warmup_then_decay(
    step: int, peak: float, warmup_steps: int, total_steps: int, schedule: str = "linear"
) -> float:
    """Linear warm-up to ``peak``, then linear (or cosine, one-cycle) decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    remaining = max(0, total_steps - step) / max(1, total_steps - warmup_steps)
    return decayed(peak, remaining, schedule)


def decayed(peak: float, remaining: float, schedule: str) -> float:
    """``peak`` scaled down by the share of training ``remaining`` (1 = start, 0 = end)."""
    if schedule == "cosine":
        return peak * 0.5 * (1 - math.cos(math.pi * remaining))
    if schedule != "linear":
        raise ValueError(f"unknown schedule {schedule!r}; use 'linear' or 'cosine'")
    return peak * remaining


def triangle(progress: float, peak: float, start: float = 0.25, top: float = 0.75) -> float:
    """Cramming's one-cycle (``budget-triangle2``, Geiping & Goldstein 2022): from
    ``start * peak`` up to ``peak`` at ``top`` of the budget, then linearly to 0 at its end."""
    progress = min(max(progress, 0.0), 1.0)
    rising = start + (1 - start) * progress / top
    falling = (1 - progress) / (1 - top)
    return peak * min(rising, falling)


def budget_learning_rate(
    step: int, progress: float, peak: float, warmup_steps: int, schedule: str
) -> float:
    """The learning rate once ``progress`` (tokens seen / budget) of a token budget is done.

    ``triangle`` needs no warm-up; ``linear``/``cosine`` warm up over ``warmup_steps`` optimizer
    steps and decay with the budget left, the smaller of the two (continuous at the join).
    """
    if schedule == "triangle":
        return triangle(progress, peak)
    warm = peak * (step + 1) / warmup_steps if step < warmup_steps else peak
    return min(warm, decayed(peak, max(0.0, 1.0 - progress), schedule))


def ramped_accumulation(progress: float, final: int, ramp: float) -> int:
    """Micro-batches per optimizer step: 1 at the start, growing linearly to ``final`` at
    ``ramp`` of the budget (Cramming's batch-size ramp); ``final`` throughout when ``ramp`` is 0."""
    if ramp <= 0 or final <= 1:
        return max(1, final)
    return 1 + min(final - 1, int((final - 1) * progress / ramp + 1e-9))
