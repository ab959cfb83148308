"""How to fuse dense and BM25 rankings for notes: chosen on notes_dev and SQuAD dev together.

``hybrid_fusion.py`` chose the dense weight on SQuAD only; notes are not Wikipedia (code, math,
short list items, an embedder that is weaker there). This study indexes both through the product
(``NotesQA.index``: chunking, passage context, token windows) and, for every question, takes each
side's top ``--depth`` candidates once; then it scores every fusion offline:

* ``minmax@w``: ``w * dense + (1 - w) * bm25``, each side min-max normalised over its own list
  (``rag.retrieve.convex_fusion``, the ``hybrid`` mode);
* ``rrf@w``: ``w / (60 + dense rank) + (1 - w) / (60 + bm25 rank)``.

Questions: notes_dev's 75 answerable ones (a hit is relevant when it is a passage of the
question's file that contains an answer, the benchmark's ``lenient`` criterion) and ``--squad``
SQuAD v1.1 dev questions with all 48 dev articles as notes (relevant: the passage overlaps the
question's paragraph). The chosen setting maximises the mean Recall@5 of the two sets; both sets
are dev sets, so the grid is kept coarse.

Example:
    $ python benchmarks/tuning/notes_fusion.py --data ../shared/data --squad 1000
    {"notes_dev": {"bm25": {...}, "dense": {...}, "minmax@0.4": {...}, ...},
     "squad_dev": {...}, "chosen": "minmax@0.3", "chosen_scores": {...}}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.notes_qa import (  # noqa: E402
    lenient_flags,
    notes_dev_task,
    paragraph_flags,
    squad_task,
)
from benchmarks.retrieval import add_window_options, window_options  # noqa: E402
from rag.keyword_segments import BM25Index  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402
from rag.pipeline import NotesQA  # noqa: E402
from rag.retrieve import convex_fusion, reciprocal_rank_fusion  # noqa: E402

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]  # dense share: 0.0 (BM25) .. 1.0 (dense)
Scored = list[tuple[int, float]]


def candidates(
    qa: NotesQA, questions: list[dict], depth: int, k1: float
) -> list[tuple[Scored, Scored]]:
    """Each question's (dense, bm25) top-``depth`` ``(chunk id, score)`` lists, as searched by
    ``rag.retrieve``, with a keyword index rebuilt with BM25's ``k1``."""
    store, embedder = qa.store, qa.embedder
    bm25 = BM25Index.build([c.keyword_text for c in store.chunks()], k1=k1)
    vectors = embedder.encode([q["question"] for q in questions], kind="query")  # (Q, d)
    return [
        (store.nearest(vector, depth), bm25.search(q["question"], depth))
        for vector, q in zip(vectors, questions, strict=True)
    ]


def fused(dense: Scored, bm25: Scored, setting: str, k: int = 20) -> list[int]:
    method, weight = setting.split("@")
    w = float(weight)
    if method == "rrf":
        rankings = [[i for i, _ in dense], [i for i, _ in bm25]]
        return [i for i, _ in reciprocal_rank_fusion(rankings, k, weights=[w, 1 - w])]
    return [i for i, _ in convex_fusion(dense, bm25, k, w)]


def scores_of(
    qa: NotesQA,
    questions: list[dict],
    lists: list[tuple[Scored, Scored]],
    relevant: Callable,
    settings: list[str],
) -> dict[str, dict]:
    """Recall@1/5/20 and MRR@10 of each setting (plus dense and BM25 alone); ``relevant(hits,
    question)`` is a criterion of ``benchmarks/notes_qa.py``, which reads a stored ``Chunk`` as it
    reads a hit (``source``, ``text``, ``start``, ``end``)."""
    chunks = qa.store.chunks()
    flags_cache: dict[tuple[int, int], int] = {}

    def flags(n: int, ids: list[int]) -> list[int]:
        for i in ids:
            if (n, i) not in flags_cache:
                flags_cache[(n, i)] = relevant([chunks[i]], questions[n])[0]
        return [flags_cache[(n, i)] for i in ids]

    result = {}
    rankers = {
        "dense": lambda d, b: [i for i, _ in d][:20],
        "bm25": lambda d, b: [i for i, _ in b][:20],
    }
    rankers.update({s: (lambda d, b, s=s: fused(d, b, s)) for s in settings})
    for name, rank in rankers.items():
        ranked = []
        for n, (dense, bm25) in enumerate(lists):
            ranked.append([0 if f else r + 1 for r, f in enumerate(flags(n, rank(dense, bm25)))])
        result[name] = {
            key: round(value, 4)
            for key, value in retrieval_scores(ranked, [0] * len(ranked), (1, 5, 20), 10).items()
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--squad", type=int, default=1000, help="SQuAD dev questions (sampled)")
    parser.add_argument("--depth", type=int, default=100, help="candidates per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k1", type=float, nargs="+", default=[1.2, 1.5, 2.0], help="BM25's")
    parser.add_argument("--embedder", help="embedder folder (default: the shipped one)")
    add_window_options(parser, "every passage")
    args = parser.parse_args()
    windows = window_options(args)
    settings = [f"{m}@{w}" for m in ("minmax", "rrf") for w in WEIGHTS[1:-1]]
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="notesqa-fusion-") as tmp:
        for name in ("notes_dev", "squad_dev"):
            folder = Path(tmp) / name
            folder.mkdir()
            if name == "notes_dev":
                task = notes_dev_task(args.data / "notes_dev", folder, 0, args.seed)
                relevant = lenient_flags
            else:
                path = args.data / "squad" / "dev-v1.1.json.gz"
                task = squad_task(path, folder, "v1", args.squad, args.seed, None)
                relevant = paragraph_flags
            questions = [q for q in task.questions if q["answers"]]
            qa = NotesQA.open(folder, embedder=args.embedder, windows=windows)
            qa.index(progress=False)

            result[name] = {"questions": len(questions)}
            for k1 in args.k1:
                lists = candidates(qa, questions, args.depth, k1)
                scores = scores_of(qa, questions, lists, relevant, settings)
                result[name].update({f"{key} k1={k1}": value for key, value in scores.items()})
            qa.close()
    settings = [f"{s} k1={k1}" for s in settings for k1 in args.k1]
    mean = {
        s: float(np.mean([result[n][s]["recall@5"] for n in ("notes_dev", "squad_dev")]))
        for s in settings
    }
    chosen = max(settings, key=lambda s: round(mean[s], 4))  # ties: the first in grid order
    result["chosen"] = chosen
    result["chosen_scores"] = {n: result[n][chosen] for n in ("notes_dev", "squad_dev")}
    result["mean_recall@5"] = {s: round(v, 4) for s, v in mean.items()}
    result["windows"] = windows.to_dict()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
