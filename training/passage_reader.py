"""Finetune a reader over many passages at once, with shared normalisation (Clark & Gardner 2018).

A training example is a *group* (``training.passage_groups``): a question and the top-k passages
the product's retriever returned for it. Every passage is cut into the reader's windows; the start
(and, separately, the end) logits of *all* context tokens of *all* windows of the group, plus one
no-answer option, go through one softmax. So a span's score means the same in every passage, and
the product can compare the best span of passage 3 with that of passage 1, and both with "no
answer". The no-answer logit is the log-mean-exp of the windows' [CLS] logits (independent of
how many windows a question's passages make). The loss sums the probability of every gold start
(end) position: overlapping passages and windows can all hold the answer.

Example (needs passage groups made from SQuAD, ``training.passage_groups``, and hours):
    >>> train_passage_reader(PassageReaderConfig(), "models/reader", "runs/train-groups.jsonl",
    ...                      "runs/mp-reader")                      # doctest: +SKIP
    PosixPath('runs/mp-reader')
"""

from __future__ import annotations

import logging
import math
import random
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import BertForQuestionAnswering

from rag.reader import Reader, ReaderSettings
from training.checkpoint import save_checkpoint
from training.configs import PassageReaderConfig, to_dict
from training.finetune_loop import LoopSettings, run_finetuning
from training.folders import checkpoint_folder, previous_copy
from training.passage_groups import count_kinds, read_groups
from training.precision import autocast, use_bf16
from training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def group_features(group: dict, reader: Reader) -> dict:
    """The windows of a group's passages (``reader.featurize``) with each window's gold token
    positions: ``gold[w]`` lists ``(start_token, end_token)`` of every answer wholly inside
    window ``w``; no answer anywhere means the no-answer option is the target.

    Example (the shipped reader's windows: ``[CLS] who ? [SEP] ada wrote it . [SEP]``):
        >>> from rag.reader import Reader
        >>> f = group_features({"question": "Who?", "passages": ["Ada wrote it."],
        ...                     "answers": [[0, 0, 3]]}, Reader.load())
        >>> f["gold"]
        [[(4, 4)]]
    """
    passages = group["passages"]
    features = reader.featurize([(group["question"], p) for p in passages])
    gold: list[list[tuple[int, int]]] = []
    for w, offsets in enumerate(features["offsets"]):
        passage = int(features["pair_index"][w])
        found = []
        for index, char_start, char_end in group["answers"]:
            if index != passage:
                continue
            # the window must hold the whole answer: its first token ends after the answer's
            # start and its last token starts before the answer's end
            start = next(
                (t for t, o in enumerate(offsets) if o is not None and o[1] > char_start), None
            )
            end = next(
                (t for t in range(len(offsets) - 1, -1, -1)
                 if offsets[t] is not None and offsets[t][0] < char_end),
                None,
            )  # fmt: skip
            inside = [o for o in offsets if o is not None]
            if start is None or end is None or end < start:
                continue
            if inside[0][0] > char_start or inside[-1][1] < char_end:
                continue
            found.append((start, end))
        gold.append(found)
    return {
        "input_ids": features["input_ids"],
        "token_type_ids": features["token_type_ids"],
        "context": [[o is not None for o in offsets] for offsets in features["offsets"]],
        "gold": gold,
    }


def shared_norm_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context: torch.Tensor,
    windows_of: list[range],
    gold: list[list[tuple[int, int]]],
) -> torch.Tensor:
    """Mean over groups of ``-log p(start) - log p(end)``, each normalised over all context
    tokens of the group's windows plus a no-answer option.

    ``start_logits``/``end_logits``: ``(W, T)`` for all windows of the batch; ``context``:
    ``(W, T)`` bool, true on context tokens; ``windows_of[g]``: group ``g``'s rows; ``gold[w]``:
    window ``w``'s ``(start, end)`` answer positions. A group with no gold position anywhere is
    trained towards no answer.

    Example:
        >>> s = torch.tensor([[0.0, 5.0, 0.0]]); e = torch.tensor([[0.0, 0.0, 5.0]])
        >>> ctx = torch.tensor([[False, True, True]])
        >>> round(shared_norm_loss(s, e, ctx, [range(1)], [[(1, 2)]]).item(), 4)
        0.0268
    """
    losses = []
    for rows in windows_of:
        row_ids = list(rows)
        total = 0.0
        for logits, which in ((start_logits, 0), (end_logits, 1)):
            block = logits[row_ids]  # (w, T)
            # null: log-mean-exp of the windows' [CLS] logits
            null = torch.logsumexp(block[:, 0], dim=0) - math.log(len(row_ids))
            tokens = block.masked_select(context[row_ids])  # (n,) all context tokens
            log_z = torch.logsumexp(torch.cat([tokens, null.reshape(1)]), dim=0)
            targets = [block[r, pos[which]] for r, w in enumerate(row_ids) for pos in gold[w]]
            if targets:
                total = total - (torch.logsumexp(torch.stack(targets), dim=0) - log_z)
            else:
                total = total - (null - log_z)
        losses.append(total)
    return torch.stack(losses).mean()


