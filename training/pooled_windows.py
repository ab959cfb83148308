"""Train the bi-encoder for late chunking: window vectors pooled from one run over the passage.

An index with ``WindowConfig.pooled`` runs each passage once and takes every token window's
vector as the mean of its tokens' final states (``embedder.pooling``); an embedder trained only
on texts encoded alone loses dense Recall@5 0.680 -> 0.573 on notes_dev that way
(docs/EXPERIMENTS.md S6). This stage trains on what such an index computes. Each SQuAD
(question, paragraph) pair runs the paragraph once, cut by ``pooling_plan`` exactly as the index
cuts a passage, and keeps two candidates: the paragraph's own vector and a pooled window that
holds the answer (chosen at random among those that do; the paragraph's own vector when none
does). The loss is in-batch softmax cross-entropy (MNRL, scale 20) over every candidate of the
batch, once with the window as the target and once with the paragraph's own vector, the other
candidate of the same paragraph left out: the index scores both kinds side by side.

Example (needs a trained embedder and SQuAD; ``notesqa train embedder`` with a recipe that sets
``pooled_windows`` runs this):
    >>> from training.configs import load_recipe
    >>> train_pooled_windows(load_recipe("mini-allwiki-embedder-pooled").embedder,
    ...                      "models/embedder", "train-v1.1.json.gz", "runs/pooled")  # doctest: +SKIP
    PosixPath('runs/pooled')
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from embedder import WindowConfig
from embedder.pooling import PoolingPlan, pooling_plans
from embedder.windows import record_trained_windows, untruncated_tokenizer
from training.allocator import release_free_pages, retain_freed_memory
from training.answer_windows import answer_spans
from training.configs import EmbedderConfig, to_dict
from training.embedder_data import split_articles, squad_pairs
from training.finetune_loop import LoopSettings, run_finetuning
from training.folders import checkpoint_folder, replace_folder
from training.precision import autocast, use_bf16
from training.squad import load_squad

log = logging.getLogger(__name__)

SCALE = 20.0  # cosine -> logit, as sentence-transformers' MultipleNegativesRankingLoss


@dataclass(frozen=True)
class PooledPair:
    """One training row: the question, its paragraph's index in the plans, and the row of that
    plan's weights to pool as the positive window (0: the paragraph's own vector)."""

    question: str
    paragraph: int
    window: int


def pooled_pairs(
    examples: list[dict],
    pairs: list[tuple[str, str]],
    tokenizer,
    prompt: str,
    windows: WindowConfig,
    max_length: int,
    seed: int = 0,
) -> tuple[list[PoolingPlan], list[PooledPair]]:
    """Each distinct paragraph's ``PoolingPlan`` and one ``PooledPair`` per ``(question,
    paragraph)``: a pooled window holding the first answer, at random among those that do.

    Example (windows of 4 tokens every 2, no prompt):
        >>> from tokenizers import Tokenizer
        >>> tokenizer = Tokenizer.from_file("models/tokenizer/tokenizer.json")
        >>> paragraph = "Ada Lovelace was born in London. She wrote the first program."
        >>> examples = [{"question": "Where was Ada born?", "context": paragraph,
        ...              "answers": [{"text": "London", "answer_start": 25}]}]
        >>> plans, rows = pooled_pairs(examples, [("Where was Ada born?", paragraph)],
        ...                            tokenizer, "", WindowConfig(4, 2), 64)
        >>> a, b = plans[0].spans[rows[0].window - 1]
        >>> paragraph[a:b]
        'in London. She'
    """
    rng = random.Random(seed)
    spans = answer_spans(examples)
    distinct = list(dict.fromkeys(paragraph for _, paragraph in pairs))  # in order of first use
    plan_of = {paragraph: i for i, paragraph in enumerate(distinct)}
    plans = pooling_plans(tokenizer, distinct, prompt, windows, max_length)  # one batch call
    rows: list[PooledPair] = []
    for question, paragraph in pairs:
        plan = plans[plan_of[paragraph]]
        window = 0
        answers = spans.get((question, paragraph))
        if answers:
            start, end = answers[0]
            holding = [w + 1 for w, (a, b) in enumerate(plan.spans) if a <= start and end <= b]
            window = rng.choice(holding) if holding else 0
        rows.append(PooledPair(question, plan_of[paragraph], window))
    return plans, rows


def in_batch_loss(
    questions: torch.Tensor, own: torch.Tensor, windows: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of each question (B, d) over all 2B candidates (``own`` then ``windows``,
    both (B, d), row i of each from question i's paragraph), once with its window as the target
    and once with its paragraph's own vector; the other candidate of its paragraph is masked.

    Example:
        >>> q = F.normalize(torch.eye(2, 4), dim=1)
        >>> round(in_batch_loss(q, q, q).item(), 4)       # each question is its own candidates
        0.0
    """
    batch = len(questions)
    candidates = torch.cat([own, windows])  # (2B, d)
    logits = SCALE * questions @ candidates.T  # (B, 2B)
    rows = torch.arange(batch, device=questions.device)
    to_window = logits.clone()
    to_window[rows, rows] = float("-inf")  # the paragraph's own vector is not a negative
    to_own = logits.clone()
    to_own[rows, rows + batch] = float("-inf")  # nor its window
    return 0.5 * (F.cross_entropy(to_window, rows + batch) + F.cross_entropy(to_own, rows))


