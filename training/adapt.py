"""``notesqa adapt``: the reader learns one person's notes in minutes, on the laptop.

Task-adaptive pretraining (Gururangan et al. 2020, "Don't Stop Pretraining"): the reader's encoder
continues BERT's masked-language modelling (and next-sentence prediction) on the notes' own text,
multi-tasked with a replay of SQuAD passage groups (``models/replay``) under the reader's own
multi-passage loss so the answer head does not forget (Nishida et al. 2020 train MLM on target
passages beside SQuAD). Then the confidence is recalibrated on the replay's held-out groups.

The run is time-boxed (``AdaptConfig.minutes``; the learning rate warms up and decays over the
time box, so a slow and a fast laptop both finish a whole schedule), shows a progress bar with
its ETA, checkpoints every minute and on Ctrl-C beside the index (``NOTES/.notesqa.adapt``), and
resumes there when run again with the same notes and base reader. Only the finished reader is
swapped into ``INDEX/adapted`` (under the index lock); until then the old one stays in use, so a
kill -9 at any moment loses at most the minute since the last checkpoint.

Example (needs an index of the notes and a minute or more):
    >>> adapt("~/notes", cfg=AdaptConfig(minutes=5))                 # doctest: +SKIP
    AdaptResult(reader=PosixPath('~/notes/.notesqa/adapted/reader'), steps=812, ...)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from embedder.onnx_runtime import folder_hash
from embedder.owned_folder import new_temp, remove_owned, swap_in
from models import MODELS_DIR, default_model_path
from rag.adapted import ADAPTED_MANIFEST, OWNED_KIND, READER_DIR, adapted_dir, notes_state
from rag.calibration import CALIBRATION_FILE
from rag.documents import iter_notes
from rag.index_folder import is_notesqa_index, read_manifest, resolve_index_dir
from rag.index_lock import IndexLock
from rag.plaintext import is_markdown, plain_view
from rag.reader import Reader, ReaderSettings
from training.adapt_model import adaptation_model, answer_logits, to_reader
from training.calibrate import calibrate_reader
from training.checkpoint import StopFlag, find_checkpoint, load_checkpoint, save_checkpoint
from training.configs import AdaptConfig, to_dict
from training.finetune_loop import batch_order
from training.passage_groups import read_groups
from training.passage_reader import collate_groups, group_features, shared_norm_loss
from training.precision import autocast, use_bf16
from training.pretrain import decays_weight, set_prior_bias
from training.pretraining_data import PretrainingStream, Shards, build_shards, special_token_ids
from training.pretraining_objective import PretrainingHeads, pretraining_loss
from training.schedule import warmup_share_then_decay
from training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)

REPLAY_DIR = MODELS_DIR / "replay"
TRAIN_REPLAY = "train-groups.jsonl.gz"
CALIBRATION_REPLAY = "calibration-groups.jsonl.gz"
WORK_KIND = "adapt-work"


@dataclass
class AdaptResult:
    reader: Path
    steps: int
    minutes: float
    notes_tokens: int
    calibration: dict


def work_dir(index_dir: Path) -> Path:
    """Where an unfinished adapt keeps its checkpoint: beside the index (which is swapped whole
    on every update), hidden, e.g. ``NOTES/.notesqa.adapt``."""
    return index_dir.parent / f".{index_dir.name.lstrip('.')}.adapt"


def replay_files() -> tuple[Path, Path]:
    """The shipped SQuAD replay sample (training and calibration groups)."""
    train, calibration = REPLAY_DIR / TRAIN_REPLAY, REPLAY_DIR / CALIBRATION_REPLAY
    if not (train.is_file() and calibration.is_file()):
        raise FileNotFoundError(
            f"the SQuAD replay sample is missing from {REPLAY_DIR}; reinstall notesqa, or make it "
            "with `notesqa train replay-sample` (see models/replay/README.md)"
        )
    return train, calibration


def notes_paragraphs(text: str) -> list[str]:
    """A note's plain text as paragraphs (blank-line separated, each on one line)."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def write_notes_corpus(notes_dir: Path, index_dir: Path, out: Path) -> dict[str, list]:
    """Stream every note's text as the reader sees it (Markdown without markup, code verbatim)
    to ``out`` (JSONL, one note a line, one at a time in memory); returns the notes' state."""
    notes, _ = iter_notes(notes_dir, index_dir=index_dir)
    seen = []
    with open(out, "w", encoding="utf-8") as handle:
        for doc in notes:
            text = plain_view(doc.text)[0] if is_markdown(doc.path) else doc.text
            paragraphs = notes_paragraphs(text)
            if paragraphs:
                handle.write(json.dumps({"title": doc.path, "text": "\n".join(paragraphs)}) + "\n")
            seen.append((doc.path, doc.sha256, doc.size))
    return notes_state(seen)


