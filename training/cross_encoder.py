"""A cross-encoder that scores how similar two sentences are, the teacher of the silver STS pairs.

A bi-encoder sees each sentence alone; a cross-encoder reads both at once (``[CLS] a [SEP] b
[SEP]``), so every layer can compare their words, and it scores STS far better from the same
checkpoint. It is too slow to search with (one pass per pair), but fast enough to label tens of
thousands of new pairs that the bi-encoder then learns from (``training.silver_pairs``; the
Augmented SBERT recipe of Thakur et al. 2021). The model is ``BertForSequenceClassification``
with one output: a logit whose sigmoid is the similarity in [0, 1], trained with binary cross
entropy against the gold scores (STS-B 0-5 and SICK 1-5 mapped onto [0, 1]).

Example:
    >>> train_cross_encoder(CrossEncoderConfig(), "models/reader", ["sts-train.csv"], "runs/sts-cross")
    PosixPath('runs/sts-cross')
    >>> SimilarityCrossEncoder.load("runs/sts-cross").score([("A man plays.", "A man is playing.")])
    array([0.93], dtype=float32)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from training.allocator import release_free_pages, retain_freed_memory
from training.attention import attention_implementation
from training.checkpoint import StopFlag, resume_step, save_checkpoint
from training.configs import CrossEncoderConfig, to_dict
from training.folders import checkpoint_folder, previous_copy, replace_folder
from training.precision import autocast, use_bf16
from training.schedule import warmup_then_decay
from training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)

ScoredPair = tuple[str, str, float]
SETTINGS_FILE = "notesqa_cross_encoder.json"


def pairs_digest(pairs: list[ScoredPair]) -> str:
    """A short fingerprint of the training pairs, so a checkpoint never resumes on other data."""
    digest = hashlib.sha256()
    for a, b, y in pairs:
        digest.update(f"{a}\t{b}\t{y:.6f}\n".encode())
    return f"{len(pairs)}:{digest.hexdigest()[:16]}"


@dataclass
class SimilarityCrossEncoder:
    """A trained similarity cross-encoder; ``score`` gives each pair's similarity in [0, 1].

    The pair is read in both orders and the two sigmoids averaged, since similarity is symmetric
    and the model, which gives the two segments different type embeddings, is not quite.

    Example:
        >>> teacher = SimilarityCrossEncoder.load("runs/sts-cross")
        >>> teacher.score([("A cat sleeps.", "A cat is sleeping."), ("A cat sleeps.", "Rain.")])
        array([0.91, 0.04], dtype=float32)
    """

    model: torch.nn.Module
    tokenizer: object
    max_seq_length: int = 128
    bf16: bool = False

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> SimilarityCrossEncoder:
        from transformers import AutoModelForSequenceClassification

        folder = Path(folder)
        settings = folder / SETTINGS_FILE
        if not settings.is_file():
            raise FileNotFoundError(
                f"{folder} is not a notesqa cross-encoder (no {settings.name}); train one with "
                "`notesqa train cross-encoder`"
            )
        max_seq_length = json.loads(settings.read_text())["max_seq_length"]
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = AutoModelForSequenceClassification.from_pretrained(str(folder)).to(dev).eval()
        tokenizer = load_tokenizer(folder)
        return cls(model, tokenizer, max_seq_length, use_bf16("auto", dev))

    def logits(self, pairs: list[tuple[str, str]]) -> torch.Tensor:
        """(len(pairs),) raw logits of the pairs in the given order, with gradients if enabled."""
        device = next(self.model.parameters()).device
        batch = self.tokenizer(
            [a for a, _ in pairs],
            [b for _, b in pairs],
            truncation=True,
            max_length=self.max_seq_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with autocast(self.bf16, device):
            return self.model(**batch).logits.float().squeeze(-1)  # (B,)

    @torch.no_grad()
    def score(
        self, pairs: list[tuple[str, str]], batch_size: int = 256, show_progress: bool = False
    ) -> np.ndarray:
        """(len(pairs),) float32 similarities in [0, 1], both orders averaged."""
        was_training = self.model.training
        self.model.eval()
        scores = []
        starts = range(0, len(pairs), batch_size)
        for start in tqdm(starts, desc="scoring pairs", unit="batch", disable=not show_progress):
            chunk = pairs[start : start + batch_size]
            forward = torch.sigmoid(self.logits(chunk))
            backward = torch.sigmoid(self.logits([(b, a) for a, b in chunk]))
            scores.append(((forward + backward) / 2).cpu())
        self.model.train(was_training)
        return torch.cat(scores).numpy().astype(np.float32) if scores else np.zeros(0, np.float32)


def spearman_x100(scorer: SimilarityCrossEncoder, pairs: list[ScoredPair]) -> float:
    """Spearman correlation x 100 of the scorer's similarities with the gold ones."""
    from scipy.stats import spearmanr

    predicted = scorer.score([(a, b) for a, b, _ in pairs])
    return float(100 * spearmanr(predicted, [y for _, _, y in pairs]).statistic)


