"""End-to-end notes QA benchmark: SQuAD v1.1 dev as a notes folder, every question through NotesQA.

The 48 dev articles become 48 Markdown files (``# title`` then the paragraphs), indexed by the
real pipeline (chunking, embedding, FAISS + SQLite + BM25). Each dev question is then

* retrieved in each mode (dense, bm25, hybrid): a passage is relevant when it overlaps the
  question's own paragraph in its file; Recall@1/5/20 and MRR@10 over passages;
* asked (default retrieval mode + reader): EM/F1 of the top answer against the gold answers, with the
  official SQuAD v1.1 rules (an abstention scores 0), the share of questions the reader abstained
  on (all of them have an answer in the notes) and the ``always_answer`` EM/F1 of the same
  pipeline that never abstains (the abstained questions asked again with ``null_threshold=None``;
  where the reader answered, its answer does not depend on the threshold).

Also printed: indexing passages/s, ``ask`` latency p50/p95 (one warm question at a time) and the
peak resident memory of the process.

Example:
    $ python benchmarks/notes_qa.py --data ../shared/data --limit 2000
    {"retrieval": {"dense": {...}, "bm25": {...}, "hybrid": {...}}, "exact_match": ..., "f1": ...,
     "abstained": ..., "always_answer": {"exact_match": ..., "f1": ...},
     "index_passages_per_s": ..., "ask_latency_ms": {"p50": ..., "p95": ...}, "peak_rss_mb": ...}
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.retrieval import add_window_options, window_options  # noqa: E402
from rag.metrics import retrieval_scores, squad_v1_scores  # noqa: E402
from rag.pipeline import NotesQA  # noqa: E402
from training.squad import read_squad_json  # noqa: E402


def write_notes(data: list[dict], folder: Path) -> list[dict]:
    """One Markdown file per article; returns questions with their file and paragraph span."""
    questions = []
    for n, article in enumerate(data):
        name = f"{n:02d}-{''.join(c if c.isalnum() else '-' for c in article['title'])[:40]}.md"
        text = f"# {article['title'].replace('_', ' ')}\n\n"
        for paragraph in article["paragraphs"]:
            start = len(text)
            text += paragraph["context"].strip() + "\n\n"
            for qa in paragraph["qas"]:
                questions.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "source": name,
                        "span": (start, len(text) - 2),
                    }
                )
        (folder / name).write_text(text, encoding="utf-8")
    return questions


def relevance_ranks(hits, question: dict) -> list[int]:
    """1 where a hit overlaps the question's paragraph, else 0 (in rank order)."""
    lo, hi = question["span"]
    return [int(h.source == question["source"] and h.start < hi and h.end > lo) for h in hits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument(
        "--limit", type=int, default=0, help="only the first N questions (a quick run)"
    )
    parser.add_argument("--embedder", help="default: the shipped one")
    parser.add_argument("--reader", help="default: the shipped one")
    parser.add_argument("-k", type=int, default=5, help="passages the reader reads per question")
    add_window_options(parser, "every passage")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    windows = window_options(args)

    data = read_squad_json(Path(args.data) / "squad" / "dev-v1.1.json.gz")
    with tempfile.TemporaryDirectory(prefix="notesqa-bench-") as tmp:
        notes = Path(tmp) / "notes"
        notes.mkdir()
        questions = write_notes(data, notes)
        if args.limit:
            questions = questions[: args.limit]
        qa = NotesQA.open(notes, embedder=args.embedder, reader=args.reader, windows=windows)
        _ = (qa.embedder, qa.reader)  # load the models before timing
        summary = qa.index(progress=False)
        index_rate = summary.chunks / summary.seconds

        result: dict = {"retrieval": {}}
        depth = 20
        for mode in ("dense", "bm25", "hybrid"):
            rankings, gold = [], []
            for q in questions:
                flags = relevance_ranks(qa.search(q["question"], k=depth, mode=mode), q)
                # retrieval_scores wants ids: relevant hits are id 0, others their rank
                rankings.append([0 if f else r + 1 for r, f in enumerate(flags)])
                gold.append(0)
            scores = retrieval_scores(rankings, gold, ks=(1, 5, 20), mrr_at=10)
            result["retrieval"][mode] = {k: round(v, 4) for k, v in scores.items()}

        predictions, always_predictions, latencies = {}, {}, []
        for q in questions:
            start = time.perf_counter()
            answers = qa.ask(q["question"], k=args.k, top_answers=1)  # the default mode
            latencies.append((time.perf_counter() - start) * 1000)
            predictions[q["id"]] = answers[0].text if answers else ""
        for q in questions:  # the same reader, never abstaining: what extraction alone scores
            if predictions[q["id"]]:  # answering, the top answer does not depend on the threshold
                always_predictions[q["id"]] = predictions[q["id"]]
                continue
            answers = qa.ask(q["question"], k=args.k, top_answers=1, null_threshold=None)
            always_predictions[q["id"]] = answers[0].text if answers else ""
        asked = {q["id"] for q in questions}
        subset = [
            {
                **article,
                "paragraphs": [
                    {**p, "qas": [qa_ for qa_ in p["qas"] if qa_["id"] in asked]}
                    for p in article["paragraphs"]
                ],
            }
            for article in data
        ]
        scores = squad_v1_scores(subset, predictions)
        always = squad_v1_scores(subset, always_predictions)
        result.update(
            {
                "exact_match": round(scores["exact_match"], 2),
                "f1": round(scores["f1"], 2),
                "abstained": round(sum(not t for t in predictions.values()) / len(predictions), 4),
                "always_answer": {
                    "exact_match": round(always["exact_match"], 2),
                    "f1": round(always["f1"], 2),
                },
                "index_passages_per_s": round(index_rate, 1),
                "ask_latency_ms": {
                    "p50": round(float(np.percentile(latencies, 50)), 1),
                    "p95": round(float(np.percentile(latencies, 95)), 1),
                },
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "questions": len(questions),
                "files": summary.files,
                "passages": summary.chunks,
                "vectors": summary.vectors,
                "windows": windows.to_dict(),
                "k": args.k,
                "threads": args.threads,
            }
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
