"""Can a model learn to use word order from scratch? A purely positional masked-token toy task.

Every token of a random sequence appears twice in a row ("a a b b c c ..."); one of each of 8
pairs per row is masked, so a masked token is predictable only from its neighbour (chance:
1 / 490; with ``--zipf`` tokens follow a Zipfian law as words do, and always guessing the most
frequent token scores 0.15: the unigram plateau real pretraining stalls on). Small models (2 layers, 128 hidden, 2 heads, tied decoder), same data, same AdamW,
warm-up and clipping; the BERT ones see two segments (token types 0 and 1) as in NSP data:

* ``pretraining``: plain ``BertForPreTraining`` (Hugging Face init, one learning rate) through
  ``training.pretrain.pretraining_loss`` (MLM at masked positions + NSP, random NSP labels);
* ``notesqa``: the same through ``training.pretrain.build_model`` and ``make_optimizer``, i.e.
  token-type embeddings starting at zero and the MLM head transform + token-type embeddings at
  ``slow_lr_scale`` (0.1) times the learning rate, and the MLM decoder bias starting at the log
  token frequencies (``prior_bias_init``): the fixes notesqa pretrains with;
* ``masked_lm``: Hugging Face ``BertForMaskedLM`` with its own ``labels`` loss (no NSP head);
* ``torch``: ``torch.nn.TransformerEncoder`` (post-LN) with learned positions: the reference.

Prints JSON: masked-token accuracy every ``--every`` steps per model. Used to find why the shipped
base model ignores word order (see models/MODEL_CARD.md).

Example:
    $ python benchmarks/positional_toy.py --steps 450 --every 150 --seeds 0 1 --zipf
    {"pretraining": {"seed0": {"150": 0.0, ...}, ...}, "notesqa": {...}, ..., "solved": {...}}
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
from training.configs import PretrainConfig  # noqa: E402
from training.pretrain import (  # noqa: E402
    build_model,
    make_optimizer,
    pretraining_loss,
    set_prior_bias,
)

VOCAB, LENGTH, BATCH, HIDDEN, MASK_ID = 500, 64, 32, 128, 3


def token_probabilities(zipf: bool) -> np.ndarray:
    """(V,) how often each id is drawn: uniform over ids 10.., or Zipfian (p ~ 1 / rank) like text."""
    weights = 1.0 / np.arange(1, VOCAB - 10 + 1) if zipf else np.ones(VOCAB - 10)
    return np.concatenate([np.zeros(10), weights / weights.sum()])


def toy_batch(
    rng: np.random.Generator, probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, mask), each (B, T): doubled tokens, one of 8 pairs per row masked."""
    base = rng.choice(VOCAB, size=(BATCH, LENGTH // 2), p=probs)
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


TOY_SIZES = dict(
    hidden_size=HIDDEN,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=4 * HIDDEN,
    max_position_embeddings=128,
)


def bert_config(dropout: float) -> BertConfig:
    return BertConfig(
        vocab_size=VOCAB,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        **TOY_SIZES,
    )


class ToyTokenizer:
    """The two attributes ``build_model`` reads from a tokenizer."""

    pad_token_id = 0

    def __len__(self) -> int:
        return VOCAB


def notesqa_model(
    lr: float, dropout: float, probs: np.ndarray
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    cfg = PretrainConfig(
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        learning_rate=lr,
        slow_lr_scale=0.1,
        zero_token_type_init=True,
        **TOY_SIZES,
    )
    model = build_model(cfg, ToyTokenizer())
    smoothed = probs + 1e-6  # as Shards.log_unigram_prior smooths unseen ids
    set_prior_bias(model, np.log(smoothed / smoothed.sum()).astype(np.float32))
    return model, make_optimizer(model, cfg)


def run(
    kind: str,
    seed: int,
    steps: int,
    lr: float,
    warmup: int,
    dropout: float,
    every: int,
    zipf: bool = False,
) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if kind == "notesqa":
        model, optimizer = notesqa_model(lr, dropout, token_probabilities(zipf))
    else:
        if kind == "pretraining":
            model = BertForPreTraining(bert_config(dropout))
        elif kind == "masked_lm":
            model = BertForMaskedLM(bert_config(dropout))
        else:
            model = TorchEncoder()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6)
    model.train()
    segments = torch.from_numpy((np.arange(LENGTH) >= LENGTH // 2).astype(np.int64))  # (T,)
    curve = {}
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, step / warmup) * group.get("lr_scale", 1.0)
        inputs, targets, mask = (
            torch.from_numpy(a) for a in toy_batch(rng, token_probabilities(zipf))
        )
        labels = targets[mask]  # (M,)
        if kind in ("pretraining", "notesqa"):
            flat = mask.flatten().nonzero().squeeze(1)  # (M,) index in B*T
            batch = {
                "input_ids": inputs,
                "attention_mask": torch.ones_like(inputs),
                "token_type_ids": segments.expand_as(inputs).contiguous(),
                "mlm_positions": flat,
                "mlm_labels": labels,
                "nsp_labels": torch.from_numpy(rng.integers(0, 2, size=BATCH)),
            }
            out = pretraining_loss(model, batch)
            loss, logits = out["loss"], out["mlm_logits"]  # logits (M, V)
        elif kind == "masked_lm":
            out = model(
                input_ids=inputs,
                token_type_ids=segments.expand_as(inputs).contiguous(),
                labels=torch.where(mask, targets, -100),
            )
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
            print(kind, seed, step, curve[str(step)], file=sys.stderr, flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["pretraining", "notesqa", "masked_lm", "torch"],
        choices=["pretraining", "notesqa", "masked_lm", "torch"],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--every", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--zipf",
        action="store_true",
        help="draw tokens by a Zipfian law as in text (predicting the most frequent token then "
        "scores ~0.15: the unigram plateau)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {
        kind: {
            f"seed{seed}": run(
                kind, seed, args.steps, args.lr, args.warmup, args.dropout, args.every, args.zipf
            )
            for seed in args.seeds
        }
        for kind in args.models
    }
    # a seed "solves" the task when its last measured accuracy is above 0.9
    result["solved"] = {
        kind: sum(list(curve.values())[-1] > 0.9 for curve in result[kind].values())
        for kind in args.models
    }
    result.update(
        seeds=args.seeds,
        steps=args.steps,
        lr=args.lr,
        warmup=args.warmup,
        dropout=args.dropout,
        zipf=args.zipf,
    )
    result["chance"] = round(float(token_probabilities(args.zipf).max()), 4)  # most frequent token
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
