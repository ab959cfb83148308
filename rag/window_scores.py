"""Scoring a passage from its vectors: a passage has its own vector and those of its token
windows (``embedder.windows``), grouped by passage; these pure functions find each passage's
vectors and turn vector hits into passage scores.

Example:
    >>> best_per_owner([4, 0, 5, 1], [0.9, 0.8, 0.7, 0.6], np.array([0, 0, 1, 1, 2, 2]), 2)
    [(2, 0.9), (0, 0.8)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def owner_bounds(owners: np.ndarray, count: int) -> np.ndarray:
    """``(count + 1,)`` offsets: owner ``i``'s vectors are rows ``bounds[i]:bounds[i + 1]`` of
    vectors grouped by (non-decreasing) ``owners``; an owner with no vectors gets an empty range.

    Example:
        >>> owner_bounds(np.array([0, 0, 2, 2]), 3).tolist()
        [0, 2, 2, 4]
    """
    return np.searchsorted(np.asarray(owners), np.arange(count + 1))


def rows_by_owner(vectors: np.ndarray, owners: np.ndarray, count: int) -> list[np.ndarray]:
    """``vectors`` ``(N, d)`` split into ``count`` blocks, block ``i`` the rows whose
    (non-decreasing) ``owners`` entry is ``i``.

    Example:
        >>> [len(b) for b in rows_by_owner(np.zeros((4, 2)), np.array([0, 0, 2, 2]), 3)]
        [2, 0, 2]
    """
    bounds = owner_bounds(owners, count)
    return [vectors[bounds[i] : bounds[i + 1]] for i in range(count)]


def best_per_owner(
    ids: Sequence[int], scores: Sequence[float], owners: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """``(owner, score)`` of the first ``k`` distinct owners of ``ids`` (vector ids ranked best
    first, ``-1`` = no hit), each scored by its best vector: a chunk's score is its best window's.

    Example:
        >>> best_per_owner([4, 0, 5, 1], [0.9, 0.8, 0.7, 0.6], np.array([0, 0, 1, 1, 2, 2]), 2)
        [(2, 0.9), (0, 0.8)]
    """
    best: dict[int, float] = {}
    for vector_id, score in zip(ids, scores, strict=True):
        if vector_id < 0:
            continue
        best.setdefault(int(owners[vector_id]), float(score))  # the first is the best
        if len(best) == k:
            break
    return list(best.items())


WINDOW_TEMPERATURE = 0.02  # chosen on held-out SQuAD train: benchmarks/tuning/window_scoring.py


def soft_best(cosines: np.ndarray, temperature: float = WINDOW_TEMPERATURE) -> float:
    """A chunk's score from its vectors' cosines ``s``: ``t * log(mean(exp(s / t)))``.

    Between the mean and the best of ``s`` (the best as ``t`` -> 0); with ``t`` = 0.02 a chunk
    whose own vector and several windows match a question outranks one with a single window as
    good, and the mean keeps long chunks (more windows) from gaining by length. On SQuAD dev with
    the shipped embedder and 32-token windows: Recall@5 0.7554 against 0.7466 for the best alone
    (``benchmarks/tuning/window_scoring.py``). One vector: its cosine.

    Example:
        >>> round(soft_best(np.array([0.8])), 4), round(soft_best(np.array([0.8, 0.2])), 4)
        (0.8, 0.7861)
    """
    s = np.asarray(cosines, dtype=np.float64)  # (n,)
    top = float(s.max())
    return top + temperature * float(np.log(np.mean(np.exp((s - top) / temperature))))


def rescore_owners(
    owners: Sequence[int], query: np.ndarray, vectors_of: Callable[[int], np.ndarray], k: int
) -> list[tuple[int, float]]:
    """``(owner, soft_best)`` of the ``k`` best of the candidate ``owners``, best first, each
    scored over all its vectors (``vectors_of(owner)``: ``(n, d)`` unit rows; ``query``: ``(d,)``).

    Example:
        >>> rows = {0: np.array([[1.0, 0.0]]), 1: np.array([[0.6, 0.8], [0.8, 0.6]])}
        >>> rescore_owners([0, 1], np.array([1.0, 0.0]), rows.__getitem__, 1)
        [(0, 1.0)]
    """
    scored = [(int(o), soft_best(vectors_of(o) @ query)) for o in owners]
    return sorted(scored, key=lambda pair: -pair[1])[:k]


def candidates_for(k: int, num_vectors: int, num_owners: int) -> int:
    """How many vectors to fetch so that ``k`` distinct owners are likely among them: twice
    ``k`` times the (rounded-up) vectors per owner."""
    return min(num_vectors, 2 * k * -(-num_vectors // max(num_owners, 1)))
