"""Pretrain a BERT from scratch with masked-language modelling and next-sentence prediction.

The loop is thin; the work is in small pieces: ``build_model`` (a standard `BertForPreTraining`),
``PretrainingHeads`` (MLM decoder run only at masked positions, NSP on the pooled [CLS]),
``vocab_cross_entropy`` (the MLM loss without fp32 copies of the (M, V) logits),
``evaluate`` (held-out documents), ``RunLogger`` (CSV + TensorBoard) and the checkpoint module
(atomic, exact resume). The same function runs data-parallel under
``torchrun --nproc_per_node N -m training.pretrain ...`` or ``torchrun ... $(which notesqa) train
pretrain ...``: DDP with gloo on CPU and NCCL on GPU, each rank collating its own rows of the
global batch, rank 0 alone writing logs and checkpoints.

Example (a run needs a corpus and a tokenizer; the pieces below run on a BERT of 4 tokens):
    >>> pretrain(PretrainConfig(), ["wiki.jsonl.gz"], "runs/tok", "runs/tiny")  # doctest: +SKIP
    PosixPath('runs/tiny/model')
    >>> model = BertForPreTraining(bert_config(PretrainConfig(), vocab_size=4))  # 512 positions
    >>> set_prior_bias(model, np.log(np.array([0.4, 0.3, 0.2, 0.1], dtype=np.float32)))
    >>> model.cls.predictions.decoder.bias.exp().detach().numpy().round(2)    # tied
    array([0.4, 0.3, 0.2, 0.1], dtype=float32)
    >>> tile_position_embeddings(model, 128)   # rows 128..255, 256..383, ... = rows 0..127
    >>> table = model.bert.embeddings.position_embeddings.weight            # (512, H)
    >>> torch.equal(table[384:], table[:128])
    True
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import BertConfig, BertForPreTraining

from training.allocator import release_free_pages, retain_freed_memory
from training.attention import attention_implementation
from training.checkpoint import (
    StopFlag,
    find_checkpoint,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from training.configs import PretrainConfig, to_dict
from training.cross_entropy import vocab_cross_entropy
from training.distributed import init_distributed
from training.precision import autocast, use_bf16
from training.pretraining_data import (
    PretrainingStream,
    Shards,
    build_shards,
    continuation_mask,
    special_token_ids,
)
from training.run_log import RunLogger
from training.schedule import warmup_then_decay
from training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def bert_config(
    cfg: PretrainConfig, vocab_size: int, pad_token_id: int = 0, device: torch.device | None = None
) -> BertConfig:
    """The ``BertConfig`` of ``cfg``'s sizes, with the attention kernel chosen for ``device``."""
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        hidden_dropout_prob=cfg.hidden_dropout_prob,
        attention_probs_dropout_prob=cfg.attention_probs_dropout_prob,
        pad_token_id=pad_token_id,
    )
    config._attn_implementation = attention_implementation(
        cfg.attention, device or torch.device("cpu")
    )
    return config


def build_model(
    cfg: PretrainConfig, tokenizer, device: torch.device | None = None
) -> BertForPreTraining:
    model = BertForPreTraining(bert_config(cfg, len(tokenizer), tokenizer.pad_token_id, device))
    if cfg.zero_token_type_init:
        with torch.no_grad():
            model.bert.embeddings.token_type_embeddings.weight.zero_()  # (2, H)
    return model


def set_prior_bias(model: BertForPreTraining, log_prior: np.ndarray) -> None:
    """Set the MLM decoder bias (tied with ``cls.predictions.decoder.bias``) to ``log_prior`` (V,)."""
    bias = model.cls.predictions.bias  # (V,)
    if log_prior.shape != tuple(bias.shape):
        raise ValueError(f"prior has shape {log_prior.shape}, the decoder bias {tuple(bias.shape)}")
    with torch.no_grad():
        bias.copy_(torch.from_numpy(log_prior))


SLOW_PARAMETERS = ("predictions.transform.", "token_type_embeddings.")


def tile_position_embeddings(model: BertForPreTraining, trained: int) -> None:
    """Copy the first ``trained`` position embeddings over every later one, in blocks.

    Position ``trained + i`` starts as position ``i``, so the local order the model learned holds
    there too (Longformer extended RoBERTa's 512 positions this way); training then separates them.
    The module's example runs it.
    """
    with torch.no_grad():
        table = model.bert.embeddings.position_embeddings.weight  # (max_positions, H)
        for start in range(trained, table.shape[0], trained):
            end = min(start + trained, table.shape[0])
            table[start:end] = table[: end - start]


