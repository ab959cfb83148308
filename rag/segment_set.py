"""The segments of an opened index seen as one: which of their passages are alive (the ones the
index's SQLite file still lists; the rest are tombstones until a merge drops them), nearest
passages by vector and best passages by keyword across all segments, and a passage's vectors.

Example (two segments; passage 5 was deleted):
    >>> from rag.vector_segments import VectorCodec
    >>> vectors = np.eye(3, dtype=np.float32)                              # (3, d) unit rows
    >>> codec = VectorCodec.for_dim(vectors.shape[1])
    >>> old = Segment.build(np.array([4, 5]), codec, vectors[:2], [1, 1], [["adam"], ["sgd"]])
    >>> new = Segment.build(np.array([6]), codec, vectors[2:], [1], [["adam", "rmsprop"]])
    >>> view = SegmentSet([old, new], live_ids=np.array([4, 6]))
    >>> [chunk for chunk, _ in view.nearest(vectors[1], k=2)]       # 5 is gone
    [4, 6]
    >>> [chunk for chunk, _ in view.keyword_search(["adam"], k=5)]
    [4, 6]
    >>> [chunk for chunk, _ in view.keyword_search(["adam"], k=5, allowed=np.array([6]))]
    [6]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.keyword_segments import Statistics
from rag.segment import Segment
from rag.window_scores import candidates_for, concat_ranges, rescore_owners


class SegmentSet:
    """``segments`` (named ``names``: their folders) with the passages of ``live_ids`` alive."""

    def __init__(
        self,
        segments: Sequence[Segment],
        live_ids: np.ndarray,
        names: Sequence[str] | None = None,
    ) -> None:
        self.segments = list(segments)
        self.names = list(names) if names is not None else [str(i) for i in range(len(segments))]
        live_ids = np.asarray(live_ids, dtype=np.int64)
        self.live = [np.isin(s.chunk_ids, live_ids) for s in self.segments]  # (D_s,) bool each
        self.everyone = [bool(m.all()) for m in self.live]  # no tombstone in the segment
        ids = [s.chunk_ids for s in self.segments]
        all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        segment_of = np.repeat(np.arange(len(ids)), [len(i) for i in ids])
        row_of = np.concatenate([np.arange(len(i)) for i in ids]) if ids else all_ids
        order = np.argsort(all_ids, kind="stable")
        self._sorted_ids = all_ids[order]
        self._segment_of, self._row_of = segment_of[order], row_of[order]
        if np.any(np.diff(self._sorted_ids) == 0):
            raise ValueError("a passage id is in two segments")
        self.keyword_stats = Statistics.of([s.keywords for s in self.segments], self.live)
        self.num_live = int(sum(int(m.sum()) for m in self.live))
        self.num_live_vectors = int(
            sum(
                int(np.diff(s.vectors.bounds)[m].sum())
                for s, m in zip(self.segments, self.live, strict=True)
            )
        )

    @property
    def next_chunk_id(self) -> int:
        """The first id no segment has used (ids are never reused, tombstones' included)."""
        return int(self._sorted_ids[-1]) + 1 if len(self._sorted_ids) else 0

    def live_share(self, index: int) -> float:
        """The share of segment ``index``'s passages still alive."""
        live = self.live[index]
        return float(live.mean()) if len(live) else 0.0

    @property
    def num_vectors(self) -> int:
        """Stored vectors, tombstoned passages' included."""
        return sum(s.vectors.num_vectors for s in self.segments)

    def locate_many(self, chunk_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(segments, rows)`` of the passages ``(G,)`` each; ``KeyError`` for an id no segment
        holds."""
        ids = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self._sorted_ids) - 1)
        missing = ids if not len(self._sorted_ids) else ids[self._sorted_ids[at] != ids]
        if len(missing):
            raise KeyError(f"no passage {int(missing[0])} in the index's segments")
        return self._segment_of[at], self._row_of[at]

    def locate(self, chunk_id: int) -> tuple[int, int]:
        """``(segment, row)`` of a passage; ``KeyError`` for an id no segment holds."""
        segments, rows = self.locate_many(np.array([chunk_id]))
        return int(segments[0]), int(rows[0])

    def vectors_of(self, chunk_id: int) -> np.ndarray:
        """``(n, d)`` float32: the passage's decoded vectors."""
        segment, row = self.locate(chunk_id)
        return self.segments[segment].vectors.row_vectors(row)

    def cosines_of_many(
        self, chunk_ids: np.ndarray, query: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(cosines, counts)``: the inner products of the passages' vectors with ``query``
        ``(d,)``, passage by passage ``(N,)``, read with one gather per segment, and how many
        vectors each passage has ``(G,)``."""
        segment_of, row_of = self.locate_many(chunk_ids)  # (G,) each
        first = np.zeros(len(segment_of), dtype=np.int64)  # (G,) each passage's first vector id
        counts = np.zeros(len(segment_of), dtype=np.int64)  # (G,)
        for s in np.unique(segment_of):
            picked = segment_of == s
            bounds = self.segments[s].vectors.bounds
            first[picked] = bounds[row_of[picked]]
            counts[picked] = bounds[row_of[picked] + 1] - first[picked]
        out = np.empty(int(counts.sum()), dtype=np.float32)
        place = np.cumsum(counts) - counts  # (G,) where each passage's cosines go in ``out``
        for s in np.unique(segment_of):
            picked = np.flatnonzero(segment_of == s)
            vector_ids = concat_ranges(first[picked], counts[picked])
            cosines = self.segments[s].vectors.cosines(vector_ids, query)
            out[concat_ranges(place[picked], counts[picked])] = cosines
        return out, counts

    def masks(self, allowed: np.ndarray | None) -> list[np.ndarray | None]:
        """Per segment, the rows a search may return: the live ones, within ``allowed`` (chunk
        ids) when given; ``None`` where that is every row (no selector needed)."""
        if allowed is None:
            return [
                None if all_live else live
                for all_live, live in zip(self.everyone, self.live, strict=True)
            ]
        allowed = np.asarray(allowed, dtype=np.int64)
        return [
            live & np.isin(s.chunk_ids, allowed)
            for s, live in zip(self.segments, self.live, strict=True)
        ]

    def nearest(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """``(chunk_id, score)`` of the ``k`` passages nearest ``query`` ``(d,)``, best first:
        the passages whose vectors each segment finds nearest, re-scored over all their vectors
        (``rag.window_scores.soft_best``)."""
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)  # (1, d)
        masks = self.masks(allowed)
        vector_masks = [
            None if m is None else s.vectors.vector_mask(m)
            for s, m in zip(self.segments, masks, strict=True)
        ]
        available = sum(
            s.vectors.num_vectors if m is None else int(m.sum())
            for s, m in zip(self.segments, vector_masks, strict=True)
        )
        passages = sum(
            len(s) if m is None else int(m.sum()) for s, m in zip(self.segments, masks, strict=True)
        )
        k = min(int(k), passages)
        if k <= 0:
            return []
        fetch = min(available, candidates_for(k, self.num_live_vectors, self.num_live))
        while True:  # fetch vectors until k distinct passages are among them
            found: list[tuple[float, int]] = []  # (score, chunk id)
            for segment, mask in zip(self.segments, vector_masks, strict=True):
                if mask is not None and not mask.any():
                    continue
                ids, scores = segment.vectors.search(q, fetch, mask)
                rows = segment.vectors.row_of(ids)
                found.extend(zip(scores.tolist(), segment.chunk_ids[rows].tolist(), strict=True))
            found.sort(key=lambda hit: -hit[0])
            owners = list(dict.fromkeys(chunk for _, chunk in found))  # best first, distinct
            if len(owners) >= k or fetch >= available:
                return rescore_owners(owners, q[0], self.cosines_of_many, k)
            fetch = min(available, 2 * fetch)

    def keyword_search(
        self, words: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """``(chunk_id, BM25 score)`` of the ``k`` best live passages for the query's ``words``
        (``rag.sparse`` tokens), within ``allowed`` (chunk ids) when given."""
        masks = [
            live if m is None else m for live, m in zip(self.live, self.masks(allowed), strict=True)
        ]
        keywords = [s.keywords for s in self.segments]
        hits = self.keyword_stats.search(keywords, masks, words, k)
        return [(int(self.segments[s].chunk_ids[row]), score) for s, row, score in hits]
