"""The pretraining pilot's reader proxy: SQuAD F1 of readers finetuned from pretraining snapshots.

Each checkpoint (a pretraining run's ``snapshots/tokens-N`` or ``model`` folder) is finetuned as a
reader with the shipped first-stage reader recipe (``mini-allwiki-reader128``: 128-token windows,
stride 64, lr 3e-4, 2 epochs) on one fixed, seeded sample of ``--train-questions`` SQuAD v1.1
train questions (answerable only: the proxy scores v1.1), once per ``--seeds`` finetuning seed,
and scored on one fixed, seeded sample of ``--dev-questions`` v1.1 dev questions, always
answering. Beside each F1 it prints what the checkpoint's run logged when it was taken: tokens
seen, held-out MLM loss and accuracy. Finetunes take minutes each (about 12 on a 2-core EPYC
Zen 4 at 20,000 questions), so every finished (checkpoint, seed) is appended to ``--results``
at once and skipped by a rerun: a cut-off session loses one finetune at most.

Example:
    $ python benchmarks/tuning/pretraining_proxy.py --data ../shared/data \\
        --checkpoints ~/runs/pilot-today/snapshots/tokens-50000000 \\
        --results ~/runs/pilot/proxy.jsonl
    {"points": [{"checkpoint": ".../tokens-50000000", "tokens": 50000127, "eval_mlm_loss": ...,
                 "f1": [41.2, 40.3], "f1_mean": 40.75, "f1_spread": 0.9}], ...}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from notes_qa import sample_squad  # noqa: E402

from rag.reader import Reader  # noqa: E402
from training.configs import load_recipe  # noqa: E402
from training.reader import train_reader  # noqa: E402
from training.squad_eval import evaluate_reader  # noqa: E402


def snapshot_scores(checkpoint: Path) -> dict:
    """Tokens seen and held-out MLM scores stored with the checkpoint by its pretraining run."""
    state_path = checkpoint / "trainer_state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    return {
        key: state.get(key)
        for key in ("tokens", "step", "eval_mlm_loss", "eval_mlm_acc", "eval_nsp_acc")
    }


def read_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(results: list[dict], checkpoints: list[Path]) -> list[dict]:
    """One point per checkpoint: its scores, F1 per seed, mean and spread (max - min)."""
    points = []
    for checkpoint in checkpoints:
        rows = [r for r in results if r["checkpoint"] == str(checkpoint)]
        if not rows:
            continue
        f1 = [r["f1"] for r in sorted(rows, key=lambda r: r["seed"])]
        points.append(
            {
                "checkpoint": str(checkpoint),
                **{k: v for k, v in rows[0].items() if k not in ("seed", "f1", "exact_match")},
                "seeds": [r["seed"] for r in sorted(rows, key=lambda r: r["seed"])],
                "f1": f1,
                "f1_mean": round(statistics.mean(f1), 2),
                "f1_spread": round(max(f1) - min(f1), 2),
            }
        )
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", type=Path)
    parser.add_argument("--checkpoints", nargs="+", required=True, type=Path)
    parser.add_argument("--recipe", default="mini-allwiki-reader128", help="reader settings")
    parser.add_argument("--train-questions", type=int, default=20_000)
    parser.add_argument("--dev-questions", type=int, default=2_000)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument(
        "--results", required=True, type=Path, help="JSON lines, appended; rerun skips done rows"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    squad = args.data / "squad"
    missing = [str(c) for c in args.checkpoints if not (c / "config.json").exists()]
    if missing:
        parser.error(f"not model folders (no config.json): {', '.join(missing)}")
    base = dataclasses.replace(
        load_recipe(args.recipe).reader,
        max_train_examples=0,
        skip_train_examples=0,
        unanswerable_ratio=0.0,
        calibration_examples=0,
        save_every=0,
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["checkpoint"], r["seed"]) for r in read_results(args.results)}
    with tempfile.TemporaryDirectory() as tmp:
        train = sample_squad(
            squad / "train-v1.1.json.gz", args.train_questions, Path(tmp) / "train.json"
        )
        dev = sample_squad(squad / "dev-v1.1.json.gz", args.dev_questions, Path(tmp) / "dev.json")
        for checkpoint in args.checkpoints:
            for seed in args.seeds:
                if (str(checkpoint), seed) in done:
                    continue
                started = time.perf_counter()
                out = Path(tmp) / f"reader-{len(done)}-{seed}"
                train_reader(dataclasses.replace(base, seed=seed), checkpoint, train, out)
                scores = evaluate_reader(Reader.load(out), dev, always_answer=True)
                row = {
                    "checkpoint": str(checkpoint),
                    **snapshot_scores(checkpoint),
                    "seed": seed,
                    "exact_match": round(scores["exact_match"], 2),
                    "f1": round(scores["f1"], 2),
                    "train_questions": args.train_questions,
                    "dev_questions": args.dev_questions,
                    "recipe": args.recipe,
                    "finetune_and_eval_s": round(time.perf_counter() - started, 1),
                }
                with open(args.results, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(json.dumps(row), file=sys.stderr, flush=True)
    points = summarise(read_results(args.results), args.checkpoints)
    print(json.dumps({"points": points, "results": str(args.results)}, indent=2))


if __name__ == "__main__":
    main()