def is_slow_parameter(name: str) -> bool:
    """Parameters trained at ``slow_lr_scale`` × the learning rate.

    With the full rate, the MLM head's transform and the segment embedding (a vector shared by
    every position) move fastest and keep the encoder at the bag-of-words plateau: on the
    positional toy task BERT stays at chance for 900 steps, while with both slowed by 10× (and
    the segment embedding starting at zero) it solves it in 300-450 steps.

    >>> is_slow_parameter("cls.predictions.transform.dense.weight")
    True
    >>> is_slow_parameter("bert.encoder.layer.0.attention.self.query.weight")
    False
    """
    return any(part in name for part in SLOW_PARAMETERS)


class PretrainingHeads(nn.Module):
    """BERT encoder + MLM head at the masked positions only + NSP head, as one module for DDP.

    The full-vocabulary projection over every position is most of a small model's work; running it
    on the M masked positions alone (M ~ 15% of B*T) gives the same loss and gradients.
    """

    def __init__(self, model: BertForPreTraining) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        mlm_positions: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        hidden = out.last_hidden_state  # (B, T, H)
        masked = hidden.flatten(0, 1).index_select(0, mlm_positions)  # (M, H)
        mlm_logits = self.model.cls.predictions(masked)  # (M, V)
        nsp_logits = self.model.cls.seq_relationship(out.pooler_output)  # (B, 2)
        return mlm_logits, nsp_logits


def pretraining_loss(
    heads: nn.Module,
    batch: dict[str, torch.Tensor],
    mlm_count: float | None = None,
    nsp_count: float | None = None,
    mlm_cross_entropy=vocab_cross_entropy,
) -> dict[str, torch.Tensor]:
    """MLM + NSP loss; sums are divided by the (global) counts, defaulting to this batch's.

    ``mlm_cross_entropy(logits (M, V), labels (M,))`` returns the summed MLM loss.

    Under DDP pass the global masked-token and example counts times ``1 / world_size``'s inverse
    (see ``pretrain``), so that DDP's gradient averaging yields exactly the single-process mean.
    """
    if isinstance(heads, BertForPreTraining):
        heads = PretrainingHeads(heads)
    mlm_logits, nsp_logits = heads(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["mlm_positions"]
    )
    mlm_sum = mlm_cross_entropy(mlm_logits, batch["mlm_labels"])  # fp32, no (M, V) fp32 copies
    nsp_sum = F.cross_entropy(nsp_logits.float(), batch["nsp_labels"], reduction="sum")
    mlm_loss = mlm_sum / (mlm_count or batch["mlm_labels"].numel())
    nsp_loss = nsp_sum / (nsp_count or batch["nsp_labels"].numel())
    return {
        "loss": mlm_loss + nsp_loss,
        "mlm_loss": mlm_loss,
        "nsp_loss": nsp_loss,
        "mlm_sum": mlm_sum.detach(),
        "nsp_sum": nsp_sum.detach(),
        "mlm_logits": mlm_logits,
        "nsp_logits": nsp_logits,
    }


