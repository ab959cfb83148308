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
from collections.abc import Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from rag.vector_blocks import VectorSource, as_source, take_from_blocks

IVF_MIN_VECTORS = 50_000  # below, a segment is searched exactly (benchmarks/scale.py chose it)
IVF_NPROBE = 32  # lists searched per query, at least
IVF_PROBE_SHARE = 1 / 64  # and at least this share of the lists (at 100k passages: 61 of 3,923)
IVF_TRAIN_PER_LIST = 64  # k-means training points per list
RANGE_SIGMAS = 12.0  # the codec's range, in standard deviations of a unit vector's component
IVF_TRAIN_MIN = 1_000  # fewer vectors than this are always searched exactly
ADD_BLOCK = 65_536  # vectors encoded at a time
RECALL_BLOCK = 8_192  # vectors scored at a time by the recall check (200 queries: 6.5 MB)
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
        self._quantizer: faiss.ScalarQuantizer | None = None

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

    def quantizer(self) -> faiss.ScalarQuantizer:
        """FAISS's coder for these ranges (the one the indexes use)."""
        if self._quantizer is None:
            self._quantizer = faiss.ScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_8bit)
            self.set_ranges(self._quantizer)
        return self._quantizer

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, d)`` uint8: the codes an index stores for ``vectors`` ``(n, d)``."""
        return self.quantizer().compute_codes(np.ascontiguousarray(vectors, dtype=np.float32))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, d)`` float32: the vectors ``codes`` ``(n, d)`` uint8 stand for (encoded again,
        they give the same codes)."""
        return self.quantizer().decode(np.ascontiguousarray(codes, dtype=np.uint8))

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
        ranges = faiss.vector_to_array(index.sq.trained)  # (2d,): lows, then widths
        self.codec = VectorCodec(ranges[: index.d], ranges[index.d :])
        self._ivf_codes: np.ndarray | None = None  # an IVF's codes in id order, made when asked
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = min(max(IVF_NPROBE, round(IVF_PROBE_SHARE * index.nlist)), index.nlist)

    @classmethod
    def build(
        cls,
        codec: VectorCodec,
        vectors: np.ndarray | VectorSource,
        bounds: np.ndarray,
        ivf_min_vectors: int | None = IVF_MIN_VECTORS,
    ) -> VectorSegment:
        """Encode ``vectors`` ``(N, d)``, an array or a ``rag.vector_blocks`` source read a
        block at a time (rows grouped by passage: ``bounds`` ``(rows + 1,)``); exact below
        ``ivf_min_vectors`` (``None``: always), an IVF from there."""
        source = as_source(vectors)
        if ivf_min_vectors is None or len(source) < max(ivf_min_vectors, IVF_TRAIN_MIN):
            index = codec.empty_index()
        else:
            index = inverted_file(codec, source)
        for _, block in source.blocks(ADD_BLOCK):
            index.add(block)
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
        return self.decoded(np.arange(first, end, dtype=np.int64))

    def codes(self, vector_ids: np.ndarray) -> np.ndarray:
        """``(n, d)`` uint8: the stored codes of these vectors, gathered with NumPy (FAISS's
        ``reconstruct`` goes one vector at a time: 4x slower on a flat index, more on an IVF,
        whose codes are first copied out of its lists in id order, once)."""
        n, d = self.num_vectors, self.index.d
        if not self.approximate:
            every = faiss.rev_swig_ptr(self.index.codes.data(), n * d) if n else np.zeros(0)
            return every.reshape(n, d)[vector_ids]
        if self._ivf_codes is None:
            by_id = np.empty((n, d), dtype=np.uint8)
            lists = self.index.invlists
            for list_no in range(self.index.nlist):
                size = lists.list_size(list_no)
                if size:
                    ids = faiss.rev_swig_ptr(lists.get_ids(list_no), size)
                    by_id[ids] = faiss.rev_swig_ptr(lists.get_codes(list_no), size * d).reshape(
                        size, d
                    )
            self._ivf_codes = by_id
        return self._ivf_codes[vector_ids]

    def decoded(self, vector_ids: np.ndarray) -> np.ndarray:
        """``(n, d)`` float32: these vectors, decoded."""
        return self.codec.decode(self.codes(np.asarray(vector_ids, dtype=np.int64)))

    def cosines(self, vector_ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """``(n,)`` float32: each vector's inner product with ``query`` ``(d,)``, straight from
        its codes (a decoded number is ``low + (code + 0.5) / 255 * width``, so the product is
        linear in the codes)."""
        q = np.asarray(query, dtype=np.float32)
        scale = self.codec.width * q / 255.0  # (d,)
        offset = float(self.codec.low @ q + 0.5 * scale.sum())
        codes = self.codes(np.asarray(vector_ids, dtype=np.int64))  # (n, d)
        return codes.astype(np.float32) @ scale + offset

    def all_vectors(self) -> np.ndarray:
        """``(num_vectors, d)`` float32: every decoded vector at once (for checks; a merge reads
        them a block at a time through ``LiveVectors``)."""
        return self.decoded(np.arange(self.num_vectors))

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
                scores = self.cosines(ids, q[0])  # (A,)
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


class LiveVectors:
    """A ``rag.vector_blocks`` source of the vectors of the ``live`` rows (a bool mask per row)
    of ``segments``, in order, decoded a block at a time: what a merge encodes again."""

    def __init__(
        self, segments: Sequence[VectorSegment], live: Sequence[np.ndarray], dim: int
    ) -> None:
        self.dim = int(dim)
        self.parts = [
            (segment, np.flatnonzero(segment.vector_mask(alive)))  # (n_i,) live vector ids
            for segment, alive in zip(segments, live, strict=True)
        ]

    def __len__(self) -> int:
        return sum(len(ids) for _, ids in self.parts)

    def blocks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        first = 0
        for segment, ids in self.parts:
            for start in range(0, len(ids), size):
                block = segment.decoded(ids[start : start + size])  # (b, d)
                yield first, block
                first += len(block)

    def take(self, ids: np.ndarray) -> np.ndarray:
        return take_from_blocks(self, ids)


def inverted_file(codec: VectorCodec, vectors: VectorSource) -> faiss.IndexIVFScalarQuantizer:
    """An empty IVF over ``codec``'s 8-bit codes (not residuals: one codec for every segment),
    its lists from spherical k-means on a sample of ``vectors``; reconstructs by id."""
    n, dim = len(vectors), vectors.dim
    # FAISS's rule of thumb, with at least 39 training points a list
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    coarse = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        coarse, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT, False
    )
    rng = np.random.default_rng(0)
    picks = np.sort(rng.choice(n, size=min(n, nlist * IVF_TRAIN_PER_LIST), replace=False))
    sample = vectors.take(picks)  # (S, d)
    kmeans = faiss.Kmeans(dim, nlist, niter=12, spherical=True, seed=1, verbose=False)
    kmeans.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
    kmeans.train(sample)
    coarse.add(kmeans.centroids)
    codec.set_ranges(index.sq)
    index.is_trained = True
    index.make_direct_map()
    return index


