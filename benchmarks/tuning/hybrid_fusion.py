"""How to fuse dense and BM25 rankings: fusion weights chosen on held-out train, scored on dev.

Plain reciprocal rank fusion weighs both rankings equally; with an embedder much weaker than
BM25 that drags the fused ranking below BM25 alone. This benchmark searches, on questions the
embedder never trained on (the ``eval_articles`` SQuAD train articles its recipe holds out,
searched among those articles' paragraphs), the weight of the dense side for two fusions:

* ``rrf``: ``w / (60 + dense rank) + (1 - w) / (60 + bm25 rank)``;
* ``minmax``: ``w * dense + (1 - w) * bm25``, each side's scores min-max normalised over its
  top-``depth`` list (a passage missing from one list scores 0 there): the convex combination
  of Bruch et al. (2023), "An Analysis of Fusion Functions for Hybrid Retrieval", and
  ``rag.retrieve``'s hybrid mode.

The weight with the best held-out Recall@5 (ties: MRR@10) is then scored once on SQuAD v1.1 dev
(2,067 paragraphs, 10,570 questions), beside dense and BM25 alone. Choosing on dev would flatter
the fusion, so dev only reports.

Example:
    $ python benchmarks/tuning/hybrid_fusion.py --data ../shared/data
    {"heldout": {"questions": ..., "paragraphs": ..., "bm25": {...}, "dense": {...},
                 "rrf": {"0.0": {...}, "0.05": {...}, ...}, "minmax": {...}},
     "chosen": {"rrf": 0.1, "minmax": 0.3},
     "squad_dev": {"bm25": {...}, "dense": {...}, "rrf@0.5": {...}, "rrf@0.1": {...},
                   "minmax@0.3": {...}}}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.retrieval import (  # noqa: E402
    Scored,
    add_window_options,
    bm25_rankings,
    dense_rankings,
    paragraph_corpus,
    window_options,
)
from embedder import Embedder, WindowConfig  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402
from rag.modes import FUSION_DEPTH  # noqa: E402
from rag.retrieve import convex_fusion, reciprocal_rank_fusion  # noqa: E402
from training.configs import load_recipe  # noqa: E402
from training.embedder_data import split_articles  # noqa: E402
from training.squad import load_squad  # noqa: E402

METHODS = ("rrf", "minmax")
WEIGHTS = [round(0.05 * i, 2) for i in range(21)]  # 0.0 (BM25 alone) .. 1.0 (dense alone)


def fuse(dense: Scored, bm25: Scored, method: str, weight: float, k: int = 20) -> list[int]:
    """The top ``k`` paragraph ids by fused score (ties keep BM25's order, then dense's)."""
    if method == "rrf":
        ranked = reciprocal_rank_fusion(
            [[i for i, _ in bm25], [i for i, _ in dense]], k, weights=[1.0 - weight, weight]
        )
    else:  # minmax
        ranked = convex_fusion(dense, bm25, k, dense_weight=weight)
    return [i for i, _ in ranked]


def searched(
    embedder: Embedder, examples: list[dict], depth: int, windows: WindowConfig
) -> tuple[list[int], list[Scored], list[Scored]]:
    """(gold paragraph, dense top-``depth``, BM25 top-``depth``) of every answerable question,
    searched among the paragraphs of ``examples`` (dense: each paragraph scored over its own
    vector and its token ``windows``', as the notes index searches)."""
    paragraphs, questions, gold = paragraph_corpus(examples)
    dense = dense_rankings(embedder, paragraphs, questions, depth, windows)
    return gold, dense, bm25_rankings(paragraphs, questions, depth)


def score(rankings: list[list[int]], gold: list[int]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in retrieval_scores(rankings, gold, (1, 5, 20), 10).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the shared data folder")
    parser.add_argument("--model", default=None, help="embedder folder (default: shipped)")
    parser.add_argument(
        "--recipe",
        default="mini-allwiki-cont",
        help="the embedder's recipe: its eval_articles and seed name the held-out articles",
    )
    parser.add_argument("--depth", type=int, default=FUSION_DEPTH, help="candidates from each side")
    add_window_options(parser, "the dense side's paragraphs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    windows = window_options(args)
    torch.set_num_threads(args.threads)
    squad = Path(args.data) / "squad"
    cfg = load_recipe(args.recipe).embedder
    if not cfg.eval_articles:
        sys.exit(f"recipe {args.recipe} holds out no articles (eval_articles 0): pick another")
    embedder = Embedder.load(args.model)

    _, train = load_squad(squad / "train-v1.1.json.gz")
    _, heldout = split_articles(train, cfg.eval_articles, cfg.seed)
    gold, dense, bm25 = searched(embedder, heldout, args.depth, windows)
    result: dict = {
        "heldout": {
            "questions": len(gold),
            "paragraphs": len(set(gold)),
            "bm25": score([[i for i, _ in r] for r in bm25], gold),
            "dense": score([[i for i, _ in r] for r in dense], gold),
        },
        "chosen": {},
    }
    for method in METHODS:
        table = {
            str(w): score([fuse(d, b, method, w) for d, b in zip(dense, bm25, strict=True)], gold)
            for w in WEIGHTS
        }
        result["heldout"][method] = table
        best = max(table, key=lambda w: (table[w]["recall@5"], table[w]["mrr@10"]))
        result["chosen"][method] = float(best)

    _, dev = load_squad(squad / "dev-v1.1.json.gz")
    gold, dense, bm25 = searched(embedder, dev, args.depth, windows)
    report = {
        "bm25": score([[i for i, _ in r] for r in bm25], gold),
        "dense": score([[i for i, _ in r] for r in dense], gold),
    }
    for method, weight in [("rrf", 0.5), *result["chosen"].items()]:
        report[f"{method}@{weight}"] = score(
            [fuse(d, b, method, weight) for d, b in zip(dense, bm25, strict=True)], gold
        )
    result["squad_dev"] = report
    result["model"] = args.model or "shipped"
    result["windows"] = windows.to_dict()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
