"""Dense, BM25 and hybrid retrieval over a ``NotesStore``, with filters applied inside the search.

Scores by mode (documented because users compare them):

* ``dense``: cosine similarity of query and passage vectors, in [-1, 1];
* ``bm25``: the BM25 score of the passage for the query's words (> 0, unbounded); when fewer
  than ``k`` passages share a word with the query, the rest come from the embedder's ranking with
  score 0.0;
* ``hybrid``: reciprocal rank fusion of the two rankings,
  ``sum over rankings of 1 / (60 + rank)`` (rank from 1), so at most ``2 / 61 ~ 0.033``;
  fusing ranks rather than raw scores is what makes two incomparable scales combinable.

Example:
    >>> hits = retrieve(store, embedder, "adam moment estimates", k=3, mode="hybrid",
    ...                 path_glob="ml/*")
    >>> [(h.chunk.source, round(h.score, 4)) for h in hits]
    [('ml/optimisers.md', 0.0328), ('ml/optimisers.md', 0.0323), ('ml/transformers.md', 0.0161)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.store import Hit, NotesStore

MODES = ("dense", "bm25", "hybrid")
# The default is chosen by measurement, not by principle. With the shipped embedder, BM25 alone
# retrieves best (benchmarks/retrieval.py on SQuAD dev: Recall@5 0.908 vs dense 0.555 and hybrid
# 0.803; with an earlier embedder, no dense weight in the fusion beat BM25's MRR on a held-out
# train slice). Switch back to "hybrid" once the embedder beats BM25.
DEFAULT_MODE = "bm25"
RRF_K = 60  # the constant of Cormack et al. (2009); robust across collections


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int, rrf_k: int = RRF_K
) -> list[tuple[int, float]]:
    """Fuse ranked id lists into the top ``k`` ``(id, score)``; ties keep first-seen order.

    Example:
        >>> reciprocal_rank_fusion([[7, 3, 5], [3, 9]], k=3)
        [(3, 0.0325), (7, 0.0164), (9, 0.0161)]     # rounded
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])[:k]


def retrieve(
    store: NotesStore,
    embedder,
    query: str,
    k: int = 5,
    mode: str = DEFAULT_MODE,
    path_glob: str | None = None,
    heading: str | None = None,
    depth: int | None = None,
) -> list[Hit]:
    """The ``k`` best passages for ``query``; ``path_glob``/``heading`` filter inside the search.

    ``depth`` is how many candidates each ranking contributes to the fusion (default ``max(4k, 20)``).
    """
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
    if not query.strip():
        raise ValueError("the query is empty; ask something")
    allowed = store.ids_matching(path_glob, heading) if (path_glob or heading) else None
    if allowed is not None and len(allowed) == 0:
        return []
    depth = depth or max(4 * k, 20)

    def dense(n: int) -> list[Hit]:
        vector = np.asarray(embedder.encode([query], kind="query")[0], dtype=np.float32)
        return store.search(vector, n, allowed=allowed)

    if mode == "dense":
        return dense(k)
    if mode == "bm25":
        sparse = store.bm25.search(query, k, allowed=allowed)
        if len(sparse) < k:  # too few keyword matches: fill up from the embedder's ranking
            seen = {i for i, _ in sparse}
            fill = [h.chunk_id for h in dense(k + len(sparse)) if h.chunk_id not in seen]
            sparse += [(i, 0.0) for i in fill[: k - len(sparse)]]
        return store.hits(sparse)
    dense_ids = [h.chunk_id for h in dense(depth)]
    sparse_ids = [i for i, _ in store.bm25.search(query, depth, allowed=allowed)]
    return store.hits(reciprocal_rank_fusion([dense_ids, sparse_ids], k))