@torch.no_grad()
def evaluate(
    model, batches: list[dict[str, torch.Tensor]], bf16: bool, device: torch.device
) -> dict[str, float]:
    """MLM loss/accuracy and NSP accuracy on fixed held-out batches."""
    model.eval()
    totals = {
        "mlm_loss": 0.0,
        "nsp_loss": 0.0,
        "mlm_correct": 0,
        "mlm_count": 0,
        "nsp_correct": 0,
        "nsp_count": 0,
    }
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
    """Linear warm-up to ``learning_rate``, then linear (or cosine, one-cycle) decay to 0 at ``max_steps``."""
    return warmup_then_decay(
        step, cfg.learning_rate, cfg.warmup_steps, cfg.max_steps, schedule=cfg.schedule
    )


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.AdamW:
    """AdamW with four groups: (decay | no decay) × (normal | slow); each group's ``lr_scale``
    multiplies the scheduled learning rate."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        decays = param.ndim >= 2 and "LayerNorm" not in name
        groups.setdefault((decays, is_slow_parameter(name)), []).append(param)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": cfg.weight_decay if decays else 0.0,
                "lr_scale": cfg.slow_lr_scale if slow else 1.0,
            }
            for (decays, slow), params in sorted(groups.items())
        ],
        lr=cfg.learning_rate,
        betas=(0.9, 0.98),
        eps=1e-6,
    )


def split_documents(num_docs: int, heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of document indices into (train, held-out)."""
    order = np.random.default_rng(seed).permutation(num_docs)
    heldout = min(heldout, num_docs // 5)
    return np.sort(order[heldout:]), np.sort(order[:heldout])


def pretrain(
    cfg: PretrainConfig,
    corpus: list[str | Path] | None,
    tokenizer_dir: str | Path,
    run_dir: str | Path,
    max_minutes: float | None = None,
    device: str | None = None,
) -> Path:
    """Train (or resume) in ``run_dir``; returns the exported model folder once ``max_steps`` is reached.

    Under ``torchrun`` every rank calls this; ``cfg.batch_size`` is the global batch.
    """
    run = Path(run_dir)
    ddp, dev = init_distributed(device)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(tokenizer_dir)
    if ddp.is_main:
        run.mkdir(parents=True, exist_ok=True)
        if not (run / "shards" / "meta.json").exists():
            if not corpus:
                raise ValueError(f"{run} has no shards yet; pass --corpus FILES to build them")
            build_shards(
                corpus, tokenizer, run / "shards", max_docs=cfg.max_docs, max_chars=cfg.max_chars
            )
    if ddp.world_size > 1:
        dist.barrier()  # the other ranks wait for rank 0's shards
    shards = Shards.load(run / "shards")
    if shards.meta["vocab_size"] != len(tokenizer):
        raise ValueError(
            f"shards in {run / 'shards'} were built with a {shards.meta['vocab_size']}-token vocabulary "
            f"but the tokenizer has {len(tokenizer)}; delete the shards folder to rebuild them"
        )
    train_docs, heldout_docs = split_documents(shards.num_documents, cfg.heldout_docs, cfg.seed)
    stream_args = dict(
        max_seq_length=cfg.max_seq_length,
        short_seq_prob=cfg.short_seq_prob,
        masked_lm_prob=cfg.masked_lm_prob,
        max_predictions_per_seq=cfg.max_predictions_per_seq,
        special_ids=special_token_ids(tokenizer),
        continuation=continuation_mask(tokenizer) if cfg.whole_word_masking else None,
    )
    train_stream = PretrainingStream(shards, train_docs, seed=cfg.seed, **stream_args)
    eval_batches = []
    if ddp.is_main and len(heldout_docs) >= 2:
        eval_stream = PretrainingStream(shards, heldout_docs, seed=cfg.seed + 1, **stream_args)
        batches = eval_stream.batches(cfg.batch_size)
        with contextlib.suppress(ValueError):
            eval_batches = [next(batches) for _ in range(cfg.eval_batches)]

    bf16 = use_bf16(cfg.precision, dev)
    if ddp.is_main:
        log.info(
            "device %s x %d, bf16 autocast %s, %s attention",
            dev,
            ddp.world_size,
            bf16,
            attention_implementation(cfg.attention, dev),
        )
    retained = dev.type == "cpu" and cfg.retain_freed_memory and retain_freed_memory()
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, tokenizer, dev)
    if cfg.prior_bias_init:  # a resumed run overwrites it with the checkpoint's
        set_prior_bias(model, shards.log_unigram_prior(len(tokenizer)))
    model = model.to(dev)
    optimizer = make_optimizer(model, cfg)
    step = 0
    resumed_tokens = 0
    found = find_checkpoint(run / "checkpoint")
    if found is not None:
        state = load_checkpoint(found, model, optimizer)
        step = state["step"]
        resumed_tokens = int(state.get("tokens", 0))
        if ddp.is_main:
            log.info("resuming from %s at step %d", found, step)
    elif cfg.init_from:
        load_weights(cfg.init_from, model)  # new phase: fresh optimizer, schedule and step count
        if cfg.tile_positions:
            tile_position_embeddings(model, cfg.tile_positions)
        if ddp.is_main:
            log.info("starting from the weights of %s", cfg.init_from)
    if not ddp.is_main:  # different dropout on each rank
        torch.manual_seed(cfg.seed + 1_000_003 * ddp.rank + step)
    heads: nn.Module = PretrainingHeads(model)
    if ddp.world_size > 1:
        heads = DistributedDataParallel(heads, broadcast_buffers=False)

    logger = RunLogger(run) if ddp.is_main else None
    if ddp.is_main:
        (run / "recipe.json").write_text(json.dumps(to_dict(cfg), indent=2))

    batches = train_stream.batches(
        cfg.batch_size, start_batch=step * cfg.grad_accum, rank=ddp.rank, world_size=ddp.world_size
    )
    stop = StopFlag()
    started = time.time()
    tokens_seen = resumed_tokens  # counted across resumes
    window_tokens, window_start = 0, time.time()
    sums = {"loss": 0.0, "mlm_loss": 0.0, "nsp_loss": 0.0}
    window_steps = 0
    bar = tqdm(
        total=cfg.max_steps, initial=step, desc="pretrain", unit="step", disable=not ddp.is_main
    )

    def checkpoint() -> None:
        if ddp.is_main:
            save_checkpoint(
                run / "checkpoint",
                model,
                tokenizer,
                optimizer,
                {"step": step, "tokens": tokens_seen, "config": to_dict(cfg)},
            )

    model.train()
    try:
        while step < cfg.max_steps:
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            step_sums = [
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ]  # mlm sum, masked tokens, nsp sum, examples, tokens
            for micro in range(cfg.grad_accum):
                batch = {k: v.to(dev, non_blocking=True) for k, v in next(batches).items()}
                # global counts make the DDP-averaged gradient the single-process mean
                mlm_count, nsp_count = ddp.all_sum(
                    [float(batch["mlm_labels"].numel()), float(batch["nsp_labels"].numel())]
                )
                # DDP all-reduces gradients only on the last micro-step of an accumulation
                sync = ddp.world_size == 1 or micro == cfg.grad_accum - 1
                with contextlib.nullcontext() if sync else heads.no_sync():
                    with autocast(bf16, dev):
                        out = pretraining_loss(
                            heads, batch, mlm_count / ddp.world_size, nsp_count / ddp.world_size
                        )
                    (out["loss"] / cfg.grad_accum).backward()
                local = [
                    out["mlm_sum"].item(),
                    float(batch["mlm_labels"].numel()),
                    out["nsp_sum"].item(),
                    float(batch["nsp_labels"].numel()),
                    float(batch["attention_mask"].sum()),
                ]
                step_sums = [a + b for a, b in zip(step_sums, local, strict=True)]
            mlm_sum, masked, nsp_sum, examples, n_tokens = ddp.all_sum(step_sums)
            mlm_loss, nsp_loss = mlm_sum / max(masked, 1), nsp_sum / max(examples, 1)
            tokens_seen += int(n_tokens)
            window_tokens += int(n_tokens)
            for key, value in (
                ("loss", mlm_loss + nsp_loss),
                ("mlm_loss", mlm_loss),
                ("nsp_loss", nsp_loss),
            ):
                sums[key] += value
            if not math.isfinite(mlm_loss + nsp_loss):
                raise FloatingPointError(
                    f"loss became {mlm_loss + nsp_loss} at step {step + 1}; the last good checkpoint "
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
                row = {
                    "step": step,
                    "tokens": tokens_seen,
                    "lr": lr,
                    "tokens_per_s": window_tokens / max(elapsed, 1e-9),
                    **{k: v / window_steps for k, v in sums.items()},
                }
                bar.set_postfix(
                    loss=f"{row['loss']:.3f}",
                    mlm=f"{row['mlm_loss']:.3f}",
                    nsp=f"{row['nsp_loss']:.3f}",
                    tok_s=f"{row['tokens_per_s']:.0f}",
                )
                sums = dict.fromkeys(sums, 0.0)
                if retained:  # bound the heap that retaining freed memory lets grow
                    release_free_pages()
                window_tokens, window_start, window_steps = 0, time.time(), 0
            if eval_batches and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                metrics = evaluate(model, eval_batches, bf16, dev)
                row = {**(row or {"step": step, "tokens": tokens_seen}), **metrics}
                log.info("step %d: %s", step, {k: round(v, 4) for k, v in metrics.items()})
            if row is not None and logger is not None:
                logger.write(row)
            out_of_time = max_minutes is not None and (time.time() - started) / 60 >= max_minutes
            # every rank must agree to stop at the same step
            stopping = ddp.all_sum([float(stop.stop or out_of_time)])[0] > 0
            if step % cfg.save_every == 0 or step == cfg.max_steps or stopping:
                checkpoint()
            if stopping:
                if ddp.is_main:
                    log.info("stopped at step %d; run the same command again to resume", step)
                return run / "checkpoint"
    finally:
        bar.close()
        stop.restore()
        if logger is not None:
            logger.close()
        if ddp.world_size > 1:
            dist.barrier()
    export = run / "model"
    if ddp.is_main:
        save_checkpoint(
            export,
            model,
            tokenizer,
            None,
            {"step": step, "tokens": tokens_seen, "config": to_dict(cfg)},
        )
        log.info("pretraining done: %s", export)
    if ddp.world_size > 1:
        dist.barrier()
    return export
