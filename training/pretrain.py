"""Pretrain a BERT from scratch with masked-language modelling and next-sentence prediction.

The loop is thin; the work is in small pieces: ``build_model`` (a standard `BertForPreTraining`),
``pretraining_loss`` (MLM decoder run only at masked positions, NSP on the pooled [CLS]),
``evaluate`` (held-out documents), and the checkpoint module (atomic, exact resume).

Example:
    >>> cfg = load_recipe("tiny").pretrain
    >>> pretrain(cfg, corpus=["wiki.jsonl.gz"], tokenizer_dir="runs/tok", run_dir="runs/tiny")
    PosixPath('runs/tiny/model')        # BertForPreTraining.from_pretrained() loads it
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import BertConfig, BertForPreTraining

from training.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from training.configs import PretrainConfig, to_dict
from training.precision import autocast, use_bf16
from training.pretraining_data import PretrainingStream, Shards, build_shards, special_token_ids
from training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def build_model(cfg: PretrainConfig, tokenizer) -> BertForPreTraining:
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        hidden_dropout_prob=cfg.hidden_dropout_prob,
        attention_probs_dropout_prob=cfg.attention_probs_dropout_prob,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "sdpa"
    return BertForPreTraining(config)


def pretraining_loss(model: BertForPreTraining, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MLM + NSP loss, running the vocabulary projection only at the M masked positions."""
    out = model.bert(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
    )
    hidden = out.last_hidden_state  # (B, T, H)
    masked = hidden.flatten(0, 1).index_select(0, batch["mlm_positions"])  # (M, H)
    mlm_logits = model.cls.predictions(masked)  # (M, V)
    nsp_logits = model.cls.seq_relationship(out.pooler_output)  # (B, 2)
    mlm_loss = F.cross_entropy(mlm_logits.float(), batch["mlm_labels"])
    nsp_loss = F.cross_entropy(nsp_logits.float(), batch["nsp_labels"])
    return {
        "loss": mlm_loss + nsp_loss, "mlm_loss": mlm_loss, "nsp_loss": nsp_loss,
        "mlm_logits": mlm_logits, "nsp_logits": nsp_logits,
    }


@torch.no_grad()
def evaluate(model, batches: list[dict[str, torch.Tensor]], bf16: bool, device: torch.device) -> dict[str, float]:
    """MLM loss/accuracy and NSP accuracy on fixed held-out batches."""
    model.eval()
    totals = {"mlm_loss": 0.0, "nsp_loss": 0.0, "mlm_correct": 0, "mlm_count": 0, "nsp_correct": 0, "nsp_count": 0}
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(bf16, device):
            out = pretraining_loss(model, batch)
        totals["mlm_loss"] += out["mlm_loss"].item()
        totals["nsp_loss"] += out["nsp_loss"].item()
        totals["mlm_correct"] += (out["mlm_logits"].argmax(-1) == batch["mlm_labels"]).sum().item()
        totals["mlm_count"] += batch["mlm_labels"].numel()
        totals["nsp_correct"] += (out["nsp_logits"].argmax(-1) == batch["nsp_labels"]).sum().item()
        totals["nsp_count"] += batch["nsp_labels"].numel()
    model.train()
    n = max(1, len(batches))
    return {
        "eval_mlm_loss": totals["mlm_loss"] / n,
        "eval_nsp_loss": totals["nsp_loss"] / n,
        "eval_mlm_acc": totals["mlm_correct"] / max(1, totals["mlm_count"]),
        "eval_nsp_acc": totals["nsp_correct"] / max(1, totals["nsp_count"]),
    }


def learning_rate(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up to ``learning_rate``, then linear decay to zero at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    remaining = max(0, cfg.max_steps - step) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.learning_rate * remaining


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate, betas=(0.9, 0.98), eps=1e-6,
    )