def _mean_pool(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, H) means of ``hidden`` (B, T, H) under ``weights`` (B, T)."""
    sums = weights.sum(dim=1, keepdim=True).clamp(min=1e-9)  # (B, 1)
    return torch.einsum("bt,bth->bh", weights, hidden) / sums


def _padded(sequences: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids right-padded with ``pad_id`` and their (B, T) attention mask."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, s in enumerate(sequences):
        ids[row, : len(s)] = s
        mask[row, : len(s)] = 1
    return ids, mask


def article_batches(
    rows: list[PooledPair], titles: list[str], batch_size: int, seed: int
) -> list[list[int]]:
    """Batches of row indices filled article by article, each paragraph at most once a batch
    (``training.batching.ArticleBatchSampler``'s first epoch)."""
    from datasets import Dataset

    from training.batching import ArticleBatchSampler

    dataset = Dataset.from_dict(
        {"anchor": [r.question for r in rows], "positive": [str(r.paragraph) for r in rows]}
    )
    sampler = ArticleBatchSampler(dataset, batch_size, True, seed=seed, groups=titles)
    return [list(batch) for batch in sampler]


def train_pooled_windows(
    cfg: EmbedderConfig,
    init: str | Path,
    train_data: str | Path,
    out_dir: str | Path,
    device: str | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Train the bi-encoder in ``init`` on pooled answer windows and save it to ``out_dir``
    (sentence-transformers folder, atomically); returns ``out_dir``, or the checkpoint folder
    when stopped (run again to resume)."""
    from training.biencoder import build_sentence_model, retrieval_evaluator

    if cfg.hard_negatives or cfg.sts_only or not cfg.squad or cfg.answer_windows:
        raise ValueError(
            "pooled_windows trains on SQuAD pairs alone: set squad true and hard_negatives, "
            "sts_only and answer_windows off"
        )
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(out_dir)
    checkpoints = checkpoint_folder(out)
    run_state = {
        "init": str(init),
        "train_data": str(train_data),
        "config": {k: v for k, v in to_dict(cfg).items() if k != "save_every"},
    }
    _, examples = load_squad(train_data)
    evaluator = None
    if cfg.eval_articles:
        examples, heldout = split_articles(examples, cfg.eval_articles, cfg.seed)
        evaluator = retrieval_evaluator(heldout, prompts=cfg.prompts)
    pairs = squad_pairs(examples)
    random.Random(cfg.seed).shuffle(pairs)
    if cfg.max_train_pairs:
        pairs = pairs[: cfg.max_train_pairs]
    retained = dev.type == "cpu" and retain_freed_memory()
    model = build_sentence_model(init, cfg.max_seq_length, str(dev), cfg.dropout, cfg.attention)
    if cfg.prompts:
        model.prompts = dict(cfg.prompts)
    tokenizer = untruncated_tokenizer(model.tokenizer)
    if tokenizer is None:
        raise ValueError(f"pooled_windows needs a fast tokenizer (tokenizer.json) in {init}")
    windows = WindowConfig.of(cfg.answer_window_tokens, pooled=True)
    query_prompt = cfg.prompts.get("query", "")
    plans, rows = pooled_pairs(
        examples, pairs, tokenizer, cfg.prompts.get("passage", ""), windows,
        cfg.max_seq_length, cfg.seed,
    )  # fmt: skip
    title_of = {e["context"]: e["title"] for e in examples}
    batches = article_batches(rows, [title_of[p] for _, p in pairs], cfg.batch_size, cfg.seed)
    log.info(
        "%d pairs over %d paragraphs, %d with a pooled answer window; %d batches of %d",
        len(rows), len(plans), sum(r.window > 0 for r in rows), len(batches), cfg.batch_size,
    )  # fmt: skip
    transformer = model[0].auto_model
    pad_id = int(model.tokenizer.pad_token_id or 0)
    bf16 = use_bf16(cfg.precision, dev)
    dims = sorted(set(cfg.matryoshka_dims), reverse=True) or [None]

    def loss_of(batch_ids: list[int]) -> torch.Tensor:
        batch = [rows[i] for b in batch_ids for i in batches[b]]
        questions = model.tokenizer(
            [query_prompt + r.question for r in batch], padding=True, truncation=True,
            max_length=cfg.max_seq_length, return_tensors="pt",
        )  # fmt: skip
        paragraph_ids, mask = _padded(
            [torch.from_numpy(plans[r.paragraph].ids) for r in batch], pad_id
        )  # (B, T)
        window_rows = torch.zeros(mask.shape)  # (B, T)
        for k, r in enumerate(batch):
            weights = plans[r.paragraph].weights[r.window]
            window_rows[k, : len(weights)] = torch.from_numpy(weights)
        with autocast(bf16, dev):
            q_hidden = transformer(
                input_ids=questions["input_ids"].to(dev),
                attention_mask=questions["attention_mask"].to(dev),
            ).last_hidden_state  # (B, Tq, H)
            p_hidden = transformer(
                input_ids=paragraph_ids.to(dev), attention_mask=mask.to(dev)
            ).last_hidden_state  # (B, T, H)
        q = _mean_pool(q_hidden.float(), questions["attention_mask"].to(dev).float())  # (B, H)
        own = _mean_pool(p_hidden.float(), mask.to(dev).float())  # (B, H)
        window = _mean_pool(p_hidden.float(), window_rows.to(dev))  # (B, H)
        losses = [
            in_batch_loss(*(F.normalize(v[:, :dim], dim=1) for v in (q, own, window)))
            for dim in dims
        ]
        return torch.stack(losses).mean()

    epochs_steps = max(1, int(len(batches) * cfg.epochs))
    loop = LoopSettings(
        "pooled windows", epochs_steps, cfg.learning_rate, cfg.warmup_ratio, 1, cfg.seed,
        save_every=cfg.save_every,
    )  # fmt: skip
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=cfg.learning_rate)
    finished = run_finetuning(
        transformer, model.tokenizer, optimizer, len(batches), loss_of, run_state, checkpoints,
        loop, max_minutes, on_log=release_free_pages if retained else None,
    )  # fmt: skip
    if not finished:
        return checkpoints
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.pooled-") as scratch:
        staged = Path(scratch) / "model"
        model.save(str(staged))
        record_trained_windows(staged, windows)  # a new index with it pools its windows
        record = {"pooled_windows": windows.to_dict(), "pairs": len(rows), "steps": epochs_steps}
        if evaluator is not None:
            record["heldout"] = {k: round(float(v), 4) for k, v in evaluator(model).items()}
            log.info("held-out retrieval: %s", record["heldout"])
        (staged / "eval_results.json").write_text(json.dumps(record, indent=2) + "\n")
        replace_folder(staged, out)
    shutil.rmtree(checkpoints, ignore_errors=True)
    log.info("saved the pooled-window embedder to %s", out)
    return out


__all__ = ["PooledPair", "pooled_pairs", "in_batch_loss", "train_pooled_windows"]
