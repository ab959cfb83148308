"""The reader as a relevance teacher: MarginMSE targets for (question, paragraph, hard negative).

``benchmarks/teacher_agreement.py`` measured that the reader, which reads the question and the
paragraph together, picks a SQuAD dev question's paragraph over the hardest paragraph of the same
article far more often than the embedder does (0.913 against 0.811). Margin distillation (MarginMSE,
Hofstätter et al. 2020) hands that judgement to the bi-encoder: for each triplet the student's
cosine margin ``cos(q, p) - cos(q, n)`` is pulled towards the teacher's, ``Reader.relevance(q, p) -
Reader.relevance(q, n)`` times ``scale`` (the reader's margins are span logits, a median of about
9; 0.02 maps them near the student's cosine margins, median about 0.12).

Example:
    >>> columns = margin_columns(Reader.load(), [("Who wrote it?", "Ada wrote it.", "Rain fell.")])
    >>> columns["label"]
    [0.31]
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from rag.reader import Reader
from training.precision import autocast, use_bf16

log = logging.getLogger(__name__)


def margin_columns(
    teacher: Reader,
    triplets: list[tuple[str, str, str]],
    scale: float = 0.02,
    precision: str = "auto",
) -> dict[str, list]:
    """``anchor`` / ``positive`` / ``negative`` / ``label`` columns for ``MarginMSELoss``; a
    triplet where the reader finds no span in either paragraph is dropped."""
    if scale <= 0:
        raise ValueError(f"margin_scale must be positive, got {scale}")
    questions = [q for q, _, _ in triplets]
    with autocast(use_bf16(precision, teacher.device), teacher.device), torch.no_grad():
        positive = teacher.relevance([(q, p) for q, p, _ in triplets])  # (N,)
        negative = teacher.relevance([(q, n) for q, _, n in triplets])  # (N,)
    margins = positive - negative  # (N,)
    keep = np.isfinite(margins)
    log.info(
        "reader margins for %d of %d triplets (median %.2f; the reader prefers the positive in "
        "%.1f%%)",
        int(keep.sum()),
        len(triplets),
        float(np.median(margins[keep])) if keep.any() else float("nan"),
        100 * float((margins[keep] > 0).mean()) if keep.any() else 0.0,
    )
    rows = [i for i in range(len(triplets)) if keep[i]]
    if not rows:
        raise ValueError(
            f"the reader found no answer span in any of {len(triplets)} triplets: is "
            "margin_teacher a trained reader (notesqa train reader)?"
        )
    return {
        "anchor": [questions[i] for i in rows],
        "positive": [triplets[i][1] for i in rows],
        "negative": [triplets[i][2] for i in rows],
        "label": [float(scale * margins[i]) for i in rows],
    }


__all__ = ["margin_columns"]
