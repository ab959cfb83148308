"""SQuAD dev F1 of readers finetuned from checkpoints at several pretraining budgets, in one run.

Each checkpoint (a ``BertForPreTraining`` folder; its ``trainer_state.json`` gives the tokens seen)
is finetuned as a reader with the same small, fixed budget (the recipe's reader settings with
``--train-examples`` questions, no calibration) and scored on the first ``--dev-questions`` of
SQuAD v1.1 dev, and on ``--dev-questions`` SQuAD v1.1 *train* questions it was not trained on
(``heldout_train_f1``). The points form the curve of reader F1 against pretraining tokens that
says whether more pretraining is the next thing to buy. ``--learning-rates`` also finetunes the
last checkpoint at those rates, so the recipe's rate is chosen on held-out train questions, never
on dev. Readers are written to a temporary folder.

Example:
    $ python benchmarks/reader_vs_pretraining.py --data ../shared/data --recipe mini-long \\
        --checkpoints runs/mini/model runs/mini-long/model
    {"points": [{"checkpoint": "snap-1000", "pretraining_tokens": 4017000, "f1": ...}, ...], ...}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.reader import Reader  # noqa: E402
from training.configs import load_recipe  # noqa: E402
from training.reader import evaluate_reader, train_reader  # noqa: E402
from training.squad import load_squad  # noqa: E402


def pretraining_tokens(checkpoint: Path) -> int | None:
    """Tokens the checkpoint was pretrained on, from its (or its run's) ``trainer_state.json``."""
    for state in (
        checkpoint / "trainer_state.json",
        checkpoint.parent / "checkpoint" / "trainer_state.json",
    ):
        if state.exists():
            tokens = json.loads(state.read_text()).get("tokens")  # older runs lack it
            if tokens is not None:
                return int(tokens)
    log = checkpoint.parent / "log.csv"  # the run's training log: tokens of its last row
    if log.exists():
        rows = log.read_text().strip().splitlines()
        return (
            int(rows[-1].split(",")[rows[0].split(",").index("tokens")]) if len(rows) > 1 else None
        )
    return None


def write_heldout_train(train_path: Path, cfg, count: int, out: Path) -> Path:
    """A SQuAD file of ``count`` train questions that ``train_reader(cfg)`` does not train on.

    ``train_reader`` shuffles the answerable questions with ``cfg.seed`` and trains on the first
    ``max_train_examples`` (after ``calibration_examples``); these are the ones right after them.
    """
    _, examples = load_squad(train_path)
    examples = [e for e in examples if e["answers"] or e["is_impossible"]]
    random.Random(cfg.seed).shuffle(examples)
    first = cfg.calibration_examples + cfg.max_train_examples
    data = [
        {
            "title": e["title"],
            "paragraphs": [
                {
                    "context": e["context"],
                    "qas": [{"id": e["id"], "question": e["question"], "answers": e["answers"]}],
                }
            ],
        }
        for e in examples[first : first + count]
    ]
    out.write_text(json.dumps({"version": "1.1", "data": data}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--recipe", default="mini-long", help="reader settings to finetune with")
    parser.add_argument("--checkpoints", nargs="+", required=True, type=Path)
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--dev-questions", type=int, default=1000)
    parser.add_argument(
        "--learning-rates", nargs="*", type=float, default=[], help="also sweep these on the last"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    squad = Path(args.data) / "squad"
    cfg = dataclasses.replace(
        load_recipe(args.recipe).reader,
        max_train_examples=args.train_examples,
        unanswerable_ratio=0.0,
        calibration_examples=0,
    )
    runs = [(checkpoint, cfg) for checkpoint in args.checkpoints]
    runs += [
        (args.checkpoints[-1], dataclasses.replace(cfg, learning_rate=lr))
        for lr in args.learning_rates
        if lr != cfg.learning_rate
    ]
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        heldout = write_heldout_train(
            squad / "train-v1.1.json.gz", cfg, args.dev_questions, Path(tmp) / "heldout.json"
        )
        for i, (checkpoint, run_cfg) in enumerate(runs):
            start = time.perf_counter()
            out = train_reader(
                run_cfg, checkpoint, squad / "train-v1.1.json.gz", Path(tmp) / f"r{i}"
            )
            reader = Reader.load(out)
            dev = evaluate_reader(reader, squad / "dev-v1.1.json.gz", limit=args.dev_questions)
            train_f1 = evaluate_reader(reader, heldout)["f1"]
            points.append(
                {
                    "checkpoint": str(checkpoint),
                    "pretraining_tokens": pretraining_tokens(checkpoint),
                    "learning_rate": run_cfg.learning_rate,
                    "exact_match": round(dev["exact_match"], 2),
                    "f1": round(dev["f1"], 2),
                    "heldout_train_f1": round(train_f1, 2),
                    "finetune_and_eval_s": round(time.perf_counter() - start, 1),
                }
            )
            print(json.dumps(points[-1]), file=sys.stderr, flush=True)
    result = {
        "points": points,
        "reader_train_examples": args.train_examples,
        "dev_questions": args.dev_questions,
        "recipe": args.recipe,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
