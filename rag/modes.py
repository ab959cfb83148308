"""Retrieval modes and the hybrid fusion's settings, apart so the CLI can name them cheaply.

Example:
    >>> from rag.modes import DEFAULT_MODE, MODES
    >>> DEFAULT_MODE in MODES
    True
"""

# hybrid: min-max convex fusion (the default); rrf: the classic reciprocal rank fusion of the
# same two rankings, equal weights, for those who want fusion that ignores score scales
MODES = ("hybrid", "rrf", "bm25", "dense")  # the default first
# Chosen by measurement, not by principle, on notes and Wikipedia together
# (benchmarks/tuning/notes_fusion.py --squad 1000; docs/EXPERIMENTS.md I15): notes_dev's 75
# answerable questions over 12 D2L chapters and 1,000 SQuAD v1.1 dev questions over its 48 articles,
# both indexed by the product (stemmed BM25 with passage context, windows scored by soft maximum).
# The best mean Recall@5 was min-max fusion at dense weight 0.3 with BM25's k1 2.0
# (rag.sparse.K1): notes_dev 0.907 against BM25's 0.840, SQuAD 0.945 against 0.930. Weight 0.4
# (chosen on SQuAD alone before) gave 0.880 / 0.943, equal-weight rank fusion 0.813 / 0.913: the
# embedder is the weaker side on notes (dense alone 0.680 / 0.807), so it gets the smaller share.
# Both sets are dev sets and notes_dev is small (one question is 1.3 points), so the grid was coarse.
DEFAULT_MODE = "hybrid"
HYBRID_DENSE_WEIGHT = 0.3
FUSION_DEPTH = 100  # candidates per side; the weight was chosen with min-max over this many
RRF_K = 60  # the constant of Cormack et al. (2009); robust across collections
