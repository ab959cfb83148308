"""Is the reader a better judge of a paragraph than the embedder? Hard-negative accuracy, same run.

A teacher can only help a student it beats on the student's own task. For every SQuAD question
this benchmark takes its paragraph and the hardest paragraph of the same article that does not
hold the answer (BM25's top one, as ``training.biencoder.squad_triplets`` mines for training), and
asks which of the two each model prefers:

* ``embedder``: cosine of the query vector with each paragraph's vector (prompts applied), the
  baseline;
* ``reader``: ``Reader.relevance``, the best answer span's score minus the reader's no-answer
  score, the cross-encoder view of the same question;

and prints each one's accuracy, their ratio, how often they agree and the spread of their margins
(what a margin-distillation loss such as MarginMSE would hand the student).

Example:
    $ python benchmarks/teacher_agreement.py --data ../shared/data
    {"triplets": 10546, "accuracy": {"embedder": 0.84, "reader": 0.94}, "ratio_reader_to_embedder": 1.12, ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from embedder import Embedder  # noqa: E402
from rag.reader import Reader  # noqa: E402
from training.biencoder import squad_triplets  # noqa: E402
from training.squad import load_squad  # noqa: E402


def quartiles(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    return [round(float(q), 4) for q in np.percentile(finite, [25, 50, 75])] if finite.size else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--split", default="dev-v1.1", help="SQuAD file stem (default dev-v1.1)")
    parser.add_argument("--embedder", help="embedder folder (default: the shipped one)")
    parser.add_argument("--reader", help="reader folder (default: the shipped one)")
    parser.add_argument("--questions", type=int, default=0, help="first N triplets (0 = all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    _, examples = load_squad(args.data / "squad" / f"{args.split}.json.gz")
    triplets = squad_triplets(examples, seed=0)
    if args.questions:
        triplets = triplets[: args.questions]
    questions = [q for q, _, _ in triplets]
    positives = [p for _, p, _ in triplets]
    negatives = [n for _, _, n in triplets]

    started = time.time()
    embedder = Embedder.load(args.embedder)
    query = embedder.encode(questions, kind="query")  # (N, D) unit rows
    cos_pos = (query * embedder.encode(positives, kind="passage")).sum(1)  # (N,)
    cos_neg = (query * embedder.encode(negatives, kind="passage")).sum(1)  # (N,)
    embedder_seconds = time.time() - started

    started = time.time()
    reader = Reader.load(args.reader)
    rel_pos = reader.relevance(list(zip(questions, positives, strict=True)))  # (N,)
    rel_neg = reader.relevance(list(zip(questions, negatives, strict=True)))  # (N,)
    reader_seconds = time.time() - started

    embedder_right = cos_pos > cos_neg
    reader_right = rel_pos > rel_neg
    accuracy = {
        "embedder": round(float(embedder_right.mean()), 4),
        "reader": round(float(reader_right.mean()), 4),
    }
    print(
        json.dumps(
            {
                "split": args.split,
                "triplets": len(triplets),
                "accuracy": accuracy,
                "ratio_reader_to_embedder": round(accuracy["reader"] / accuracy["embedder"], 4),
                "agreement": round(float((embedder_right == reader_right).mean()), 4),
                "reader_right_embedder_wrong": round(
                    float((reader_right & ~embedder_right).mean()), 4
                ),
                "embedder_right_reader_wrong": round(
                    float((embedder_right & ~reader_right).mean()), 4
                ),
                "margin_quartiles": {
                    "embedder": quartiles(cos_pos - cos_neg),
                    "reader": quartiles(rel_pos - rel_neg),
                },
                "seconds": {
                    "embedder": round(embedder_seconds, 1),
                    "reader": round(reader_seconds, 1),
                },
                "threads": args.threads,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
