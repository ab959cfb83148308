"""BM25 keyword search over the index's chunks (bm25s), stored beside the vectors without pickle.

Chunk ``i`` of the store is document ``i`` of the BM25 index, so ids agree with FAISS and SQLite.
Scores are BM25 (k1=2.0, b=0.75, Lucene variant): comparable between queries only roughly, which
is why hybrid search normalises each query's scores before fusing them (``rag.retrieve``).

Words are lower-cased, English stopwords dropped and the rest stemmed with the Snowball English
stemmer (PyStemmer), so "rescaled" finds "rescale" and "activations" "activation". On notes_dev
that lifts BM25 Recall@5 from 0.800 to 0.840 and the hybrid from 0.827 to 0.893
(``benchmarks/notes_qa.py --notes-dev --no-reader``; docs/EXPERIMENTS.md I14). The stemmer an index was built with is saved beside it
(``tokenizer.json``), and queries are stemmed the same way: an index written before stemming keeps
matching unstemmed words until it is rebuilt.

Example:
    >>> bm25 = BM25Index.build(["Adam keeps two moving averages", "Photosynthesis makes sugar"])
    >>> [(i, round(score, 2)) for i, score in bm25.search("what does adam keep", k=2)]
    [(0, 0.41)]
"""

from __future__ import annotations

import functools
import json
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
# term-frequency saturation, saved with each index: 2.0 rather than bm25s' 1.5, chosen with the
# hybrid weight (rag.modes) on notes_dev and SQuAD dev together (benchmarks/tuning/notes_fusion.py)
K1 = 2.0
STEMMER = "english"  # a Snowball stemmer of PyStemmer; None: words as written
TOKENIZER_FILE = "tokenizer.json"  # how the index's words were made, so queries match them


@functools.lru_cache(maxsize=4)
def _stem_function(language: str | None):
    """The Snowball stemmer's ``stemWords`` for ``language`` (``None``: no stemming)."""
    if language is None:
        return None
    try:
        import Stemmer
    except ImportError:
        raise ImportError(
            "the keyword index stems words with PyStemmer, which is not installed; run "
            "`pip install PyStemmer` (or reinstall notesqa: `pip install -e .`)"
        ) from None

    return Stemmer.Stemmer(language).stemWords


def _tokenize(texts: list[str], return_ids: bool, stemmer: str | None = STEMMER):
    return _bm25s().tokenize(
        texts,
        stopwords=STOPWORDS,
        stemmer=_stem_function(stemmer),
        return_ids=return_ids,
        show_progress=False,
    )


class BM25Index:
    """A bm25s index of chunk texts; ``search`` returns ``(chunk_id, score)`` best first.

    ``stemmer`` is the Snowball language its words were stemmed with (``None``: not stemmed).
    """

    def __init__(self, retriever, size: int, stemmer: str | None = STEMMER) -> None:
        self.retriever = retriever
        self.size = size
        self.stemmer = stemmer

    @classmethod
    def build(cls, texts: list[str], stemmer: str | None = STEMMER, k1: float = K1) -> BM25Index:
        retriever = _bm25s().BM25(k1=k1)
        if texts:
            tokens = _tokenize(list(texts), return_ids=True, stemmer=stemmer)
            retriever.index(tokens, show_progress=False)
        return cls(retriever, len(texts), stemmer)

    def save(self, folder: str | Path) -> None:
        """Write the index into ``folder`` (JSON + numpy arrays, ``allow_pickle=False``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "size.txt").write_text(str(self.size))
        settings = {"stopwords": STOPWORDS, "stemmer": self.stemmer}
        (folder / TOKENIZER_FILE).write_text(json.dumps(settings) + "\n", encoding="utf-8")
        if self.size:
            self.retriever.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: str | Path) -> BM25Index:
        bm25s = _bm25s()
        folder = Path(folder)
        size = int((folder / "size.txt").read_text())
        stemmer = None  # an index written before stemming has no tokenizer.json
        if (folder / TOKENIZER_FILE).is_file():
            stemmer = json.loads((folder / TOKENIZER_FILE).read_text(encoding="utf-8"))["stemmer"]
        retriever = bm25s.BM25.load(str(folder), allow_pickle=False) if size else bm25s.BM25()
        return cls(retriever, size, stemmer)

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
        tokens = _tokenize([query], return_ids=False, stemmer=self.stemmer)
        ids, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, weight_mask=mask)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
