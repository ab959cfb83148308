"""Vectors read a block at a time, so that building or merging a big vault's index never holds
its vectors as float32 all at once (100k passages of Wikipedia make about 960,000 of them: 985 MB
as float32, 246 MB as 8-bit codes).

A source is anything with ``dim``, ``len()``, ``blocks(size)`` and ``take(ids)``: an array in
memory (``ArrayVectors``), the 8-bit spool an indexer writes (``rag.vector_spool.VectorSpool``),
or the live rows of stored segments (``rag.vector_segments.LiveVectors``).

Example:
    >>> source = ArrayVectors(np.arange(6, dtype=np.float32).reshape(3, 2))
    >>> [(first, block.shape) for first, block in source.blocks(2)]
    [(0, (2, 2)), (2, (1, 2))]
    >>> take_from_blocks(source, np.array([2, 0]), block=2).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np


class VectorSource(Protocol):
    """``len(source)`` vectors of ``dim`` numbers, read in order a block at a time."""

    dim: int

    def __len__(self) -> int: ...

    def blocks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(first, (b, dim) float32)``: consecutive blocks of at most ``size`` vectors."""
        ...

    def take(self, ids: np.ndarray) -> np.ndarray:
        """``(len(ids), dim)`` float32: the vectors with these positions, in ``ids``' order."""
        ...


class ArrayVectors:
    """A source over an array (or a memory-map) of vectors ``(N, dim)``."""

    def __init__(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be (num_vectors, dim), got shape {vectors.shape}")
        self.vectors = vectors
        self.dim = int(vectors.shape[1])

    def __len__(self) -> int:
        return len(self.vectors)

    def blocks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        for first in range(0, len(self.vectors), size):
            yield first, np.ascontiguousarray(self.vectors[first : first + size], np.float32)

    def take(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.vectors[np.asarray(ids, dtype=np.int64)], dtype=np.float32)


def as_source(vectors: np.ndarray | VectorSource) -> VectorSource:
    """``vectors`` itself when it is a source, else an ``ArrayVectors`` over it."""
    return vectors if hasattr(vectors, "blocks") else ArrayVectors(np.asarray(vectors))


def take_from_blocks(source: VectorSource, ids: np.ndarray, block: int = 65_536) -> np.ndarray:
    """``source.take`` for a source read only in order: one pass over its blocks, keeping the
    rows asked for (``(len(ids), dim)`` float32, in ``ids``' order)."""
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    wanted = ids[order]  # ascending
    out = np.empty((len(ids), source.dim), dtype=np.float32)
    if not len(ids):
        return out
    if wanted[0] < 0 or wanted[-1] >= len(source):
        raise IndexError(f"vector ids must lie in 0..{len(source) - 1}")
    for first, rows in source.blocks(block):
        lo, hi = np.searchsorted(wanted, [first, first + len(rows)])
        out[order[lo:hi]] = rows[wanted[lo:hi] - first]
        if hi == len(wanted):
            break
    return out