def collate_groups(features: list[dict], pad_id: int) -> dict:
    """Pad every window of ``features`` (groups) into one batch; returns the tensors,
    ``windows_of`` (each group's rows) and ``gold`` (per row)."""
    windows = [(f, w) for f in features for w in range(len(f["input_ids"]))]
    width = max(len(f["input_ids"][w]) for f, w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)  # (W, T)
    types = torch.zeros_like(ids)  # (W, T)
    mask = torch.zeros_like(ids)  # (W, T)
    context = torch.zeros_like(ids, dtype=torch.bool)  # (W, T)
    gold, windows_of, row = [], [], 0
    for f in features:
        windows_of.append(range(row, row + len(f["input_ids"])))
        for w in range(len(f["input_ids"])):
            n = len(f["input_ids"][w])
            ids[row, :n] = torch.tensor(f["input_ids"][w])
            types[row, :n] = torch.tensor(f["token_type_ids"][w])
            mask[row, :n] = 1
            context[row, :n] = torch.tensor(f["context"][w])
            gold.append(f["gold"][w])
            row += 1
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": mask,
        "context": context,
        "windows_of": windows_of,
        "gold": gold,
    }


def train_passage_reader(
    cfg: PassageReaderConfig,
    init: str | Path,
    groups_path: str | Path,
    out_dir: str | Path,
    device: str | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Finetune reader ``init`` (a reader folder: its window settings are kept) on the passage
    groups in ``groups_path``; saves a ``multi_passage`` reader at ``out_dir``. Resumable as
    ``training.reader.train_reader``: the same command continues from ``OUT.checkpoint``."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(init)
    settings = ReaderSettings.load(Path(init))
    groups = read_groups(groups_path)
    random.Random(cfg.seed).shuffle(groups)
    if cfg.max_groups:
        groups = groups[: cfg.max_groups]
    model = BertForQuestionAnswering.from_pretrained(
        str(init),
        dtype=torch.float32,  # shipped readers are fp16 copies
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
    ).to(dev)
    featurizer = Reader(model, tokenizer, settings)
    features = [group_features(g, featurizer) for g in tqdm(groups, desc="windows", unit="group")]
    answered = sum(1 for f in features if any(f["gold"]))
    log.info(
        "%d groups %s (%d with an answer in a window)", len(features), count_kinds(groups), answered
    )
    bf16 = use_bf16(cfg.precision, dev)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    steps = max(1, int(len(features) * cfg.epochs) // cfg.groups_per_batch)
    out = Path(out_dir)
    checkpoint_dir = checkpoint_folder(out)
    run_state = {
        "init": str(init),
        "groups": str(groups_path),
        "config": {k: v for k, v in to_dict(cfg).items() if k not in ("save_every", "log_every")},
    }

    def loss_of(rows: list[int]) -> torch.Tensor:
        batch = collate_groups([features[i] for i in rows], tokenizer.pad_token_id)
        with autocast(bf16, dev):
            logits = model(
                input_ids=batch["input_ids"].to(dev),
                token_type_ids=batch["token_type_ids"].to(dev),
                attention_mask=batch["attention_mask"].to(dev),
            )
        return shared_norm_loss(
            logits.start_logits.float(),  # (W, T)
            logits.end_logits.float(),  # (W, T)
            batch["context"].to(dev),
            batch["windows_of"],
            batch["gold"],
        )

    loop = LoopSettings(
        "passage reader", steps, cfg.learning_rate, cfg.warmup_ratio, cfg.groups_per_batch,
        cfg.seed, cfg.log_every, cfg.save_every,
    )  # fmt: skip
    if not run_finetuning(
        model, tokenizer, optimizer, len(features), loss_of, run_state, checkpoint_dir, loop,
        max_minutes,
    ):  # fmt: skip
        return checkpoint_dir
    settings.multi_passage = True
    settings.null_threshold = None  # the calibrated confidence decides when to abstain
    save_checkpoint(out, model.eval(), tokenizer, None, {"steps": steps, "init": str(init)})
    settings.save(out)
    for leftover in (checkpoint_dir, previous_copy(checkpoint_dir)):
        shutil.rmtree(leftover, ignore_errors=True)
    return out
