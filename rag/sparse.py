"""The words of BM25 keyword search (the postings and the scoring are ``rag.keyword_segments``).

Scores are BM25 (k1=2.0, b=0.75, Lucene variant): comparable between queries only roughly, which
is why hybrid search normalises each query's scores before fusing them (``rag.retrieve``).

Words are lower-cased, English stopwords dropped and the rest stemmed with the Snowball English
stemmer (PyStemmer), so "rescaled" finds "rescale" and "activations" "activation". On notes_dev
that lifts BM25 Recall@5 from 0.800 to 0.840 and the hybrid from 0.827 to 0.893
(``benchmarks/notes_qa.py --notes-dev --no-reader``; docs/EXPERIMENTS.md I14). The stemmer an index was built with is saved beside it
(its manifest's ``keywords``), and queries are stemmed the same way.
"""

from __future__ import annotations

import functools
import logging

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


def tokenize(texts: list[str], stemmer: str | None = STEMMER) -> list[list[str]]:
    """Each text's words as the keyword index stores them: lower-cased, stopwords dropped,
    stemmed.

    Example:
        >>> tokenize(["Adam keeps two moving averages"])
        [['adam', 'keep', 'two', 'move', 'averag']]
    """
    return _bm25s().tokenize(
        texts,
        stopwords=STOPWORDS,
        stemmer=_stem_function(stemmer),
        return_ids=False,
        show_progress=False,
    )
