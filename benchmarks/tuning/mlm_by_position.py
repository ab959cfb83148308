"""Held-out masked-token accuracy by position: does a model use positions it was never trained at?

BERT pretrained most steps at sequence 128 and the last 10% at 512, because position embeddings
past the pretraining length are never trained, while SQuAD windows and passages are longer. This
scores pretrained checkpoints on the same held-out masked batches (documents the run kept out,
seeded masks) at ``--seq-length`` and reports MLM loss and accuracy per position bucket.

Example:
    $ python benchmarks/tuning/mlm_by_position.py --shards ~/runs/shards-all \
        --models ~/runs/allwikicont/model ~/runs/aw256/model --seq-length 256
    {"seq_length": 256, "buckets": ["0-127", "128-255"], "models": {"…/model": {"0-127":
      {"mlm_acc": 0.41, "mlm_loss": 3.5, "masked": 5210}, ...}}}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import BertForPreTraining

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.pretrain import split_documents  # noqa: E402
from training.pretraining_data import PretrainingStream, Shards, special_token_ids  # noqa: E402
from training.pretraining_objective import PretrainingHeads  # noqa: E402
from training.tokenizer import load_tokenizer  # noqa: E402


def heldout_batches(shards_dir: Path, tokenizer, seq_length: int, batches: int, batch_size: int):
    """The pretraining run's held-out documents (200, seed 0) as fixed masked batches."""
    shards = Shards.load(shards_dir)
    _, heldout = split_documents(shards.num_documents, 200, 0)
    stream = PretrainingStream(
        shards,
        heldout,
        seed=1,
        max_seq_length=seq_length,
        short_seq_prob=0.0,
        masked_lm_prob=0.15,
        max_predictions_per_seq=int(seq_length * 0.15) + 1,
        special_ids=special_token_ids(tokenizer),
    )
    stream_batches = stream.batches(batch_size)
    return [next(stream_batches) for _ in range(batches)]


@torch.no_grad()
def score(model_dir: str, batches, bucket: int) -> dict[str, dict[str, float]]:
    model = BertForPreTraining.from_pretrained(model_dir).eval()
    heads = PretrainingHeads(model)
    sums: dict[int, list[float]] = {}
    for batch in batches:
        logits, _ = heads(
            batch["input_ids"],
            batch["attention_mask"],
            batch["token_type_ids"],
            batch["mlm_positions"],
        )  # (M, V)
        seq_length = batch["input_ids"].shape[1]
        position = batch["mlm_positions"] % seq_length  # (M,) position inside its row
        loss = F.cross_entropy(logits.float(), batch["mlm_labels"], reduction="none")  # (M,)
        correct = logits.argmax(-1) == batch["mlm_labels"]  # (M,)
        for b in (position // bucket).unique().tolist():
            rows = position // bucket == b
            acc = sums.setdefault(b, [0.0, 0.0, 0.0])
            acc[0] += loss[rows].sum().item()
            acc[1] += correct[rows].sum().item()
            acc[2] += rows.sum().item()
    return {
        f"{b * bucket}-{(b + 1) * bucket - 1}": {
            "mlm_loss": round(s[0] / s[2], 4),
            "mlm_acc": round(s[1] / s[2], 4),
            "masked": int(s[2]),
        }
        for b, s in sorted(sums.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", required=True, help="the pretraining run's shards folder")
    parser.add_argument("--models", nargs="+", required=True, help="BertForPreTraining folders")
    parser.add_argument("--tokenizer", default="models/tokenizer")
    parser.add_argument("--seq-length", type=int, default=256)
    parser.add_argument("--bucket", type=int, default=128, help="positions per bucket")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    tokenizer = load_tokenizer(args.tokenizer)
    batches = heldout_batches(
        Path(args.shards), tokenizer, args.seq_length, args.batches, args.batch_size
    )
    result = {
        "seq_length": args.seq_length,
        "models": {m: score(m, batches, args.bucket) for m in args.models},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