def measure_recall(segment: VectorSegment, k: int = 10) -> float:
    """Recall@k of an IVF segment against exact search over the same codes, for queries as far
    from their passages as real questions are (``RECALL_CHECK_NOISE``): 200 of its own vectors,
    decoded, moved by noise."""
    n, dim = segment.num_vectors, segment.index.d
    rng = np.random.default_rng(0)
    picks = rng.choice(n, size=min(200, n), replace=False)
    noise = rng.standard_normal((len(picks), dim)).astype(np.float32)
    base = segment.decoded(picks)  # (Q, d)
    queries = base + RECALL_CHECK_NOISE * noise / np.sqrt(dim)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    queries = np.ascontiguousarray(queries, dtype=np.float32)  # (Q, d)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)  # best so far, (Q, k)
    truth = np.full((len(queries), k), -1, dtype=np.int64)
    for first in range(0, segment.num_vectors, RECALL_BLOCK):  # exact, a block at a time
        ids = np.arange(first, min(first + RECALL_BLOCK, segment.num_vectors), dtype=np.int64)
        block = queries @ segment.decoded(ids).T  # (Q, B)
        best = np.argpartition(-block, min(k, len(ids)) - 1, axis=1)[:, :k]  # (Q, k) unordered
        both = np.concatenate([scores, np.take_along_axis(block, best, 1)], axis=1)  # (Q, 2k)
        both_ids = np.concatenate([truth, ids[best]], axis=1)
        top = np.argsort(-both, axis=1, kind="stable")[:, :k]
        scores, truth = np.take_along_axis(both, top, 1), np.take_along_axis(both_ids, top, 1)
    hits = 0
    for query, expected in zip(queries, truth, strict=True):
        ids, _ = segment.search(query[None], k)
        hits += len(set(ids.tolist()) & set(expected.tolist()))
    return round(hits / (len(picks) * k), 4)
