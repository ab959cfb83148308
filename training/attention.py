"""Which Hugging Face attention kernel to train with: both compute the same softmax attention.

On CPU (PyTorch 2.13, sequence 128, bf16 autocast, 4x256 BERT) the eager matmul attention trains
faster than SDPA's fused CPU kernel, whose backward took a quarter of the step; on CUDA SDPA
(flash / memory-efficient kernels) is the fast one. ``benchmarks/pretrain_throughput.py
--attention sdpa|eager`` measures it on your machine.
"""

from __future__ import annotations

import torch

ATTENTIONS = ("auto", "sdpa", "eager")


def attention_implementation(attention: str, device: torch.device) -> str:
    """The Hugging Face attention kernel for ``attention`` ('auto' | 'sdpa' | 'eager') on ``device``.

    Both compute the same softmax attention; on CPU the eager matmuls train faster than SDPA's
    fused kernel at sequence 128 (its backward dominates the step), on CUDA SDPA is faster.

    Example:
        >>> attention_implementation("auto", torch.device("cpu"))
        'eager'
    """
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    if attention != "auto":
        return attention
    return "sdpa" if device.type == "cuda" else "eager"
