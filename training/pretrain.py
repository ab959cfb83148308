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
from training.distributed import init_distributed
from training.precision import autocast, use_bf16
from training.pretraining_data import (
    PretrainingStream,
    Shards,
    build_shards,
    continuation_mask,
    special_token_ids,
)
from training.pretraining_objective import PretrainingHeads, evaluate, pretraining_loss
from training.run_log import RunLogger
from training.schedule import (
    SCHEDULES,
    budget_learning_rate,
    ramped_accumulation,
    warmup_then_decay,
)
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


def learning_rate(step: int, cfg: PretrainConfig, tokens: int = 0) -> float:
    """The rate at optimizer ``step`` with ``tokens`` seen: with a ``token_budget``, by the share
    of it done (``budget_learning_rate``); else warm-up, then decay to 0 at ``max_steps``."""
    if cfg.token_budget:
        return budget_learning_rate(
            step, tokens / cfg.token_budget, cfg.learning_rate, cfg.warmup_steps, cfg.schedule
        )
    return warmup_then_decay(
        step, cfg.learning_rate, cfg.warmup_steps, cfg.max_steps, schedule=cfg.schedule
    )


def check_schedule(cfg: PretrainConfig) -> None:
    """Fail before any work on a schedule the recipe cannot run."""
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; use one of {SCHEDULES}")
    if not cfg.token_budget and (cfg.schedule == "triangle" or cfg.batch_ramp):
        raise ValueError(
            "schedule 'triangle' and batch_ramp follow the token budget; set token_budget "
            "(tokens to pretrain on) in the recipe's pretrain section"
        )


def save_snapshots(
    run: Path, model, tokenizer, cfg: PretrainConfig, state: dict, evaluate_now
) -> None:
    """Copy the model to ``run/snapshots/tokens-N`` for each ``snapshot_tokens`` N passed and not
    yet kept, with the held-out scores of that moment in its ``trainer_state.json``."""
    for target in cfg.snapshot_tokens:
        folder = run / "snapshots" / f"tokens-{target}"
        if state["tokens"] >= target and find_checkpoint(folder) is None:
            save_checkpoint(folder, model, tokenizer, None, {**state, **evaluate_now()})


def decays_weight(name: str, param: torch.nn.Parameter) -> bool:
    """BERT's rule: weight decay for matrices, none for biases and LayerNorm."""
    return param.ndim >= 2 and "LayerNorm" not in name


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.AdamW:
    """AdamW with four groups: (decay | no decay) × (normal | slow); each group's ``lr_scale``
    multiplies the scheduled learning rate."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        groups.setdefault((decays_weight(name, param), is_slow_parameter(name)), []).append(param)
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
    """Train (or resume) in ``run_dir``; returns the exported model folder once ``token_budget``
    tokens (or, without a budget, ``max_steps`` steps) are done.

    Under ``torchrun`` every rank calls this; ``cfg.batch_size`` is the global batch.
    """
    check_schedule(cfg)
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
    if cfg.max_tokens_per_char:
        kept = train_docs[shards.tokens_per_char()[train_docs] <= cfg.max_tokens_per_char]
        if ddp.is_main:
            log.info(
                "training on %d of %d documents (at most %.2f tokens per character)",
                len(kept),
                len(train_docs),
                cfg.max_tokens_per_char,
            )
        train_docs = kept
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
    micro_batches = 0
    found = find_checkpoint(run / "checkpoint")
    if found is not None:
        state = load_checkpoint(found, model, optimizer)
        step = state["step"]
        resumed_tokens = int(state.get("tokens", 0))
        micro_batches = int(state.get("micro_batches", step * cfg.grad_accum))
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
        cfg.batch_size, start_batch=micro_batches, rank=ddp.rank, world_size=ddp.world_size
    )
    stop = StopFlag()
    started = time.time()
    tokens_seen = resumed_tokens  # counted across resumes
    window_tokens, window_start = 0, time.time()
    sums = {"loss": 0.0, "mlm_loss": 0.0, "nsp_loss": 0.0}
    window_steps = 0
    budget = cfg.token_budget
    bar = tqdm(
        total=budget or cfg.max_steps,
        initial=tokens_seen if budget else step,
        desc="pretrain",
        unit="tok" if budget else "step",
        unit_scale=bool(budget),
        disable=not ddp.is_main,
    )

    def finished() -> bool:
        return tokens_seen >= budget if budget else step >= cfg.max_steps

    def trainer_state() -> dict:
        return {
            "step": step,
            "tokens": tokens_seen,
            "micro_batches": micro_batches,
            "config": to_dict(cfg),
        }

    def checkpoint() -> None:
        if ddp.is_main:
            save_checkpoint(
                run / "checkpoint",
                model,
                tokenizer,
                optimizer,
                trainer_state(),
            )

    model.train()
    try:
        while not finished():
            lr = learning_rate(step, cfg, tokens_seen)
            accum = (
                ramped_accumulation(tokens_seen / budget, cfg.grad_accum, cfg.batch_ramp)
                if budget
                else cfg.grad_accum
            )
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            step_sums = [
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ]  # mlm sum, masked tokens, nsp sum, examples, tokens
            for micro in range(accum):
                batch = {k: v.to(dev, non_blocking=True) for k, v in next(batches).items()}
                # global counts make the DDP-averaged gradient the single-process mean
                mlm_count, nsp_count = ddp.all_sum(
                    [float(batch["mlm_labels"].numel()), float(batch["nsp_labels"].numel())]
                )
                # DDP all-reduces gradients only on the last micro-step of an accumulation
                sync = ddp.world_size == 1 or micro == accum - 1
                with contextlib.nullcontext() if sync else heads.no_sync():
                    with autocast(bf16, dev):
                        out = pretraining_loss(
                            heads, batch, mlm_count / ddp.world_size, nsp_count / ddp.world_size
                        )
                    (out["loss"] / accum).backward()
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
            micro_batches += accum
            window_steps += 1
            bar.update(int(n_tokens) if budget else 1)
            row = None
            if step % cfg.log_every == 0:
                elapsed = time.time() - window_start
                row = {
                    "step": step,
                    "tokens": tokens_seen,
                    "lr": lr,
                    "batch": accum * cfg.batch_size,
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
            if eval_batches and (step % cfg.eval_every == 0 or finished()):
                metrics = evaluate(model, eval_batches, bf16, dev)
                row = {**(row or {"step": step, "tokens": tokens_seen}), **metrics}
                log.info("step %d: %s", step, {k: round(v, 4) for k, v in metrics.items()})
            if row is not None and logger is not None:
                logger.write(row)
            out_of_time = max_minutes is not None and (time.time() - started) / 60 >= max_minutes
            # every rank must agree to stop at the same step
            stopping = ddp.all_sum([float(stop.stop or out_of_time)])[0] > 0
            if ddp.is_main and cfg.snapshot_tokens:
                save_snapshots(
                    run,
                    model,
                    tokenizer,
                    cfg,
                    trainer_state(),
                    lambda: evaluate(model, eval_batches, bf16, dev) if eval_batches else {},
                )
            if step % cfg.save_every == 0 or finished() or stopping:
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
            trainer_state(),
        )
        log.info("pretraining done: %s", export)
    if ddp.world_size > 1:
        dist.barrier()
    return export
