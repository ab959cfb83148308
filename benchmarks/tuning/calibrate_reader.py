"""Calibrate a reader's no-answer threshold on SQuAD v1.1 train questions it was not trained on.

Rebuilds the recipe's seeded train order (as ``training.reader.train_reader`` does), takes the
questions it held out (the first ``calibration_examples``; for a recipe without them, the
``--count`` questions after the ``max_train_examples`` it trained on), adds an unanswerable copy of
each (``--style``, by default the recipe's ``unanswerable_style``; several styles compare how the
choice of negatives moves the threshold), and prints the threshold that maximises SQuAD v2-style
F1 on them (``--no-answer-share`` weighs them so the unanswerable ones count as that share), with
the always-answering and always-abstaining references. With ``--v2-dev`` it also
scores each threshold on SQuAD v2.0 dev (one pass of the reader), beside always abstaining and, as
an upper bound only, the best threshold chosen on dev itself. ``--write`` stores the threshold of
the (single) style in the reader's ``notesqa_reader.json`` when it beats always abstaining by the
recipe's ``calibration_min_gain`` (else ``null``: the reader always answers), as training does.

Example:
    $ python benchmarks/tuning/calibrate_reader.py --recipe mini-allwiki --style other_paragraph \\
        answer_removed --v2-dev ../shared/data/squad/dev-v2.0.json.gz
    {"styles": {"other_paragraph": {"null_threshold": -0.38, "v2_dev_f1": 36.1, ...}, ...},
     "v2_dev": {"always_abstain_f1": 50.07, "dev_best_threshold": ..., "dev_best_f1": ...}}
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rag.reader import Reader  # noqa: E402
from training.configs import load_recipe  # noqa: E402
from training.hard_negatives import MINED  # noqa: E402
from training.reader import (  # noqa: E402
    calibrate_null_threshold,
    choose_threshold,
    no_answer_copies,
    null_margins,
    useful_threshold,
    v2_f1_at,
)
from training.squad import UNANSWERABLE_STYLES, load_squad  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--recipe", default="mini", help="the recipe the reader was trained with")
    parser.add_argument("--model", help="reader folder (default: the shipped one)")
    parser.add_argument(
        "--count",
        type=int,
        default=0,
        help="held-out answerable questions (default: the recipe's calibration_examples, else 1,500)",
    )
    parser.add_argument(
        "--style",
        nargs="+",
        choices=(*UNANSWERABLE_STYLES, MINED),
        help="how the unanswerable copies are made (default: the recipe's unanswerable_style; "
        "mined: of the single-rule copies of a question, the one this reader answers most "
        "confidently)",
    )
    parser.add_argument(
        "--no-answer-share",
        type=float,
        help="weigh the held-out questions so the unanswerable ones count as this share "
        "(default: the recipe's calibration_no_answer_share; 0 = as made)",
    )
    parser.add_argument("--v2-dev", help="SQuAD v2.0 dev JSON(.gz): score each threshold on it")
    parser.add_argument("--write", action="store_true", help="save the threshold with the reader")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = load_recipe(args.recipe).reader
    styles = args.style or [cfg.unanswerable_style]
    share = (
        cfg.calibration_no_answer_share if args.no_answer_share is None else args.no_answer_share
    ) or None  # 0: the questions as made
    if args.write and len(styles) != 1:
        parser.error("--write needs exactly one --style")
    _, examples = load_squad(Path(args.data) / "squad" / "train-v1.1.json.gz")
    examples = [e for e in examples if e["answers"] or e["is_impossible"]]
    random.Random(cfg.seed).shuffle(examples)  # the order train_reader used
    # train_reader held out the first calibration_examples and trained on the next
    # max_train_examples; without a calibration slice, take the questions after those it saw
    start = 0 if cfg.calibration_examples else cfg.max_train_examples
    answerable = examples[start : start + (args.count or cfg.calibration_examples or 1500)]
    reader = Reader.load(args.model)
    dev = null_margins(reader, load_squad(args.v2_dev)[1], desc="v2.0 dev") if args.v2_dev else None
    result: dict = {
        "questions_answerable": len(answerable),
        "no_answer_share": share,
        "styles": {},
    }
    for style in styles:
        held_out = answerable + no_answer_copies(answerable, 1.0, cfg.seed + 1, style, reader)
        threshold, scores = calibrate_null_threshold(reader, held_out, share)
        stored = useful_threshold(threshold, scores, cfg.calibration_min_gain)
        entry = {
            "null_threshold": threshold,
            "stored_threshold": stored,
            "questions": len(held_out),
        }
        entry.update(scores)
        if dev is not None:
            entry["v2_dev_f1"] = round(v2_f1_at(stored, *dev), 2)
        result["styles"][style] = entry
    if dev is not None:
        dev_best_threshold, dev_best_f1 = choose_threshold(*dev)
        result["v2_dev"] = {
            "questions": len(dev[0]),
            "always_abstain_f1": round(v2_f1_at(float("-inf"), *dev), 2),
            "always_answer_f1": round(v2_f1_at(None, *dev), 2),
            # an upper bound for reference: chosen on dev, never used to pick what ships
            "dev_best_threshold": dev_best_threshold,
            "dev_best_f1": round(dev_best_f1, 2),
        }
    if args.write:
        reader.settings.null_threshold = result["styles"][styles[0]]["stored_threshold"]
        folder = Path(args.model) if args.model else None
        if folder is None:
            from models import default_model_path

            folder = default_model_path("reader")
        reader.settings.save(folder)
        result["written_to"] = str(folder)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
