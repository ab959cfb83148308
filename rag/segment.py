"""One segment of an index: some passages' ids, their 8-bit vectors and their keyword postings,
written once and never changed (a later update adds a segment; a merge writes a new one).

On disk, ``segments/NAME/`` of the index folder (JSON and ``.npy``, FAISS's own format)::

    chunk_ids.npy   (D,) int64: the passage id of each row
    vectors.faiss   the rows' vectors (rag.vector_segments), bounds.npy their ranges
    keywords/       the rows' postings (rag.keyword_segments)

Example (two passages, made-up 4-d vectors, the second passage with two):
    >>> import tempfile
    >>> vectors = np.eye(4, dtype=np.float32)[:3]                    # (3, d) unit rows
    >>> segment = Segment.build(
    ...     np.array([7, 9]), VectorCodec.for_dim(vectors.shape[1]), vectors, np.array([1, 2]),
    ...     [["adam", "keep"], ["sgd"]])
    >>> folder = Path(tempfile.mkdtemp())
    >>> segment.save(folder)
    >>> Segment.load(folder).chunk_ids.tolist()
    [7, 9]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.keyword_segments import KeywordSegment
from rag.vector_blocks import VectorSource
from rag.vector_segments import IVF_MIN_VECTORS, VectorCodec, VectorSegment

CHUNK_IDS_FILE = "chunk_ids.npy"
KEYWORDS_DIR = "keywords"


class Segment:
    """Rows ``0..D-1``: passage ``chunk_ids[r]``, its vectors, its postings."""

    def __init__(
        self, chunk_ids: np.ndarray, vectors: VectorSegment, keywords: KeywordSegment
    ) -> None:
        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)  # (D,)
        self.vectors = vectors
        self.keywords = keywords
        if not len(self.chunk_ids) == len(vectors) == len(keywords):
            raise ValueError(
                f"a segment's parts disagree: {len(self.chunk_ids)} passage ids, "
                f"{len(vectors)} vector ranges, {len(keywords)} keyword rows"
            )

    @classmethod
    def build(
        cls,
        chunk_ids: np.ndarray,
        codec: VectorCodec,
        vectors: np.ndarray | VectorSource,
        counts: Sequence[int] | np.ndarray,
        tokens: Iterable[Sequence[str]],
        ivf_min_vectors: int | None = IVF_MIN_VECTORS,
    ) -> Segment:
        """Encode ``vectors`` ``(N, d)`` (an array or a ``rag.vector_blocks`` source;
        ``counts[r]`` consecutive rows per passage; an IVF from ``ivf_min_vectors`` of them) and
        index the passages' keyword ``tokens``."""
        bounds = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))])
        keywords = KeywordSegment.build(tokens)  # first: its arrays are gone before the vectors'
        return cls(
            chunk_ids, VectorSegment.build(codec, vectors, bounds, ivf_min_vectors), keywords
        )

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / CHUNK_IDS_FILE, self.chunk_ids, allow_pickle=False)
        self.vectors.save(folder)
        self.keywords.save(folder / KEYWORDS_DIR)

    @classmethod
    def load(cls, folder: Path) -> Segment:
        """The segment in ``folder``; ``OSError``/``ValueError`` (a file missing or not fitting
        the others) for the caller to report as damage."""
        return cls(
            np.load(folder / CHUNK_IDS_FILE, allow_pickle=False),
            VectorSegment.load(folder),
            KeywordSegment.load(folder / KEYWORDS_DIR),
        )
