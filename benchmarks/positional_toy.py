"""Can a model learn to use word order from scratch? A purely positional masked-token toy task.

Every token of a random sequence appears twice in a row ("a a b b c c ..."); one of each of 8
pairs per row is masked, so a masked token is predictable only from its neighbour (chance:
1 / 490). Three small models (2 layers, 128 hidden, 2 heads, tied decoder), same data, same
AdamW, warm-up and clipping:

* ``pretraining``: ``BertForPreTraining`` through ``training.pretrain.pretraining_loss`` (MLM at
  masked positions + NSP, here with random NSP labels), as notesqa pretrains;
* ``masked_lm``: Hugging Face ``BertForMaskedLM`` with its own ``labels`` loss (no NSP head);
* ``torch``: ``torch.nn.TransformerEncoder`` (post-LN) with learned positions: the reference.

Prints JSON: masked-token accuracy every ``--every`` steps per model. Used to find why the shipped
base model ignores word order (see models/MODEL_CARD.md).

Example:
    $ python benchmarks/positional_toy.py --steps 900 --models pretraining masked_lm torch
    {"pretraining": {"300": 0.004, ...}, "masked_lm": {...}, "torch": {"300": 1.0, ...}, ...}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, BertForPreTraining

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.pretrain import pretraining_loss  # noqa: E402

VOCAB, LENGTH, BATCH, HIDDEN, MASK_ID = 500, 64, 32, 128, 3


def toy_batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, mask), each (B, T): doubled tokens, one of 8 pairs per row masked."""
    base = rng.integers(10, VOCAB, size=(BATCH, LENGTH // 2))
    targets = np.repeat(base, 2, axis=1)  # (B, T)
    mask = np.zeros_like(targets, dtype=bool)
    for row in range(BATCH):
        pairs = rng.choice(LENGTH // 2, size=8, replace=False)
        mask[row, 2 * pairs + rng.integers(0, 2, size=8)] = True
    inputs = np.where(mask, MASK_ID, targets)
    return inputs, targets, mask


class TorchEncoder(torch.nn.Module):
    """Reference: PyTorch's post-LN encoder with learned positions and a tied decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = torch.nn.Embedding(VOCAB, HIDDEN)
        self.positions = torch.nn.Embedding(LENGTH, HIDDEN)
        for table in (self.tokens, self.positions):
            torch.nn.init.normal_(table.weight, std=0.02)
        layer = torch.nn.TransformerEncoderLayer(
            HIDDEN, 2, 4 * HIDDEN, dropout=0.0, activation="gelu", batch_first=True
        )
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(HIDDEN)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.norm(self.tokens(ids) + self.positions(torch.arange(ids.shape[1])))
        return self.encoder(hidden) @ self.tokens.weight.T  # (B, T, V)


def bert_config(dropout: float) -> BertConfig:
    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=4 * HIDDEN,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def run(kind: str, steps: int, lr: float, warmup: int, dropout: float, every: int) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if kind == "pretraining":
        model = BertForPreTraining(bert_config(dropout))
    elif kind == "masked_lm":
        model = BertForMaskedLM(bert_config(dropout))
    else:
        model = TorchEncoder()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6)
    curve = {}
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, step / warmup)
        inputs, targets, mask = (torch.from_numpy(a) for a in toy_batch(rng))
        labels = targets[mask]  # (M,)
        if kind == "pretraining":
            flat = mask.flatten().nonzero().squeeze(1)  # (M,) index in B*T
            batch = {
                "input_ids": inputs,
                "attention_mask": torch.ones_like(inputs),
                "token_type_ids": torch.zeros_like(inputs),
                "mlm_positions": flat,
                "mlm_labels": labels,
                "nsp_labels": torch.from_numpy(rng.integers(0, 2, size=BATCH)),
            }
            out = pretraining_loss(model, batch)
            loss, logits = out["loss"], out["mlm_logits"]  # logits (M, V)
        elif kind == "masked_lm":
            out = model(input_ids=inputs, labels=torch.where(mask, targets, -100))
            loss, logits = out.loss, out.logits[mask]
        else:
            logits = model(inputs)[mask]
            loss = F.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % every == 0:
            curve[str(step)] = round(float((logits.argmax(-1) == labels).float().mean()), 3)
            print(kind, step, curve[str(step)], file=sys.stderr, flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["pretraining", "masked_lm", "torch"],
        choices=["pretraining", "masked_lm", "torch"],
    )
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--every", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {
        kind: run(kind, args.steps, args.lr, args.warmup, args.dropout, args.every)
        for kind in args.models
    }
    result.update(steps=args.steps, lr=args.lr, warmup=args.warmup, dropout=args.dropout)
    result["chance"] = round(1 / (VOCAB - 10), 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
