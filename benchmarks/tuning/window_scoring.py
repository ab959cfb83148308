"""How to score a passage from its vectors (its own and its token windows'): chosen on held-out
train, scored on dev.

The notes index stores a passage's own vector and one per token window (``embedder.windows``).
It scored the passage by its best vector until this benchmark chose ``lse_mean@0.02`` (now
``rag.window_scores.soft_best``; the ``max`` column here is computed, not searched). The best alone ignores
the rest: a passage whose own vector and several windows all match a question may be the better
answer than one with a single lucky window. This benchmark scores every question against every
vector (exact, no index) and ranks passages by each of these aggregations of their vectors'
cosines ``s``:

* ``max``: the best vector (the index's former rule, the baseline);
* ``whole``: the passage's own vector only (no windows);
* ``max+b*whole``: the best plus ``b`` times the passage's own vector;
* ``lse_sum@t``: ``t * log(sum(exp(s / t)))``, a soft maximum that adds for every good window;
* ``lse_mean@t``: ``t * log(mean(exp(s / t)))``, the same without favouring long passages.

The aggregation with the best held-out Recall@5 (ties: MRR@10), on the ``eval_articles`` SQuAD
train articles the embedder's recipe held out (searched among those articles' paragraphs), is
compared with ``max`` on SQuAD v1.1 dev (2,067 paragraphs, 10,570 questions); dev reports every
aggregation but chooses none.

Example:
    $ python benchmarks/tuning/window_scoring.py --data ../shared/data
    {"heldout": {"questions": ..., "max": {...}, "lse_mean@0.02": {...}, ...},
     "chosen": "lse_mean@0.02", "squad_dev": {"max": {...}, "lse_mean@0.02": {...}, ...},
     "ratio_recall@5": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.retrieval import add_window_options, paragraph_corpus, window_options  # noqa: E402
from embedder import Embedder, WindowConfig  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402
from rag.window_scores import owner_bounds  # noqa: E402
from training.configs import load_recipe  # noqa: E402
from training.embedder_data import split_articles  # noqa: E402
from training.squad import load_squad  # noqa: E402

DEPTH = 20
QUESTION_CHUNK = 512

# (q, N) cosines, (P,) first vector of each passage, (P,) vectors per passage -> (q, P) scores
Aggregation = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def best(s: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(s, starts, axis=1)


def soft_max(temperature: float, mean: bool) -> Aggregation:
    def aggregate(s: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        # shifted by each passage's best cosine, as rag.window_scores.soft_best: exp neither overflows nor
        # underflows to a log of 0 (whitened vectors have cosines far below 1)
        top = np.maximum.reduceat(s, starts, axis=1)  # (q, P)
        each_top = np.repeat(top, sizes.astype(np.int64), axis=1)  # (q, N)
        shifted = np.exp((s - each_top) / temperature)  # (q, N)
        total = np.add.reduceat(shifted, starts, axis=1)  # (q, P), each at least 1
        if mean:
            total = total / sizes
        return top + temperature * np.log(total)

    return aggregate


def best_plus_whole(weight: float) -> Aggregation:
    def aggregate(s: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        return best(s, starts, sizes) + weight * s[:, starts]

    return aggregate


AGGREGATIONS: dict[str, Aggregation] = {
    "max": best,
    "whole": lambda s, starts, sizes: s[:, starts],
    **{f"max+{b}*whole": best_plus_whole(b) for b in (0.25, 0.5, 1.0)},
    **{f"lse_sum@{t}": soft_max(t, mean=False) for t in (0.01, 0.02, 0.05)},
    **{f"lse_mean@{t}": soft_max(t, mean=True) for t in (0.02, 0.05)},
}


def rankings_by_aggregation(
    embedder: Embedder, examples: list[dict], windows: WindowConfig
) -> tuple[dict[str, list[list[int]]], list[int], int]:
    """Top-``DEPTH`` passages of every question under every aggregation, the gold passages, and
    how many vectors the passages have."""
    paragraphs, questions, gold = paragraph_corpus(examples)
    vectors, owners = embedder.encode_with_windows(paragraphs, windows, batch_size=64)  # (N, d)
    bounds = owner_bounds(owners, len(paragraphs))  # (P + 1,)
    starts, sizes = bounds[:-1], np.diff(bounds).astype(np.float32)  # (P,) each
    queries = embedder.encode(questions, batch_size=128, kind="query")  # (Q, d)
    depth = min(DEPTH, len(paragraphs))
    ranked: dict[str, list[list[int]]] = {name: [] for name in AGGREGATIONS}
    for first in range(0, len(queries), QUESTION_CHUNK):
        cosines = queries[first : first + QUESTION_CHUNK] @ vectors.T  # (q, N)
        for name, aggregate in AGGREGATIONS.items():
            scores = aggregate(cosines, starts, sizes)  # (q, P)
            top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]  # (q, depth)
            order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
            ranked[name].extend(np.take_along_axis(top, order, axis=1).tolist())
    return ranked, gold, len(owners)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--model", default=None, help="embedder folder (default: the shipped one)")
    parser.add_argument(
        "--recipe",
        default="mini-allwiki-embedder-sts",
        help="the embedder's recipe: its eval_articles and seed name the held-out articles",
    )
    add_window_options(parser, "each passage")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    windows = window_options(args)
    cfg = load_recipe(args.recipe).embedder
    if not cfg.eval_articles:
        sys.exit(f"recipe {args.recipe} holds out no articles (eval_articles 0): pick another")
    embedder = Embedder.load(args.model)
    squad = args.data / "squad"

    _, train = load_squad(squad / "train-v1.1.json.gz")
    _, heldout = split_articles(train, cfg.eval_articles, cfg.seed)
    ranked, gold, vectors = rankings_by_aggregation(embedder, heldout, windows)
    table = {name: retrieval_scores(r, gold) for name, r in ranked.items()}
    chosen = max(table, key=lambda n: (table[n]["recall@5"], table[n]["mrr@10"]))
    result: dict = {
        "model": args.model or "shipped",
        "windows": windows.to_dict(),
        "heldout": {"questions": len(gold), "paragraphs": len(set(gold)), "vectors": vectors},
        "chosen": chosen,
    }
    result["heldout"].update(table)

    _, dev = load_squad(squad / "dev-v1.1.json.gz")
    ranked, gold, vectors = rankings_by_aggregation(embedder, dev, windows)
    report = {name: retrieval_scores(r, gold) for name, r in ranked.items()}  # chosen above
    result["squad_dev"] = {"questions": len(gold), "vectors": vectors, **report}
    result["ratio_recall@5"] = round(report[chosen]["recall@5"] / report["max"]["recall@5"], 4)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
