"""Calibrate a reader's no-answer threshold on SQuAD v1.1 train questions it was not trained on.

Rebuilds the recipe's seeded train order (as ``training.reader.train_reader`` does), takes the
``--count`` questions after the ``max_train_examples`` it trained on, adds an unanswerable copy of
each (another paragraph of the same article), and prints the threshold that maximises SQuAD v2-style
F1 on them, with the always-answering and always-abstaining references. ``--write`` stores the
threshold in the reader's ``notesqa_reader.json`` when it beats always abstaining by the recipe's
``calibration_min_gain`` (else ``null``: the reader always answers), as training does.

Example:
    $ python benchmarks/calibrate_reader.py --data ../shared/data --recipe mini
    {"null_threshold": -6.34, "questions": 2903, "held_out_f1_with_threshold": 48.41, ...}
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.reader import Reader  # noqa: E402
from training.configs import load_recipe  # noqa: E402
from training.reader import calibrate_null_threshold, useful_threshold  # noqa: E402
from training.squad import load_squad, make_unanswerable  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--recipe", default="mini", help="the recipe the reader was trained with")
    parser.add_argument("--model", help="reader folder (default: the shipped one)")
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--write", action="store_true", help="save the threshold with the reader")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = load_recipe(args.recipe).reader
    _, examples = load_squad(Path(args.data) / "squad" / "train-v1.1.json.gz")
    examples = [e for e in examples if e["answers"] or e["is_impossible"]]
    random.Random(cfg.seed).shuffle(examples)  # the order train_reader used
    held_out = examples[cfg.max_train_examples : cfg.max_train_examples + args.count]
    held_out += make_unanswerable(held_out, 1.0, seed=1)
    reader = Reader.load(args.model)
    threshold, scores = calibrate_null_threshold(reader, held_out)
    stored = useful_threshold(threshold, scores, cfg.calibration_min_gain)
    result = {"null_threshold": threshold, "stored_threshold": stored, "questions": len(held_out)}
    result.update(scores)
    if args.write:
        reader.settings.null_threshold = stored
        folder = Path(args.model) if args.model else None
        if folder is None:
            from models import default_model_path

            folder = default_model_path("reader")
        reader.settings.save(folder)
        result["written_to"] = str(folder)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
