"""Finetune the pretrained BERT as a SQuAD extractive reader (start/end span head).

Features follow HF's ``run_qa.py``: question + context windows of ``max_seq_length`` with a
``doc_stride`` overlap and offset mappings; a window that does not contain the answer is trained
to point at [CLS] (index 0). Evaluation runs the same ``rag.reader.Reader`` that the notes
pipeline uses and scores with ``rag.metrics`` (official SQuAD rules).

Example (needs a pretrained BERT and SQuAD; ``notesqa train reader`` runs this):
    >>> from training.configs import load_recipe
    >>> train_reader(load_recipe("tiny").reader, "runs/tiny/model", "train-v1.1.json.gz",
    ...              "runs/reader")                                        # doctest: +SKIP
    PosixPath('runs/reader')
    >>> from training.squad_eval import evaluate_reader
    >>> evaluate_reader(Reader.load("runs/reader"), "dev-v1.1.json.gz")["f1"]  # doctest: +SKIP
    12.3
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import BertForQuestionAnswering

from rag.reader import (
    READER_SETTINGS,
    Reader,
    ReaderSettings,
    encode_windows,
    question_limit,
    truncate_question,
)
from training.allocator import release_free_pages, retain_freed_memory
from training.attention import attention_implementation
from training.checkpoint import save_checkpoint
from training.configs import ReaderConfig, to_dict
from training.finetune_loop import LoopSettings, run_finetuning
from training.folders import checkpoint_folder, previous_copy
from training.hard_negatives import MINED, hardest_per_question, negative_candidates
from training.precision import autocast, use_bf16
from training.squad import check_unanswerable_style, load_squad, make_unanswerable
from training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def check_reader_style(style: str, init: str | Path | None = None) -> None:
    """Raise a ValueError unless ``style`` is a ``make_unanswerable`` style or ``mined``, and,
    for ``mined``, ``init`` is a trained reader (mining needs its answers)."""
    check_unanswerable_style(style, also=(MINED,))
    if style == MINED and init is not None and not (Path(init) / READER_SETTINGS).exists():
        raise ValueError(
            f"unanswerable_style 'mined' keeps the copies a trained reader answers most "
            f"confidently, but {init} is not a reader ({READER_SETTINGS} missing); pass a reader "
            "folder as --init, or pick a rule-made style"
        )


def no_answer_copies(
    examples: list[dict], ratio: float, seed: int, style: str, reader: Reader | None = None
) -> list[dict]:
    """Unanswerable copies of ``ratio`` of ``examples``: by rule (``make_unanswerable``), or
    for ``mined`` the candidate of each question that ``reader`` most wants to answer."""
    if style != MINED:
        return make_unanswerable(examples, ratio, seed, style=style)
    if reader is None:
        raise ValueError("unanswerable_style 'mined' needs a reader to mine with")
    candidates = negative_candidates(examples, ratio, seed)
    margins = null_margins(reader, candidates, desc="mining")[0]
    return hardest_per_question(candidates, margins)


def mined_copies_cached(
    cache: Path, key: dict, examples: list[dict], cfg: ReaderConfig, reader: Reader
) -> list[dict]:
    """``no_answer_copies`` for training, kept in ``cache`` (JSON) so that a resumed run does
    not mine again; a cache written for another run (``key``) is ignored."""
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            log.info("reusing %d mined negatives from %s", len(saved["negatives"]), cache)
            return saved["negatives"]
    negatives = no_answer_copies(
        examples, cfg.unanswerable_ratio, cfg.seed, cfg.unanswerable_style, reader
    )
    staged = cache.with_name(cache.name + ".tmp")
    staged.write_text(json.dumps({"key": key, "negatives": negatives}))
    os.replace(staged, cache)
    return negatives


def train_features(examples: list[dict], tokenizer, cfg: ReaderConfig) -> list[dict]:
    """Windows with start/end token labels (0 = [CLS] when the answer is not inside)."""
    features = []
    batch = 256
    # long questions are cut as at inference, so every window keeps more context than the stride
    limit = question_limit(ReaderSettings(cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length))
    for b in range(0, len(examples), batch):
        chunk = examples[b : b + batch]
        enc = encode_windows(
            tokenizer,
            [truncate_question(tokenizer, e["question"].lstrip(), limit) for e in chunk],
            [e["context"] for e in chunk],
            cfg.max_seq_length,
            cfg.doc_stride,
        )
        for i, offsets in enumerate(enc["offset_mapping"]):
            example = chunk[enc["overflow_to_sample_mapping"][i]]
            seq_ids = enc.sequence_ids(i)
            start_pos = end_pos = 0
            if example["answers"]:
                answer = example["answers"][0]
                char_start = answer["answer_start"]
                char_end = char_start + len(answer["text"])
                ctx = [t for t, s in enumerate(seq_ids) if s == 1]
                # the answer must lie wholly inside this window, else the label is [CLS]
                if ctx and offsets[ctx[0]][0] <= char_start and offsets[ctx[-1]][1] >= char_end:
                    start_pos = next(t for t in ctx if offsets[t][1] > char_start)
                    end_pos = next(t for t in reversed(ctx) if offsets[t][0] < char_end)
            features.append(
                {
                    "input_ids": enc["input_ids"][i],
                    "token_type_ids": enc["token_type_ids"][i],
                    "start_positions": start_pos,
                    "end_positions": end_pos,
                }
            )
    return features


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)  # (B, T)
    types = torch.zeros_like(ids)  # (B, T)
    mask = torch.zeros_like(ids)  # (B, T)
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        ids[row, :n] = torch.tensor(f["input_ids"])
        types[row, :n] = torch.tensor(f["token_type_ids"])
        mask[row, :n] = 1
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": mask,
        "start_positions": torch.tensor([f["start_positions"] for f in features]),
        "end_positions": torch.tensor([f["end_positions"] for f in features]),
    }


def reader_checkpoint_dir(out_dir: str | Path) -> Path:
    """Where an unfinished reader run keeps its resumable checkpoint: ``OUT.checkpoint``."""
    return checkpoint_folder(out_dir)


def train_reader(
    cfg: ReaderConfig,
    init: str | Path,
    train_data: str | Path,
    out_dir: str | Path,
    device: str | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Finetune checkpoint ``init`` on SQuAD ``train_data``; saves a reader folder at ``out_dir``.

    Every ``cfg.save_every`` steps (and on SIGTERM/Ctrl-C or after ``max_minutes``) the run
    writes ``OUT.checkpoint`` (weights, AdamW moments, RNG, step); calling it again with the same
    arguments resumes there exactly. Returns ``out_dir`` when finished, else the checkpoint folder.
    """
    check_reader_style(cfg.unanswerable_style, init)  # fail before minutes of loading
    if cfg.calibration_no_answer_share:
        check_no_answer_share(cfg.calibration_no_answer_share)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(init)
    _, examples = load_squad(train_data)
    examples = [e for e in examples if e["answers"] or e["is_impossible"]]
    random.Random(cfg.seed).shuffle(examples)
    # held-out questions (whole articles would be stricter; questions suffice for a threshold)
    calibration, examples = (
        examples[: cfg.calibration_examples],
        examples[cfg.calibration_examples :],
    )
    examples = examples[cfg.skip_train_examples :]
    if cfg.max_train_examples:
        examples = examples[: cfg.max_train_examples]
    retained = dev.type == "cpu" and retain_freed_memory()
    model = BertForQuestionAnswering.from_pretrained(
        str(init),
        attn_implementation=attention_implementation(cfg.attention, dev),
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
    ).to(dev)
    out = Path(out_dir)
    settings_that_matter = {
        k: v for k, v in to_dict(cfg).items() if k not in ("save_every", "log_every")
    }
    run_state = {"init": str(init), "train_data": str(train_data), "config": settings_that_matter}
    if cfg.unanswerable_style == MINED:  # with the init reader, before it learns from them
        init_reader = Reader(model, tokenizer, ReaderSettings.load(Path(init)))
        cache = out.with_name(f".{out.name}.mined-negatives.json")
        negatives = mined_copies_cached(cache, run_state, examples, cfg, init_reader)
        model.train()
    else:
        negatives = no_answer_copies(
            examples, cfg.unanswerable_ratio, cfg.seed, cfg.unanswerable_style
        )
    examples = examples + negatives
    features = train_features(examples, tokenizer, cfg)
    log.info(
        "%d questions (%d without answer) -> %d training windows",
        len(examples),
        len(negatives),
        len(features),
    )
    bf16 = use_bf16(cfg.precision, dev)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    steps = max(1, int(len(features) * cfg.epochs) // cfg.batch_size)
    checkpoint_dir = reader_checkpoint_dir(out)

    def loss_of(rows: list[int]) -> torch.Tensor:
        batch = collate([features[i] for i in rows], tokenizer.pad_token_id)
        with autocast(bf16, dev):
            return model(**{k: v.to(dev) for k, v in batch.items()}).loss

    loop = LoopSettings(
        "reader", steps, cfg.learning_rate, cfg.warmup_ratio, cfg.batch_size, cfg.seed,
        cfg.log_every, cfg.save_every, checkpoint_last=True,  # a stop while calibrating resumes
    )  # fmt: skip
    finished = run_finetuning(
        model, tokenizer, optimizer, len(features), loss_of, run_state, checkpoint_dir, loop,
        max_minutes, on_log=release_free_pages if retained else None,  # bound the heap
    )  # fmt: skip
    if not finished:
        return checkpoint_dir
    settings = ReaderSettings(
        max_seq_length=cfg.max_seq_length,
        doc_stride=cfg.doc_stride,
        max_query_length=cfg.max_query_length,
    )
    state = {"steps": steps, "init": str(init)}
    if calibration:
        reader = Reader(model.eval(), tokenizer, settings)
        held_out = calibration + no_answer_copies(
            calibration, 1.0, cfg.seed + 1, cfg.unanswerable_style, reader
        )
        threshold, scores = calibrate_null_threshold(
            reader, held_out, cfg.calibration_no_answer_share or None
        )
        settings.null_threshold = useful_threshold(threshold, scores, cfg.calibration_min_gain)
        state["calibration"] = {
            "questions": len(held_out),
            "best_threshold": threshold,
            "stored_threshold": settings.null_threshold,
            **scores,
        }
        log.info(
            "no-answer threshold %.3f on %d held-out questions: %s; stored: %s",
            threshold,
            len(held_out),
            scores,
            settings.null_threshold,
        )
    save_checkpoint(out, model, tokenizer, None, state)
    settings.save(out)
    for leftover in (checkpoint_dir, previous_copy(checkpoint_dir)):
        shutil.rmtree(leftover, ignore_errors=True)
    out.with_name(f".{out.name}.mined-negatives.json").unlink(missing_ok=True)
    return out


def check_no_answer_share(share: float) -> None:
    """Raise a ValueError unless ``share`` (``calibration_no_answer_share``) lies in (0, 1)."""
    if not 0.0 < share < 1.0:
        raise ValueError(
            f"calibration_no_answer_share must lie strictly between 0 and 1 (or be 0 to weigh "
            f"the held-out questions as made), not {share}"
        )


def class_weights(answerable: list[bool], no_answer_share: float | None) -> tuple[float, float]:
    """``(weight of an answerable question, weight of an unanswerable one)`` that make the
    unanswerable questions count as ``no_answer_share`` of the total (``None``: both 1).

    Held-out negatives are made by rules that fail for some questions, so their share drifts
    from what the threshold should assume (SQuAD v2.0 dev: half).

    Example:
        >>> class_weights([True, True, True, False], 0.5)
        (0.6666666666666666, 2.0)
    """
    n, negatives = len(answerable), sum(1 for a in answerable if not a)
    if no_answer_share is None or n == 0:
        return 1.0, 1.0
    check_no_answer_share(no_answer_share)
    if negatives in (0, n):
        raise ValueError("no_answer_share needs both answerable and unanswerable questions")
    return (1 - no_answer_share) * n / (n - negatives), no_answer_share * n / negatives


def choose_threshold(
    null_minus_best: list[float],
    answer_f1: list[float],
    answerable: list[bool],
    no_answer_share: float | None = None,
) -> tuple[float, float]:
    """The abstention threshold that maximises SQuAD v2.0 F1 on held-out questions.

    For question i the reader abstains when ``null_minus_best[i] > threshold``; abstaining earns
    1 on an unanswerable question and 0 otherwise, answering earns ``answer_f1[i]`` (0 on an
    unanswerable one). ``no_answer_share`` reweighs the two kinds of question
    (``class_weights``). Returns ``(threshold, best mean F1 x 100)``, the mean weighted.

    Example (answer the first, abstain on the second: 2.0 > -3.0):
        >>> choose_threshold([-3.0, 2.0], [1.0, 0.0], [True, False])
        (-3.0, 100.0)
    """
    n = len(null_minus_best)
    if n == 0:
        return 0.0, 0.0
    has_weight, no_weight = class_weights(answerable, no_answer_share)
    order = sorted(range(n), key=lambda i: null_minus_best[i])
    # threshold below every score: abstain everywhere
    score = sum(no_weight for a in answerable if not a)
    best_score, best_threshold = score, min(null_minus_best) - 1.0
    for i in order:  # raise the threshold past question i: it switches to answering
        score += has_weight * answer_f1[i] if answerable[i] else -no_weight
        if score > best_score:
            best_score, best_threshold = score, null_minus_best[i]
    return float(best_threshold), 100.0 * best_score / n


def useful_threshold(
    threshold: float, scores: dict[str, float], min_gain: float = 1.0
) -> float | None:
    """``threshold`` if abstaining with it beats abstaining everywhere by ``min_gain`` F1 points.

    A threshold that only matches "always abstain" on held-out questions would make the reader
    refuse nearly every question in use; then ``None`` is returned and the reader always answers.

    Example:
        >>> useful_threshold(0.4, {"held_out_f1_with_threshold": 49.3, "always_abstain_f1": 49.2})
        >>> # None: no better than refusing everything
        >>> useful_threshold(-1.0, {"held_out_f1_with_threshold": 58.0, "always_abstain_f1": 50.0})
        -1.0
    """
    gain = scores["held_out_f1_with_threshold"] - scores["always_abstain_f1"]
    return threshold if gain >= min_gain else None


def null_margins(
    reader: Reader, examples: list[dict], desc: str | None = None, chunk: int = 512
) -> tuple[list[float], list[float], list[bool]]:
    """Per question: null score minus best span score, the best span's F1 against the gold
    answers (0 when there are none) and whether the question is answerable: all that
    ``choose_threshold`` and ``v2_f1_at`` need, from one pass of the reader (``chunk``
    questions at a time, with a progress bar named ``desc`` when given)."""
    from rag.metrics import f1_score

    diffs, f1s, answerable = [], [], []
    pairs = [(e["question"], e["context"]) for e in examples]
    starts = range(0, len(pairs), chunk)
    read = [
        result
        for b in tqdm(starts, desc=desc, unit="chunk", disable=desc is None)
        for result in reader.read_pairs(pairs[b : b + chunk])
    ]
    for example, (spans, null) in zip(examples, read, strict=True):
        best = spans[0] if spans else None
        diffs.append(null - best.score if best else float("inf"))
        golds = [a["text"] for a in example["answers"]]
        f1s.append(max((f1_score(best.text, g) for g in golds), default=0.0) if best else 0.0)
        answerable.append(bool(golds))
    return diffs, f1s, answerable


def v2_f1_at(
    threshold: float | None,
    null_minus_best: list[float],
    answer_f1: list[float],
    answerable: list[bool],
) -> float:
    """SQuAD v2.0 F1 (x 100) when the reader abstains where ``null_minus_best > threshold``
    (``None``: only where it found no span at all), as ``Reader.abstains`` decides.

    Example (answers the first, F1 0.5; abstains on the others, 0 + 1):
        >>> v2_f1_at(0.0, [-1.0, 1.0, 2.0], [0.5, 1.0, 0.0], [True, True, False])
        50.0
    """
    total = 0.0
    for diff, f1, has_answer in zip(null_minus_best, answer_f1, answerable, strict=True):
        abstain = diff == float("inf") or (threshold is not None and diff > threshold)
        total += (0.0 if has_answer else 1.0) if abstain else (f1 if has_answer else 0.0)
    return 100.0 * total / max(len(answerable), 1)


def calibrate_null_threshold(
    reader: Reader, examples: list[dict], no_answer_share: float | None = None
) -> tuple[float, dict[str, float]]:
    """Choose ``null_threshold`` on held-out (answerable + unanswerable) questions, weighed so
    that the unanswerable ones count as ``no_answer_share`` of them when it is given."""
    diffs, f1s, answerable = null_margins(reader, examples)
    threshold, best_f1 = choose_threshold(diffs, f1s, answerable, no_answer_share)
    has = [f for f, a in zip(f1s, answerable, strict=True) if a]
    observed_share = 1 - len(has) / max(len(f1s), 1)
    return threshold, {
        "held_out_f1_with_threshold": round(best_f1, 2),
        "always_abstain_f1": round(100.0 * (no_answer_share or observed_share), 2),
        "held_out_has_answer_f1_always_answering": round(100.0 * sum(has) / max(len(has), 1), 2),
        "held_out_no_answer_share": round(observed_share, 3),
    }
