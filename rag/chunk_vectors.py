"""Searching an index's vectors chunk by chunk: one vector per chunk or several (its own and its
token windows', grouped by chunk), in a flat (exact) or an approximate FAISS index, optionally
among some chunk ids only. ``NotesStore`` opens the files and answers searches through this.

A chunk with several vectors is scored by their ``soft_best`` (``rag.window_scores``): the chunks
whose vectors the index finds nearest are re-scored over all their vectors.

Example (chunk 0 has two vectors, its own and a window's; chunks 1 and 2 one each):
    >>> vectors = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    >>> index, _ = ann.build_index(vectors)                       # exact: no copies on disk
    >>> chunks = ChunkVectors(index, 3, np.array([0, 0, 1, 2]), Path("unused.npy"), False)
    >>> query = np.array([[0, 1, 0]], dtype=np.float32)           # (1, d)
    >>> [(chunk, round(score, 2)) for chunk, score in chunks.nearest(query, k=2)]
    [(1, 1.0), (0, 0.79)]
    >>> [chunk for chunk, _ in chunks.nearest(query, k=2, allowed=np.array([0, 2]))]
    [0, 2]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag import ann
from rag.window_scores import best_per_owner, candidates_for, owner_bounds, rescore_owners


class ChunkVectors:
    """The vectors of an opened index, searched by chunk.

    ``owners`` ``(num_vectors,)`` names the chunk of every vector (non-decreasing, checked by the
    caller); ``None`` means one vector per chunk, vector id = chunk id. An ``approximate``
    (hnsw/ivfpq) index keeps exact copies of its vectors in ``exact_file``.
    """

    def __init__(
        self,
        index: Any,
        num_chunks: int,
        owners: np.ndarray | None,
        exact_file: Path,
        approximate: bool,
    ) -> None:
        self.index = index
        self._num_chunks = num_chunks
        self._owners = owners  # chunk id of every vector; None: the same id
        self._bounds: np.ndarray | None = None  # (num_chunks + 1,) each chunk's vector range
        if owners is not None:
            self._bounds = owner_bounds(owners, num_chunks)
        self._exact_file = exact_file
        self._approximate = approximate
        self._exact: np.ndarray | None = None

    @property
    def num_vectors(self) -> int:
        return int(self.index.ntotal)

    def chunk_ids(self) -> np.ndarray:
        """``(num_vectors,)`` int64: the chunk id of every stored vector (non-decreasing)."""
        if self._owners is None:
            return np.arange(self.num_vectors, dtype=np.int64)
        return self._owners.copy()

    def all(self) -> np.ndarray:
        """All stored vectors, ``(num_vectors, dim)`` float32."""
        if self.num_vectors == 0:
            return np.zeros((0, self.index.d), dtype=np.float32)
        if self._exact_file.exists():  # approximate indexes may not reconstruct exactly (PQ)
            if self._exact is None:  # mapped once; a search reads only its candidates' rows
                self._exact = np.load(self._exact_file, mmap_mode="r", allow_pickle=False)
            return self._exact
        return self.index.reconstruct_batch(np.arange(self.num_vectors, dtype=np.int64))

    def nearest(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """``(chunk_id, score)`` of the ``k`` (>= 1) chunks nearest the ``(1, d)`` float32 query
        ``q``, best first, among the ``allowed`` chunk ids (all when ``None``)."""
        owners = self._owners
        if owners is None:  # vector id = chunk id
            return self._nearest_vectors(q, k, allowed)
        allowed_vectors = None
        if allowed is not None:
            allowed_vectors = np.flatnonzero(np.isin(owners, np.asarray(allowed, np.int64)))
        available = self.num_vectors if allowed_vectors is None else len(allowed_vectors)
        fetch = min(available, candidates_for(k, self.num_vectors, self._num_chunks))
        while True:  # fetch vectors until k distinct chunks are among them
            hits = self._nearest_vectors(q, fetch, allowed_vectors)
            found = best_per_owner([i for i, _ in hits], [s for _, s in hits], owners, len(hits))
            if len(found) >= k or fetch >= available:
                return rescore_owners([o for o, _ in found], q[0], self.vectors_of, k)
            fetch = min(available, 2 * fetch)

    def vectors_of(self, chunk_id: int) -> np.ndarray:
        """The ``(n, d)`` vectors of one chunk (grouped by chunk, so one contiguous range)."""
        if self._bounds is None:  # one vector per chunk: vector id = chunk id
            first, end = chunk_id, chunk_id + 1
        else:
            first, end = self._bounds[chunk_id], self._bounds[chunk_id + 1]
        if self._approximate:  # exact copies beside the index
            return np.asarray(self.all()[first:end], dtype=np.float32)
        return self.index.reconstruct_batch(np.arange(first, end, dtype=np.int64))

    def _nearest_vectors(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """``(vector_id, cosine)`` of the ``k`` vectors nearest the ``(1, d)`` query ``q``,
        best first, among the ``allowed`` vector ids (all when ``None``)."""
        if allowed is not None and self._approximate:
            return self._exact_subset_search(q[0], k, allowed)
        if self._approximate:  # candidates re-ranked exactly
            scores, ids = ann.search(self.index, q, k, exact_vectors=self.all())  # (1, k)
        else:
            params = None
            if allowed is not None:
                params = faiss.SearchParameters(
                    sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
                )
            scores, ids = self.index.search(q, k, params=params)  # (1, k), (1, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _exact_subset_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray
    ) -> list[tuple[int, float]]:
        """Exact search among ``allowed`` vector ids (filters on approximate indexes)."""
        ids = np.asarray(allowed, dtype=np.int64)
        scores = self.all()[ids] @ query  # (A,)
        top = np.argsort(-scores)[:k]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def close(self) -> None:
        """Unmap the exact vectors (idempotent; a later read maps them again)."""
        self._exact = None
