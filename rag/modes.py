"""Retrieval modes and the hybrid fusion's settings, apart so the CLI can name them cheaply.

Example:
    >>> from rag.modes import DEFAULT_MODE, MODES
    >>> DEFAULT_MODE in MODES
    True
"""

# hybrid: min-max convex fusion (the default); rrf: the classic reciprocal rank fusion of the
# same two rankings, equal weights, for those who want fusion that ignores score scales
MODES = ("hybrid", "rrf", "bm25", "dense")  # the default first
# Chosen by measurement, not by principle (benchmarks/tuning/hybrid_fusion.py, command and table in
# models/MODEL_CARD.md; shipped embedder, dense side searched as the notes index searches: each
# paragraph scored by the soft maximum of its own and its 32-token windows' vectors): on 3,974
# questions of SQuAD train articles the embedder never saw, dense weight 0.4 gave the best
# Recall@5 (0.9562 against BM25's 0.9341; 0.35: 0.9547, 0.45: 0.9534);
# scored once on SQuAD v1.1 dev it beats BM25 alone on every metric (Recall@1/5/20
# 0.769/0.925/0.974 against 0.750/0.908/0.959, MRR@10 0.837 against 0.818). Equal-weight rank
# fusion falls to 0.889 Recall@5 there, dragged down by the weaker embedder (0.755 alone).
DEFAULT_MODE = "hybrid"
HYBRID_DENSE_WEIGHT = 0.4
FUSION_DEPTH = 100  # candidates per side; the weight was chosen with min-max over this many
RRF_K = 60  # the constant of Cormack et al. (2009); robust across collections