def prepare_work(
    notes_dir: Path, index_dir: Path, base: Path, cfg: AdaptConfig
) -> tuple[Path, dict]:
    """The work folder of this (notes, base reader, settings): the notes sharded once; an
    unfinished run of other notes, another base or other settings is discarded."""
    work = work_dir(index_dir)
    scratch = new_temp(work, WORK_KIND)
    try:
        state = write_notes_corpus(notes_dir, index_dir, scratch / "notes.jsonl")
        run = {
            "base": f"reader@{folder_hash(base)}",
            "notes": hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16],
            "config": to_dict(cfg),
        }
        previous = work / "run.json"
        if previous.is_file() and json.loads(previous.read_text()) == run:
            return work, {**run, "notes_state": state}
        if work.exists() and not remove_owned(work):
            raise ValueError(f"{work} exists and was not written by notesqa; move it away")
        build_shards([scratch / "notes.jsonl"], load_tokenizer(base), scratch / "shards")
        (scratch / "notes.jsonl").unlink()
        (scratch / "run.json").write_text(json.dumps(run))
        swap_in(scratch, work)
        return work, {**run, "notes_state": state}
    finally:
        if scratch.exists():
            remove_owned(scratch)


def finish(
    model, tokenizer, base: Path, index_dir: Path, run: dict, steps: int, elapsed: float,
    calibration_groups: Path, cfg: AdaptConfig,
) -> tuple[Path, dict]:  # fmt: skip
    """Write the adapted reader (fp16), recalibrate it, and swap it into ``INDEX/adapted``."""
    target = adapted_dir(index_dir)
    staged = new_temp(target, OWNED_KIND)
    try:
        folder = staged / READER_DIR
        to_reader(model).half().save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        ReaderSettings.load(base).save(folder)
        stored_path = base / CALIBRATION_FILE
        report: dict = {}
        if stored_path.is_file():  # a reader without a calibration abstains by its own rule
            report = calibrate_reader(
                folder,
                calibration_groups,
                no_answer_share=cfg.calibration_no_answer_share,
                min_confidence=json.loads(stored_path.read_text()).get("min_confidence"),
            )
        manifest = {
            "notesqa": "adapted",
            "reader": READER_DIR,
            "base": run["base"],
            "notes": run["notes_state"],
            "steps": steps,
            "minutes": round(elapsed / 60, 2),
            "objective": "mlm+nsp" if cfg.nsp else "mlm",
            "replay_groups_per_step": cfg.replay_groups,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staged / ADAPTED_MANIFEST).write_text(json.dumps(manifest, indent=2))
        with IndexLock(index_dir, timeout=60):  # an index update carries adapted/ over
            swap_in(staged, target)
    finally:
        if staged.exists():
            remove_owned(staged)
    return target / READER_DIR, report