def split_documents(num_docs: int, heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of document indices into (train, held-out)."""
    order = np.random.default_rng(seed).permutation(num_docs)
    heldout = min(heldout, num_docs // 5)
    return np.sort(order[heldout:]), np.sort(order[:heldout])


class _StopFlag:
    """Turns SIGTERM/SIGINT into a clean 'checkpoint and stop' at the end of the current step."""

    def __init__(self) -> None:
        self.stop = False
        self._previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not in the main thread
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        log.warning("signal %s: saving a checkpoint and stopping", signum)
        self.stop = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def pretrain(
    cfg: PretrainConfig,
    corpus: list[str | Path] | None,
    tokenizer_dir: str | Path,
    run_dir: str | Path,
    max_minutes: float | None = None,
    device: str | None = None,
) -> Path:
    """Train (or resume) in ``run_dir``; returns the exported model folder once ``max_steps`` is reached."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(tokenizer_dir)
    if not (run / "shards" / "meta.json").exists():
        if not corpus:
            raise ValueError(f"{run} has no shards yet; pass --corpus FILES to build them")
        build_shards(corpus, tokenizer, run / "shards", max_docs=cfg.max_docs, max_chars=cfg.max_chars)
    shards = Shards.load(run / "shards")
    if shards.meta["vocab_size"] != len(tokenizer):
        raise ValueError(
            f"shards in {run / 'shards'} were built with a {shards.meta['vocab_size']}-token vocabulary "
            f"but the tokenizer has {len(tokenizer)}; delete the shards folder to rebuild them"
        )
    train_docs, heldout_docs = split_documents(shards.num_documents, cfg.heldout_docs, cfg.seed)
    stream_args = dict(
        max_seq_length=cfg.max_seq_length, short_seq_prob=cfg.short_seq_prob,
        masked_lm_prob=cfg.masked_lm_prob, max_predictions_per_seq=cfg.max_predictions_per_seq,
        special_ids=special_token_ids(tokenizer),
    )
    train_stream = PretrainingStream(shards, train_docs, seed=cfg.seed, **stream_args)
    eval_batches = []
    if len(heldout_docs) >= 2:
        eval_stream = PretrainingStream(shards, heldout_docs, seed=cfg.seed + 1, **stream_args)
        batches = eval_stream.batches(cfg.batch_size)
        with contextlib.suppress(ValueError):
            eval_batches = [next(batches) for _ in range(cfg.eval_batches)]

    bf16 = use_bf16(cfg.precision, dev)
    log.info("device %s, bf16 autocast %s", dev, bf16)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, tokenizer).to(dev)
    optimizer = make_optimizer(model, cfg)
    step = 0
    found = find_checkpoint(run / "checkpoint")
    if found is not None:
        state = load_checkpoint(found, model, optimizer)
        step = state["step"]
        log.info("resuming from %s at step %d", found, step)
    (run / "recipe.json").write_text(json.dumps(to_dict(cfg), indent=2))

    log_path = run / "log.csv"
    fields = ["step", "tokens", "loss", "mlm_loss", "nsp_loss", "lr", "tokens_per_s",
              "eval_mlm_loss", "eval_nsp_loss", "eval_mlm_acc", "eval_nsp_acc"]
    if not log_path.exists():
        with open(log_path, "w", newline="") as handle:
            csv.writer(handle).writerow(fields)

    batches = train_stream.batches(cfg.batch_size, start_batch=step * cfg.grad_accum)
    stop = _StopFlag()
    started = time.time()
    tokens_seen = 0
    window_tokens, window_start = 0, time.time()
    sums = {"loss": 0.0, "mlm_loss": 0.0, "nsp_loss": 0.0}
    window_steps = 0
    bar = tqdm(total=cfg.max_steps, initial=step, desc="pretrain", unit="step")

    def checkpoint() -> None:
        save_checkpoint(run / "checkpoint", model, tokenizer, optimizer, {"step": step, "config": to_dict(cfg)})

    model.train()
    try:
        while step < cfg.max_steps:
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for _ in range(cfg.grad_accum):
                batch = {k: v.to(dev, non_blocking=True) for k, v in next(batches).items()}
                with autocast(bf16, dev):
                    out = pretraining_loss(model, batch)
                (out["loss"] / cfg.grad_accum).backward()
                n_tokens = int(batch["attention_mask"].sum())
                tokens_seen += n_tokens
                window_tokens += n_tokens
                for key in sums:
                    sums[key] += out[key].item() / cfg.grad_accum
            if not math.isfinite(out["loss"].item()):
                raise FloatingPointError(
                    f"loss became {out['loss'].item()} at step {step + 1}; the last good checkpoint "
                    f"is kept in {run / 'checkpoint'}: lower learning_rate or enable grad clipping"
                )
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_steps += 1
            bar.update()
            row = None
            if step % cfg.log_every == 0:
                elapsed = time.time() - window_start
                row = {"step": step, "tokens": tokens_seen, "lr": lr,
                       "tokens_per_s": window_tokens / max(elapsed, 1e-9),
                       **{k: v / window_steps for k, v in sums.items()}}
                bar.set_postfix(loss=f"{row['loss']:.3f}", mlm=f"{row['mlm_loss']:.3f}",
                                nsp=f"{row['nsp_loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}")
                sums = dict.fromkeys(sums, 0.0)
                window_tokens, window_start, window_steps = 0, time.time(), 0
            if eval_batches and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                metrics = evaluate(model, eval_batches, bf16, dev)
                row = {**(row or {"step": step, "tokens": tokens_seen}), **metrics}
                log.info("step %d: %s", step, {k: round(v, 4) for k, v in metrics.items()})
            if row is not None:
                with open(log_path, "a", newline="") as handle:
                    csv.DictWriter(handle, fieldnames=fields).writerow(row)
            out_of_time = max_minutes is not None and (time.time() - started) / 60 >= max_minutes
            if step % cfg.save_every == 0 or step == cfg.max_steps or stop.stop or out_of_time:
                checkpoint()
            if stop.stop or out_of_time:
                log.info("stopped at step %d; run the same command again to resume", step)
                return run / "checkpoint"
    finally:
        bar.close()
        stop.restore()
    export = run / "model"
    save_checkpoint(export, model, tokenizer, None, {"step": step, "config": to_dict(cfg)})
    log.info("pretraining done: %s", export)
    return export
