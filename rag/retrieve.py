"""Dense, BM25 and hybrid retrieval over a ``NotesStore``, with filters applied inside the search.

Scores by mode (documented because users compare them):

* ``dense``: cosine similarity of query and passage vectors, in [-1, 1];
* ``bm25``: the BM25 score of the passage for the query's words (> 0, unbounded); when fewer
  than ``k`` passages share a word with the query, the rest come from the embedder's ranking with
  score 0.0;
* ``hybrid``: a convex combination of the two scores, each min-max normalised over its own
  top-``depth`` candidates of the query (best 1, worst 0; a passage missing from one list gets 0
  there): ``HYBRID_DENSE_WEIGHT * dense + (1 - HYBRID_DENSE_WEIGHT) * bm25``, in [0, 1].
  Normalising per query is what makes the two incomparable scales combinable; the weight is
  measured (``rag.modes``), not assumed;
* ``rrf``: reciprocal rank fusion of the same two top-``depth`` rankings with equal weights,
  ``sum 1 / (RRF_K + rank)`` (rank from 1), in (0, 2 / (RRF_K + 1)]; only ranks count, so it
  needs no normalisation, but it lets the weaker side count as much as the stronger.

Example (the demo notes, indexed into a temporary folder):
    >>> import tempfile
    >>> from rag.pipeline import NotesQA
    >>> qa = NotesQA.open("examples/notes", index_dir=tempfile.mkdtemp())
    >>> qa.index(progress=False).chunks
    37
    >>> hits = retrieve(qa.store, qa.embedder, "adam moment estimates", k=3, mode="hybrid")
    >>> [(h.chunk.heading, h.chunk.line) for h in hits]
    [('Optimisers > Adam', 26), ('Optimisers > Adam > AdamW', 54), ('Optimisers > Adam', 42)]
    >>> hits = retrieve(qa.store, qa.embedder, "adam moment estimates", k=3, mode="bm25")
    >>> [round(h.score, 2) for h in hits]
    [3.42, 2.06, 1.86]
    >>> {h.chunk.source for h in retrieve(qa.store, qa.embedder, "attention", path_glob="ml/*")}
    {'ml/transformers.md'}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.modes import DEFAULT_MODE, FUSION_DEPTH, HYBRID_DENSE_WEIGHT, MODES, RRF_K
from rag.store import Hit, NotesStore


def min_max(scores: Sequence[float]) -> list[float]:
    """``scores`` mapped onto [0, 1] (best 1, worst 0; all 1.0 when they are equal).

    Example:
        >>> min_max([8.0, 5.0, 2.0])
        [1.0, 0.5, 0.0]
    """
    if not scores:
        return []
    top, bottom = max(scores), min(scores)
    if top == bottom:
        return [1.0] * len(scores)
    return [(s - bottom) / (top - bottom) for s in scores]


def convex_fusion(
    dense: Sequence[tuple[int, float]],
    sparse: Sequence[tuple[int, float]],
    k: int,
    dense_weight: float = HYBRID_DENSE_WEIGHT,
) -> list[tuple[int, float]]:
    """The top ``k`` ``(id, score)`` of ``dense_weight * dense + (1 - dense_weight) * sparse``,
    each side min-max normalised over its own list; ties keep BM25's order, then dense's.

    Example:
        >>> convex_fusion([(7, 0.9), (3, 0.5), (5, 0.1)], [(3, 12.0), (9, 4.0)], k=3)
        [(3, 0.85), (7, 0.3), (9, 0.0)]
    """
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError(f"dense_weight must lie in [0, 1], got {dense_weight}")
    fused: dict[int, float] = {}
    for ranking, weight in ((sparse, 1.0 - dense_weight), (dense, dense_weight)):
        for (item, _), normalised in zip(ranking, min_max([s for _, s in ranking]), strict=True):
            fused[item] = fused.get(item, 0.0) + weight * normalised
    order = sorted(fused, key=lambda item: -fused[item])  # stable: BM25's order breaks ties
    return [(item, fused[item]) for item in order[:k]]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]],
    k: int,
    rrf_k: int = RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """Fuse ranked id lists into the top ``k`` ``(id, score)`` (``sum of weight / (rrf_k +
    rank)``, weights 1 by default); ties keep first-seen order. The alternative to
    ``convex_fusion`` that ``benchmarks/tuning/notes_fusion.py`` measures.

    Example:
        >>> [(i, round(score, 4)) for i, score in reciprocal_rank_fusion([[7, 3, 5], [3, 9]], k=3)]
        [(3, 0.0325), (7, 0.0164), (9, 0.0161)]
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
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
    dense_weight: float = HYBRID_DENSE_WEIGHT,
    allowed: np.ndarray | None = None,
    tags: Sequence[str] = (),
) -> list[Hit]:
    """The ``k`` best passages for ``query``; ``path_glob``/``heading``/``tags`` filter inside the
    search (``NotesStore.ids_matching``).

    ``depth`` is how many candidates each side contributes to the hybrid fusion (default
    ``max(4k, FUSION_DEPTH)``), ``dense_weight`` the dense side's share of it. ``allowed``
    (chunk ids) restricts the search further, e.g. to leave a file out.
    """
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
    if not query.strip():
        raise ValueError("the query is empty; ask something")
    if path_glob or heading or tags:
        matching = store.ids_matching(path_glob, heading, tags)
        allowed = matching if allowed is None else np.intersect1d(matching, allowed)
    if allowed is not None and len(allowed) == 0:
        return []
    depth = depth or max(4 * k, FUSION_DEPTH)

    def dense(n: int) -> list[tuple[int, float]]:
        vector = np.asarray(embedder.encode([query], kind="query")[0], dtype=np.float32)
        return store.nearest(vector, n, allowed=allowed)

    if mode == "dense":
        return store.hits(dense(k))
    if mode == "bm25":
        sparse = store.keyword_search(query, k, allowed=allowed)
        if len(sparse) < k:  # too few keyword matches: fill up from the embedder's ranking
            seen = {i for i, _ in sparse}
            fill = [i for i, _ in dense(k + len(sparse)) if i not in seen]
            sparse += [(i, 0.0) for i in fill[: k - len(sparse)]]
        return store.hits(sparse)
    sparse = store.keyword_search(query, depth, allowed=allowed)
    if mode == "rrf":
        rankings = [[i for i, _ in dense(depth)], [i for i, _ in sparse]]
        return store.hits(reciprocal_rank_fusion(rankings, k))
    return store.hits(convex_fusion(dense(depth), sparse, k, dense_weight))
