"""One segment's passage vectors, stored in 8 bits a number: searched exactly while the segment is
small and through an inverted file (IVF) once it is large, so that search time stops growing
with the vault.

Every segment shares one ``VectorCodec``, fixed by the dimension, so a vector read back from one
segment and written into another (a merge, or an unchanged passage of an edited note) keeps its
exact 8-bit code, and a rebuild encodes as an update does. Decoding moves a cosine by about
0.002; the recall this costs on notes_dev and SQuAD is in docs/EXPERIMENTS.md (I17).

A segment's rows are its passages; ``bounds`` gives each row's range of vectors (its own vector
and its token windows', ``embedder.windows``). Vector ids are local, ``0..n-1``.

Example (made-up unit vectors; the first passage has two):
    >>> rng = np.random.default_rng(0)
    >>> vectors = rng.standard_normal((3, 8)).astype(np.float32)
    >>> vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)       # (3, d) unit rows
    >>> codec = VectorCodec.for_dim(8)
    >>> segment = VectorSegment.build(codec, vectors, np.array([0, 2, 3]))
    >>> ids, scores = segment.search(vectors[2:3], k=2)
    >>> ids.tolist(), segment.row_of(ids).tolist()
    ([2, 1], [1, 0])
    >>> bool(np.abs(segment.row_vectors(0) - vectors[:2]).max() < 0.01)
    True
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path

import faiss
import numpy as np

IVF_MIN_VECTORS = 50_000  # below, a segment is searched exactly (benchmarks/scale.py chose it)
IVF_NPROBE = 32  # lists searched per query, at least
IVF_PROBE_SHARE = 1 / 32  # and at least this share of the lists (at 100k passages: 121 of 3,873)
IVF_TRAIN_PER_LIST = 64  # k-means training points per list
RANGE_SIGMAS = 12.0  # the codec's range, in standard deviations of a unit vector's component
IVF_TRAIN_MIN = 1_000  # fewer vectors than this are always searched exactly
ADD_BLOCK = 65_536  # vectors encoded at a time
EXACT_FILTER_MAX = 20_000
# queries for the build-time recall check: a stored vector moved by this much noise (relative to
# its unit length) has cosine ~0.55 to it, about what a real question has to its passage (a
# stored vector itself finds its own neighbourhood trivially: 0.9995 against 0.83 for HNSW)
RECALL_CHECK_NOISE = 1.5  # a filter allowing at most this many vectors is searched exactly


class VectorCodec:
    """8-bit scalar quantisation with per-dimension ranges ``[low, low + width]`` (FAISS
    ``QT_8bit``)."""

    def __init__(self, low: np.ndarray, width: np.ndarray) -> None:
        self.low = np.asarray(low, dtype=np.float32)  # (d,)
        self.width = np.asarray(width, dtype=np.float32)  # (d,)

    @property
    def dim(self) -> int:
        return len(self.low)

    @classmethod
    def for_dim(cls, dim: int) -> VectorCodec:
        """Every dimension in ``[-r, r]`` with ``r = min(1, RANGE_SIGMAS / sqrt(dim))``: a
        component of a unit vector beyond that many standard deviations of a uniformly spread
        one is clipped (at 8, about 0.5 at 256 dimensions, window vectors of the 100k-passage
        Wikipedia vault came back with norms down to 0.978: benchmarks/scale.py). Fixed by the
        dimension alone, so every build and update of an index encodes a vector the same way
        and an incremental index equals a rebuild."""
        r = min(1.0, RANGE_SIGMAS / math.sqrt(dim))  # 0.75 at 256
        return cls(np.full(dim, -r, np.float32), np.full(dim, 2 * r, np.float32))

    def empty_index(self) -> faiss.IndexScalarQuantizer:
        """A trained, empty flat index with these ranges."""
        index = faiss.IndexScalarQuantizer(
            self.dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        self.set_ranges(index.sq)
        index.is_trained = True
        return index

    def set_ranges(self, quantizer: faiss.ScalarQuantizer) -> None:
        faiss.copy_array_to_vector(np.concatenate([self.low, self.width]), quantizer.trained)

    def to_dict(self) -> dict:
        return {"low": self.low.tolist(), "width": self.width.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> VectorCodec:
        return cls(np.asarray(data["low"]), np.asarray(data["width"]))


class VectorSegment:
    """A segment's vectors (a FAISS index with local ids) and each row's vector range."""

    def __init__(self, index: faiss.Index, bounds: np.ndarray) -> None:
        self.index = index
        self.bounds = np.asarray(bounds, dtype=np.int64)  # (rows + 1,)
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = min(max(IVF_NPROBE, round(IVF_PROBE_SHARE * index.nlist)), index.nlist)

    @classmethod
    def build(
        cls,
        codec: VectorCodec,
        vectors: np.ndarray,
        bounds: np.ndarray,
        ivf_min_vectors: int | None = IVF_MIN_VECTORS,
    ) -> VectorSegment:
        """Encode ``vectors`` ``(N, d)`` (rows grouped by passage: ``bounds`` ``(rows + 1,)``;
        a memory-map is read a block at a time); exact below ``ivf_min_vectors`` (``None``:
        always), an IVF from there."""
        if ivf_min_vectors is None or len(vectors) < max(ivf_min_vectors, IVF_TRAIN_MIN):
            index = codec.empty_index()
        else:
            index = inverted_file(codec, vectors)
        for first in range(0, len(vectors), ADD_BLOCK):
            index.add(np.ascontiguousarray(vectors[first : first + ADD_BLOCK], dtype=np.float32))
        return cls(index, bounds)

    @property
    def approximate(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    @property
    def num_vectors(self) -> int:
        return int(self.index.ntotal)

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def row_of(self, vector_ids: np.ndarray) -> np.ndarray:
        """The row (passage) of each local vector id."""
        return np.searchsorted(self.bounds, np.asarray(vector_ids), side="right") - 1

    def vector_mask(self, rows: np.ndarray) -> np.ndarray:
        """``(num_vectors,)`` bool: the vectors of the rows where ``rows`` (bool, per row) is True."""
        return np.repeat(np.asarray(rows, dtype=bool), np.diff(self.bounds))

    def row_vectors(self, row: int) -> np.ndarray:
        """``(n, d)`` float32: the decoded vectors of one row."""
        first, end = int(self.bounds[row]), int(self.bounds[row + 1])
        return self.index.reconstruct_batch(np.arange(first, end, dtype=np.int64))

    def all_vectors(self) -> np.ndarray:
        """``(num_vectors, d)`` float32: every decoded vector (a merge reads them)."""
        if not self.num_vectors:
            return np.zeros((0, self.index.d), dtype=np.float32)
        return self.index.reconstruct_batch(np.arange(self.num_vectors, dtype=np.int64))

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)`` of the ``k`` vectors nearest ``queries[0]`` (``(1, d)``), best first,
        among the ``allowed`` vectors (bool ``(num_vectors,)``; all when ``None``). A filter
        that leaves few vectors on an IVF is searched exactly, where the IVF might miss them."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(1, -1)  # (1, d)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            count = int(np.count_nonzero(allowed))
            if count == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            if count == len(allowed):
                allowed = None
            elif self.approximate and count <= EXACT_FILTER_MAX:
                ids = np.flatnonzero(allowed)
                scores = self.index.reconstruct_batch(ids) @ q[0]  # (A,)
                top = np.argsort(-scores, kind="stable")[:k]
                return ids[top], scores[top]
        k = min(int(k), self.num_vectors)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        params = None
        if allowed is not None:
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
            if self.approximate:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
        scores, ids = self.index.search(q, k, params=params)  # (1, k) each
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def save(self, folder: Path) -> None:
        """Write ``vectors.faiss`` and ``bounds.npy``; FAISS's write errors (a full disk) are
        raised as ``OSError``."""
        try:
            faiss.write_index(self.index, str(folder / "vectors.faiss"))
        except RuntimeError as exc:
            code = errno.ENOSPC if "No space left" in str(exc) else errno.EIO
            raise OSError(code, os.strerror(code), str(folder / "vectors.faiss")) from exc
        np.save(folder / "bounds.npy", self.bounds, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> VectorSegment:
        index = faiss.read_index(str(folder / "vectors.faiss"))
        bounds = np.load(folder / "bounds.npy", allow_pickle=False)
        if int(bounds[-1]) != index.ntotal or np.any(np.diff(bounds) < 0):
            raise ValueError(f"{folder}: the vector ranges do not match {index.ntotal} vectors")
        return cls(index, bounds)


def inverted_file(codec: VectorCodec, vectors: np.ndarray) -> faiss.IndexIVFScalarQuantizer:
    """An empty IVF over ``codec``'s 8-bit codes (not residuals: one codec for every segment),
    its lists from spherical k-means on a sample of ``vectors``; reconstructs by id."""
    n, dim = vectors.shape
    # FAISS's rule of thumb, with at least 39 training points a list
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    coarse = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        coarse, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT, False
    )
    rng = np.random.default_rng(0)
    picks = np.sort(rng.choice(n, size=min(n, nlist * IVF_TRAIN_PER_LIST), replace=False))
    sample = np.asarray(vectors[picks], dtype=np.float32)  # (S, d)
    kmeans = faiss.Kmeans(dim, nlist, niter=12, spherical=True, seed=1, verbose=False)
    kmeans.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
    kmeans.train(sample)
    coarse.add(kmeans.centroids)
    codec.set_ranges(index.sq)
    index.is_trained = True
    index.make_direct_map()
    return index


def measure_recall(segment: VectorSegment, vectors: np.ndarray | None = None, k: int = 10) -> float:
    """Recall@k of an IVF segment against exact search over the same codes, for queries as far
    from their passages as real questions are (``RECALL_CHECK_NOISE``): stored ``vectors``
    moved by noise (``None``: the segment's own, decoded; only the 200 picked are read)."""
    n, dim = segment.num_vectors, segment.index.d
    rng = np.random.default_rng(0)
    picks = rng.choice(n, size=min(200, n), replace=False)
    noise = rng.standard_normal((len(picks), dim)).astype(np.float32)
    base = (
        segment.index.reconstruct_batch(picks.astype(np.int64))
        if vectors is None
        else np.asarray(vectors[picks], dtype=np.float32)
    )
    queries = base + RECALL_CHECK_NOISE * noise / np.sqrt(dim)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    queries = np.ascontiguousarray(queries, dtype=np.float32)  # (Q, d)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)  # best so far, (Q, k)
    truth = np.full((len(queries), k), -1, dtype=np.int64)
    for first in range(0, segment.num_vectors, ADD_BLOCK):  # exact, a block of codes at a time
        ids = np.arange(first, min(first + ADD_BLOCK, segment.num_vectors), dtype=np.int64)
        block = queries @ segment.index.reconstruct_batch(ids).T  # (Q, B)
        both = np.concatenate([scores, block], axis=1)
        both_ids = np.concatenate([truth, np.broadcast_to(ids, block.shape)], axis=1)
        top = np.argsort(-both, axis=1, kind="stable")[:, :k]
        scores, truth = np.take_along_axis(both, top, 1), np.take_along_axis(both_ids, top, 1)
    hits = 0
    for query, expected in zip(queries, truth, strict=True):
        ids, _ = segment.search(query[None], k)
        hits += len(set(ids.tolist()) & set(expected.tolist()))
    return round(hits / (len(picks) * k), 4)
