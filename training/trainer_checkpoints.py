"""Resumable, pickle-free checkpoints for the sentence-transformers trainer (the embedder's runs).

The Hugging Face trainer checkpoints with ``torch.save`` (optimizer, scheduler, RNG, training
arguments: pickles). ``PickleFreeTrainer`` writes the same states as safetensors and JSON instead
(``optimizer.safetensors`` + ``optimizer.json``, ``scheduler.json``, ``rng.safetensors`` +
``rng.json``, ``scaler.json``), and no ``training_args.bin``; the weights are the model's own
safetensors folder and ``trainer_state.json`` is written last, so a checkpoint is complete once it
has one. ``StopCallback`` turns Ctrl-C / SIGTERM or a time limit into "checkpoint and stop".

Example (``training.biencoder`` brings the model, its arguments, data and loss):
    >>> trainer = PickleFreeTrainer(model=model, args=args, train_dataset=data,
    ...                             loss=loss)                           # doctest: +SKIP
    >>> trainer.add_callback(StopCallback(max_minutes=30))               # doctest: +SKIP
    >>> trainer.train(resume_from_checkpoint=latest_checkpoint(args.output_dir))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformerTrainer
from transformers import TrainerCallback

from training.checkpoint import StopFlag, optimizer_from_tensors, optimizer_to_tensors

log = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"  # written last by the trainer: the "complete" mark
RUN_FILE = "run.json"  # what the run was started with; a resume must match it
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete ``checkpoint-N`` in a trainer's output folder, or None.

    Example (``checkpoint-600`` is still being written: no ``trainer_state.json`` yet):
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "emb.checkpoint"
        >>> for step in (200, 400, 600):
        ...     (folder / f"checkpoint-{step}").mkdir(parents=True)
        ...     if step < 600:
        ...         _ = (folder / f"checkpoint-{step}" / TRAINER_STATE).write_text("{}")
        >>> latest_checkpoint(folder).name
        'checkpoint-400'
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    complete = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _CHECKPOINT.match(path.name)) and (path / TRAINER_STATE).is_file()
    ]
    return max(complete)[1] if complete else None


def resume_point(folder: str | Path, run_state: dict) -> Path | None:
    """The checkpoint in ``folder`` to resume the run described by ``run_state`` (JSON values)
    from, or None for a fresh start; a folder left by a run with other settings is refused,
    naming the fix. Reads only.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "emb.checkpoint"
        >>> run_state = {"init": "models/embedder", "config": {"steps": 1000}}
        >>> claim_run(folder, run_state) is None                    # a fresh start
        True
        >>> (folder / "checkpoint-400").mkdir()
        >>> _ = (folder / "checkpoint-400" / TRAINER_STATE).write_text("{}")
        >>> resume_point(folder, run_state).name
        'checkpoint-400'
        >>> resume_point(folder, {**run_state, "init": "models/other"})
        Traceback (most recent call last):
        ValueError: ... belongs to an embedder run with other settings (init); rerun with those, ...
    """
    folder = Path(folder)
    run_file = folder / RUN_FILE
    if run_file.is_file():
        saved = json.loads(run_file.read_text())
        wanted = json.loads(json.dumps(run_state))
        if saved != wanted:
            changed = sorted(k for k in {*saved, *wanted} if saved.get(k) != wanted.get(k))
            raise ValueError(
                f"{folder} belongs to an embedder run with other settings ({', '.join(changed)}); "
                f"rerun with those, or delete {folder} to start over"
            )
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(
            f"{folder} exists but was not written by an embedder run (no {RUN_FILE}); "
            "move it away or delete it"
        )
    return latest_checkpoint(folder)


def claim_run(folder: str | Path, run_state: dict) -> Path | None:
    """``resume_point``, then make ``folder`` the run's own: record ``run_state`` and remove
    any checkpoint but the one to resume from (older or half-written ones).

    Example (a half-written checkpoint is removed, the complete one kept):
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "emb.checkpoint"
        >>> claim_run(folder, {"init": "models/embedder"}) is None   # a fresh start
        True
        >>> (folder / "checkpoint-200").mkdir()
        >>> _ = (folder / "checkpoint-200" / TRAINER_STATE).write_text("{}")
        >>> (folder / "checkpoint-400").mkdir()
        >>> claim_run(folder, {"init": "models/embedder"}).name
        'checkpoint-200'
        >>> sorted(p.name for p in folder.iterdir())
        ['checkpoint-200', 'run.json']
    """
    folder = Path(folder)
    found = resume_point(folder, run_state)
    for path in folder.glob("checkpoint-*") if folder.is_dir() else ():
        if path != found:
            shutil.rmtree(path, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).write_text(json.dumps(run_state, indent=2) + "\n")
    return found


class PickleFreeTrainer(SentenceTransformerTrainer):
    """``SentenceTransformerTrainer`` whose checkpoints hold no pickles (see the module doc)."""

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        # as the sentence-transformers trainer, less its torch.save of the training arguments
        out = Path(output_dir or self.args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(out))  # safetensors
        processing = getattr(self, "processing_class", None)
        if processing is not None:
            processing.save_pretrained(str(out))

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        tensors, groups = optimizer_to_tensors(self.optimizer)
        save_file(tensors, out / "optimizer.safetensors")
        (out / "optimizer.json").write_text(json.dumps({"param_groups": groups}))
        (out / "scheduler.json").write_text(json.dumps(self.lr_scheduler.state_dict()))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is None:
            return
        folder = Path(checkpoint)
        if not (folder / "optimizer.safetensors").is_file():
            raise FileNotFoundError(
                f"{folder} has no optimizer.safetensors (not written by notesqa); delete its "
                "parent folder to start the run over"
            )
        groups = json.loads((folder / "optimizer.json").read_text())["param_groups"]
        tensors = load_file(folder / "optimizer.safetensors", device=str(self.args.device))
        optimizer_from_tensors(self.optimizer, tensors, groups)
        self.lr_scheduler.load_state_dict(json.loads((folder / "scheduler.json").read_text()))

    def _save_scaler(self, output_dir: str) -> None:
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None:  # fp16 only; bf16 needs none
            Path(output_dir, "scaler.json").write_text(json.dumps(scaler.state_dict()))

    def _load_scaler(self, checkpoint: str | None) -> None:
        scaler = getattr(self.accelerator, "scaler", None)
        if checkpoint is not None and scaler is not None:
            path = Path(checkpoint, "scaler.json")
            if path.is_file():
                scaler.load_state_dict(json.loads(path.read_text()))

    def _save_rng_state(self, output_dir: str) -> None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        _, keys, position, has_gauss, gauss = np.random.get_state()
        tensors = {"torch": torch.random.get_rng_state(), "numpy": torch.from_numpy(keys.copy())}
        if torch.cuda.is_available():
            tensors["cuda"] = torch.cuda.random.get_rng_state()
        save_file(tensors, out / "rng.safetensors")
        version, python_state, python_gauss = random.getstate()
        (out / "rng.json").write_text(
            json.dumps(
                {
                    "python": [version, list(python_state), python_gauss],
                    "numpy": [int(position), int(has_gauss), float(gauss)],
                }
            )
        )

    def _load_rng_state(self, checkpoint: str | None) -> None:
        if checkpoint is None:
            return
        folder = Path(checkpoint)
        if not (folder / "rng.safetensors").is_file():
            log.warning("%s has no rng.safetensors: the resumed run's dropout will differ", folder)
            return
        tensors = load_file(folder / "rng.safetensors")
        states = json.loads((folder / "rng.json").read_text())
        version, python_state, python_gauss = states["python"]
        random.setstate((version, tuple(python_state), python_gauss))
        position, has_gauss, gauss = states["numpy"]
        np.random.set_state(
            ("MT19937", tensors["numpy"].numpy().astype(np.uint32), position, has_gauss, gauss)
        )
        torch.random.set_rng_state(tensors["torch"])
        if "cuda" in tensors and torch.cuda.is_available():
            torch.cuda.random.set_rng_state(tensors["cuda"])


class StopCallback(TrainerCallback):
    """Checkpoint and stop at the end of the current step on Ctrl-C / SIGTERM or after
    ``max_minutes``; ``stopped`` tells the caller afterwards."""

    def __init__(self, max_minutes: float | None = None) -> None:
        self.max_minutes = max_minutes
        self.stopped = False
        self._flag: StopFlag | None = None
        self._started = time.time()

    def on_train_begin(self, args, state, control, **kwargs):
        self._flag, self._started = StopFlag(), time.time()

    def on_step_end(self, args, state, control, **kwargs):
        minutes = (time.time() - self._started) / 60
        out_of_time = self.max_minutes is not None and minutes >= self.max_minutes
        if (self._flag is not None and self._flag.stop) or out_of_time:
            if state.global_step < state.max_steps:  # the last step ends the run anyway
                self.stopped = True
                control.should_save = True
                control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self._flag is not None:
            self._flag.restore()
            self._flag = None