def adapt(
    notes_dir: str | Path,
    index_dir: str | Path | None = None,
    cfg: AdaptConfig | None = None,
    base_reader: str | Path | None = None,
    device: str | None = None,
) -> AdaptResult | None:
    """Adapt the reader to the notes in ``notes_dir`` (index at ``index_dir``, default
    ``NOTES/.notesqa``); returns ``None`` when stopped early (run it again to resume)."""
    cfg = cfg or AdaptConfig()
    notes = Path(notes_dir).expanduser().resolve()
    index = resolve_index_dir(index_dir or notes / ".notesqa")
    if not is_notesqa_index(index):
        raise FileNotFoundError(
            f"no notesqa index at {index}; run `notesqa index {notes_dir}` first (adapted models "
            "live inside the index)"
        )
    indexed = (read_manifest(index) or {}).get("notes_root")
    if isinstance(indexed, str) and Path(indexed) != notes:
        raise ValueError(
            f"the index at {index} holds the notes of {indexed}, not {notes}; pass that folder, "
            "or --index with the index of these notes"
        )
    base = Path(base_reader).expanduser() if base_reader else default_model_path("reader")
    train_groups, calibration_groups = replay_files()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    work, run = prepare_work(notes, index, base, cfg)
    shards = Shards.load(work / "shards")
    if shards.num_documents < 2:
        raise ValueError(
            f"{notes_dir} holds too little text to adapt to ({shards.meta['num_tokens']} tokens "
            "in one note); adapting needs at least two notes with prose"
        )
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(base)
    model = adaptation_model(base, cfg.dropout)
    set_prior_bias(model, shards.log_unigram_prior(len(tokenizer)))
    model.to(dev)
    stream = PretrainingStream(
        shards,
        max_seq_length=cfg.max_seq_length,
        masked_lm_prob=cfg.masked_lm_prob,
        max_predictions_per_seq=cfg.max_predictions_per_seq,
        special_ids=special_token_ids(tokenizer),
        seed=cfg.seed,
    )
    replay = []
    if cfg.replay_groups:
        featurizer = Reader.load(base, runtime="torch")
        groups = read_groups(train_groups)
        replay = [group_features(g, featurizer) for g in tqdm(groups, desc="replay", unit="group")]
    decays = [p for n, p in model.named_parameters() if decays_weight(n, p)]
    others = [p for n, p in model.named_parameters() if not decays_weight(n, p)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decays, "weight_decay": cfg.weight_decay},
            {"params": others, "weight_decay": 0},
        ],
        lr=cfg.learning_rate,
    )
    step, elapsed = 0, 0.0
    found = find_checkpoint(work / "checkpoint")
    if found is not None:
        state = load_checkpoint(found, model, optimizer)
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        log.info(
            "resuming the adapt run at step %d (%.1f of %.1f min)", step, elapsed / 60, cfg.minutes
        )
    bf16 = use_bf16(cfg.precision, dev)
    heads = PretrainingHeads(model)
    notes_batches = stream.batches(cfg.notes_batch, start_batch=step)
    replay_batches = itertools.islice(
        batch_order(max(1, len(replay)), max(1, cfg.replay_groups), cfg.seed), step, None
    )
    budget = cfg.minutes * 60

    def done_share() -> float:  # of the time box, or of ``steps`` when a benchmark fixes them
        return step / cfg.steps if cfg.steps else elapsed / budget

    bar = tqdm(total=100, initial=round(100 * done_share()), desc="adapting", unit="%")
    stop, last_save = StopFlag(), elapsed

    def checkpoint() -> None:
        save_checkpoint(
            work / "checkpoint", model, tokenizer, optimizer, {"step": step, "elapsed_s": elapsed}
        )

    model.train()
    try:
        while done_share() < 1:
            started = time.time()
            lr = warmup_share_then_decay(cfg.learning_rate, done_share(), cfg.warmup_share)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = {k: v.to(dev) for k, v in next(notes_batches).items()}
            with autocast(bf16, dev):
                out = pretraining_loss(heads, batch)
            loss = out["mlm_loss"] + (out["nsp_loss"] if cfg.nsp else 0.0)
            if replay:
                qa = collate_groups(
                    [replay[i] for i in next(replay_batches)], tokenizer.pad_token_id
                )
                with autocast(bf16, dev):
                    start, end = answer_logits(
                        model,
                        qa["input_ids"].to(dev),
                        qa["token_type_ids"].to(dev),
                        qa["attention_mask"].to(dev),
                    )  # (W, T) each
                qa_loss = shared_norm_loss(
                    start.float(), end.float(), qa["context"].to(dev), qa["windows_of"], qa["gold"]
                )
                loss = loss + cfg.replay_weight * qa_loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            spent = time.time() - started
            elapsed += spent
            bar.update(min(round(100 * done_share()), 100) - bar.n)
            bar.set_postfix(mlm=f"{out['mlm_loss'].item():.2f}", step=step)
            if stop.stop:
                checkpoint()
                log.warning("adapt stopped at step %d; run the same command again to resume", step)
                return None
            if elapsed - last_save >= cfg.save_every_minutes * 60:
                checkpoint()
                last_save = elapsed
    finally:
        bar.close()
        stop.restore()
    model.eval()
    reader, report = finish(
        model, tokenizer, base, index, run, step, elapsed, calibration_groups, cfg
    )
    remove_owned(work)
    Reader.load(reader)  # build its ONNX export now, while torch is loaded
    return AdaptResult(reader, step, round(elapsed / 60, 2), int(shards.meta["num_tokens"]), report)
