"""BM25 keyword search over the index's chunks (bm25s), stored beside the vectors without pickle.

Chunk ``i`` of the store is document ``i`` of the BM25 index, so ids agree with FAISS and SQLite.
Scores are BM25 (k1=1.5, b=0.75, Lucene variant): comparable between queries only roughly, which
is why hybrid search fuses *ranks* (``rag.retrieve``), not scores.

Example:
    >>> bm25 = BM25Index.build(["Adam keeps two moving averages", "Photosynthesis makes sugar"])
    >>> bm25.search("what does adam keep", k=1)
    [(0, 0.34)]
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _bm25s():
    """The ``bm25s`` module, imported on first use with its logger quietened: on import it sets
    its own level to DEBUG and then logs every index build."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


STOPWORDS = "en"


def _tokenize(texts: list[str], return_ids: bool):
    return _bm25s().tokenize(texts, stopwords=STOPWORDS, return_ids=return_ids, show_progress=False)


class BM25Index:
    """A bm25s index of chunk texts; ``search`` returns ``(chunk_id, score)`` best first."""

    def __init__(self, retriever, size: int) -> None:
        self.retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: list[str]) -> BM25Index:
        retriever = _bm25s().BM25()
        if texts:
            retriever.index(_tokenize(list(texts), return_ids=True), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: str | Path) -> None:
        """Write the index into ``folder`` (JSON + numpy arrays, ``allow_pickle=False``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "size.txt").write_text(str(self.size))
        if self.size:
            self.retriever.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: str | Path) -> BM25Index:
        bm25s = _bm25s()
        folder = Path(folder)
        size = int((folder / "size.txt").read_text())
        retriever = bm25s.BM25.load(str(folder), allow_pickle=False) if size else bm25s.BM25()
        return cls(retriever, size)

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` chunks with a positive BM25 score; ``allowed`` (chunk ids) filters inside the search."""
        k = min(int(k), self.size)
        if k <= 0 or not query.strip():
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(self.size, dtype=np.float32)
            mask[np.asarray(allowed, dtype=np.int64)] = 1.0
            if not mask.any():
                return []
        tokens = _tokenize([query], return_ids=False)
        ids, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, weight_mask=mask)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
