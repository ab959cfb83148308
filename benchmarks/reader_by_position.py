"""SQuAD v1.1 dev F1 by where the answer sits in the reader's window, for several readers.

A base pretrained at sequence 128 has untrained position embeddings past 128; a second phase at
256 trains them. This shows whether a reader finetuned from either base answers better early in
the window (question + context tokens before the answer < 128) or late (128-255, >= 256).

Example:
    $ python benchmarks/reader_by_position.py --data ../shared/data/squad/dev-v1.1.json.gz \
        --models ~/runs/reader-cont ~/runs/reader-256 --questions 2000
    {"questions": 2000, "models": {"…/reader-cont": {"<128": {"f1": 36.46, "questions": 1551},
      "128-255": {...}, ">=256": {...}, "all": {...}}, ...}}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.metrics import f1_score  # noqa: E402
from rag.reader import Reader  # noqa: E402
from training.reader import predict_squad  # noqa: E402
from training.squad import load_squad  # noqa: E402


def answer_positions(examples: list[dict], tokenizer) -> list[int]:
    """Token position of each first gold answer in a window that starts with [CLS] question [SEP]."""
    positions = []
    for example in examples:
        start = example["answers"][0]["answer_start"]
        question = len(tokenizer(example["question"])["input_ids"])  # [CLS] q [SEP]
        before = tokenizer(example["context"][:start], add_special_tokens=False)["input_ids"]
        positions.append(question + len(before))
    return positions


def bucket(position: int) -> str:
    return "<128" if position < 128 else ("128-255" if position < 256 else ">=256")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="SQuAD v1.1 dev JSON(.gz)")
    parser.add_argument("--models", nargs="+", required=True, help="reader folders")
    parser.add_argument(
        "--questions", type=int, default=2000, help="every 5th dev question, this many"
    )
    args = parser.parse_args(argv)
    _, examples = load_squad(args.data)
    examples = examples[::5][: args.questions]
    result: dict = {"questions": len(examples), "models": {}}
    for folder in args.models:
        reader = Reader.load(folder)
        positions = answer_positions(examples, reader.tokenizer)
        predictions = predict_squad(reader, examples, allow_abstain=False)
        scores: dict[str, list[float]] = {"all": []}
        for example, position in zip(examples, positions, strict=True):
            f1 = max(f1_score(predictions[example["id"]], g["text"]) for g in example["answers"])
            scores.setdefault(bucket(position), []).append(f1)
            scores["all"].append(f1)
        result["models"][folder] = {
            name: {"f1": round(100 * sum(v) / len(v), 2), "questions": len(v)}
            for name, v in scores.items()
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
