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


def concat_ranges(firsts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``firsts[i], ..., firsts[i] + counts[i] - 1`` for each ``i`` in turn, as one array.

    Example:
        >>> concat_ranges(np.array([5, 0]), np.array([2, 3])).tolist()
        [5, 6, 0, 1, 2]
    """
    counts = np.asarray(counts, dtype=np.int64)
    shift = np.asarray(firsts, dtype=np.int64) - (np.cumsum(counts) - counts)  # (G,)
    return np.repeat(shift, counts) + np.arange(int(counts.sum()), dtype=np.int64)


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


def soft_best_runs(
    cosines: np.ndarray, counts: np.ndarray, temperature: float = WINDOW_TEMPERATURE
) -> np.ndarray:
    """``soft_best`` of each run of ``cosines`` ``(N,)``: run ``i`` is the next ``counts[i]``
    (each at least 1) values. ``(G,)`` float64, computed for every run at once.

    Example:
        >>> np.round(soft_best_runs(np.array([0.8, 0.8, 0.2]), np.array([1, 2])), 4).tolist()
        [0.8, 0.7861]
    """
    s = np.asarray(cosines, dtype=np.float64)  # (N,)
    counts = np.asarray(counts, dtype=np.int64)  # (G,)
    if not len(counts):
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # (G,)
    top = np.maximum.reduceat(s, starts)  # (G,)
    spread = np.add.reduceat(np.exp((s - np.repeat(top, counts)) / temperature), starts)
    return top + temperature * np.log(spread / counts)


def rescore_owners(
    owners: Sequence[int],
    query: np.ndarray,
    cosines_of: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    k: int,
) -> list[tuple[int, float]]:
    """``(owner, soft_best)`` of the ``k`` best of the candidate ``owners``, best first, each
    scored over all its vectors at once: ``cosines_of(ids, query)`` gives their vectors' cosines
    with ``query`` ``(d,)``, owner by owner ``(N,)``, and how many each has ``(G,)``. Ties keep
    the candidates' order.

    Example:
        >>> rows = {0: np.array([[1.0, 0.0]]), 1: np.array([[0.6, 0.8], [0.8, 0.6]])}
        >>> def cosines_of(ids, query):
        ...     blocks = [rows[i] @ query for i in ids]
        ...     return np.concatenate(blocks), np.array([len(b) for b in blocks])
        >>> rescore_owners([0, 1], np.array([1.0, 0.0]), cosines_of, 1)
        [(0, 1.0)]
    """
    owners = np.asarray(owners, dtype=np.int64)
    if not len(owners):
        return []
    cosines, counts = cosines_of(owners, query)
    scores = soft_best_runs(cosines, counts)  # (G,)
    best = np.argsort(-scores, kind="stable")[:k]
    return [(int(owners[i]), float(scores[i])) for i in best]


def candidates_for(k: int, num_vectors: int, num_owners: int) -> int:
    """How many vectors to fetch so that ``k`` distinct owners are likely among them: twice
    ``k`` times the (rounded-up) vectors per owner."""
    return min(num_vectors, 2 * k * -(-num_vectors // max(num_owners, 1)))