def batch_order(size: int, batch_size: int, seed: int):
    """Endless index batches, each epoch a fresh shuffle (deterministic from ``seed``)."""
    for epoch in itertools.count():
        order = list(range(size))
        random.Random(seed + epoch).shuffle(order)
        for start in range(0, size - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def train_cross_encoder(
    cfg: CrossEncoderConfig,
    init: str | Path,
    train_pairs: list[ScoredPair],
    out_dir: str | Path,
    dev_pairs: list[ScoredPair] | None = None,
    device: str | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Finetune checkpoint ``init`` (a pretrained BERT or the reader) on scored pairs.

    Each pair is seen in a random order of its two sentences. Every ``cfg.save_every`` steps
    (and on SIGTERM/Ctrl-C or after ``max_minutes``) the run writes ``OUT.checkpoint``; calling it
    again with the same arguments resumes there. ``dev_pairs`` are scored at the end (Spearman x
    100 in ``eval_results.json``). Returns ``out_dir`` when finished, else the checkpoint folder.
    """
    from transformers import AutoModelForSequenceClassification

    if len(train_pairs) < cfg.batch_size:
        raise ValueError(
            f"only {len(train_pairs)} scored pairs for batch_size {cfg.batch_size}; give more "
            "pairs (STS-B sts-train.csv, SICK_train.txt) or lower batch_size"
        )
    bad = [y for _, _, y in train_pairs if not 0.0 <= y <= 1.0]
    if bad:
        raise ValueError(f"scores must lie in [0, 1] (read_scored_pairs maps them), got {bad[0]}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(init)
    retained = dev.type == "cpu" and retain_freed_memory()
    model = AutoModelForSequenceClassification.from_pretrained(
        str(init),
        num_labels=1,
        attn_implementation=attention_implementation(cfg.attention, dev),
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
    ).to(dev)
    scorer = SimilarityCrossEncoder(
        model, tokenizer, cfg.max_seq_length, use_bf16(cfg.precision, dev)
    )
    out = Path(out_dir)
    run_state = {
        "init": str(init),
        "train_pairs": pairs_digest(train_pairs),
        "config": {k: v for k, v in to_dict(cfg).items() if k not in ("save_every", "log_every")},
    }
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    steps = max(1, int(len(train_pairs) * cfg.epochs) // cfg.batch_size)
    warmup = max(1, int(cfg.warmup_ratio * steps))  # linear warm-up, then linear decay to 0
    checkpoints = checkpoint_folder(out)
    first_step = resume_step(checkpoints, model, optimizer, run_state, "cross-encoder")
    batches = itertools.islice(
        batch_order(len(train_pairs), cfg.batch_size, cfg.seed), first_step, None
    )
    model.train()
    bar = tqdm(range(first_step, steps), desc="cross-encoder", unit="step")
    started, running = time.time(), 0.0
    stop = StopFlag()
    try:
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = warmup_then_decay(step, cfg.learning_rate, warmup, steps)
            chunk = [train_pairs[i] for i in next(batches)]
            flips = random.Random(f"{cfg.seed}:{step}")  # per step, so a resume flips alike
            pairs = [(a, b) if flips.random() < 0.5 else (b, a) for a, b, _ in chunk]
            target = torch.tensor([y for _, _, y in chunk], device=dev)  # (B,)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                scorer.logits(pairs), target
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            running = 0.98 * running + 0.02 * loss.item() if step > first_step else loss.item()
            if step % cfg.log_every == 0:
                bar.set_postfix(loss=f"{running:.3f}")
                if retained:
                    release_free_pages()
            out_of_time = max_minutes is not None and (time.time() - started) / 60 >= max_minutes
            if stop.stop or out_of_time:
                save_checkpoint(
                    checkpoints, model, tokenizer, optimizer, {**run_state, "step": step + 1}
                )
                log.warning("cross-encoder stopped at step %d; run it again to resume", step + 1)
                return checkpoints
            if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < steps:
                save_checkpoint(
                    checkpoints, model, tokenizer, optimizer, {**run_state, "step": step + 1}
                )
    finally:
        stop.restore()
    log.info(
        "cross-encoder trained for %d steps in %.0f s", steps - first_step, time.time() - started
    )
    state = {"steps": steps, "init": str(init), "train_pairs": len(train_pairs)}
    if dev_pairs:
        state["dev_spearman"] = round(spearman_x100(scorer, dev_pairs), 2)
        log.info("dev Spearman x 100: %.2f on %d pairs", state["dev_spearman"], len(dev_pairs))
    staged = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    model.eval().save_pretrained(staged)
    tokenizer.save_pretrained(staged)
    (staged / SETTINGS_FILE).write_text(
        json.dumps({"max_seq_length": cfg.max_seq_length}, indent=2) + "\n"
    )
    (staged / "eval_results.json").write_text(json.dumps(state, indent=2) + "\n")
    replace_folder(staged, out)
    for leftover in (checkpoints, previous_copy(checkpoints)):
        shutil.rmtree(leftover, ignore_errors=True)
    return out


__all__ = ["SimilarityCrossEncoder", "spearman_x100", "train_cross_encoder"]
