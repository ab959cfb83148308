"""Atomic, pickle-free training checkpoints: model + tokenizer + optimizer + RNG + position.

A checkpoint folder is a normal ``save_pretrained`` folder (so ``from_pretrained`` loads it) plus
``optimizer.safetensors`` (AdamW moments), ``rng.safetensors`` and ``trainer_state.json`` (step,
data position, param-group settings). It is written to a marked temporary folder and swapped
into place (``training.folders``), and ``trainer_state.json`` is written last, so a killed run
never leaves a half checkpoint that looks complete, and the next save removes what it left.

Example (a tiny BERT after one AdamW step; the trainers save their runs this way):
    >>> import tempfile
    >>> from transformers import BertConfig, BertForPreTraining
    >>> config = BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1,
    ...                     num_attention_heads=1, intermediate_size=8)
    >>> model = BertForPreTraining(config)
    >>> optimizer = torch.optim.AdamW(model.parameters())
    >>> model(torch.tensor([[2, 5, 3]])).prediction_logits.sum().backward()
    >>> optimizer.step()
    >>> run = Path(tempfile.mkdtemp())
    >>> save_checkpoint(run / "checkpoint", model, None, optimizer, {"init": "toy", "step": 200})
    >>> fresh = BertForPreTraining(config)
    >>> load_checkpoint(run / "checkpoint", fresh, torch.optim.AdamW(fresh.parameters()))["step"]
    200
    >>> torch.equal(fresh.bert.pooler.dense.weight, model.bert.pooler.dense.weight)
    True
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from embedder.owned_folder import discard
from training.folders import previous_copy, replace_folder, staging_folder

log = logging.getLogger(__name__)


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    state = optimizer.state_dict()
    tensors = {}
    for param_id, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"{param_id}.{name}"] = (
                value.detach().contiguous() if torch.is_tensor(value) else torch.tensor(value)
            )
    return tensors, state["param_groups"]


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], param_groups: list
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    if len(param_groups) != len(optimizer.param_groups):
        raise ValueError(
            f"the checkpoint's optimizer has {len(param_groups)} parameter groups but this trainer "
            f"makes {len(optimizer.param_groups)} (it was written by an older notesqa); continue "
            "from its exported model in a new run folder instead of resuming it"
        )
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def save_checkpoint(
    folder: str | Path,
    model,
    tokenizer,
    optimizer: torch.optim.Optimizer | None,
    trainer_state: dict[str, Any],
) -> None:
    """Write a complete checkpoint to ``folder`` atomically (marked temp folder, fsync, swap)."""
    folder = Path(folder)
    tmp = staging_folder(folder, "checkpoint")
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        state = dict(trainer_state)
        if optimizer is not None:
            tensors, groups = optimizer_to_tensors(optimizer)
            save_file(tensors, tmp / "optimizer.safetensors")
            state["param_groups"] = groups
        save_file({"torch": torch.get_rng_state()}, tmp / "rng.safetensors")
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
        replace_folder(tmp, folder)  # fsyncs every file first
    except BaseException:
        discard(tmp)
        raise


def find_checkpoint(folder: str | Path) -> Path | None:
    """The complete checkpoint at ``folder`` (or its previous copy if a swap was interrupted)."""
    folder = Path(folder)
    for candidate in (folder, previous_copy(folder)):
        if (candidate / "trainer_state.json").exists():
            return candidate
    return None


def load_weights(folder: str | Path, model) -> None:
    """Load ``folder/model.safetensors`` into ``model`` (same architecture), keeping ties.

    Example (a tiny BERT saved as a pretraining run's ``model/``):
        >>> import tempfile
        >>> from transformers import BertConfig, BertForPreTraining
        >>> config = BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1,
        ...                     num_attention_heads=1, intermediate_size=8)
        >>> folder = Path(tempfile.mkdtemp()) / "model"
        >>> BertForPreTraining(config).save_pretrained(folder)
        >>> load_weights(folder, BertForPreTraining(config))
        >>> config.vocab_size = 9
        >>> load_weights(folder, BertForPreTraining(config))
        Traceback (most recent call last):
        ValueError: checkpoint ... does not match the model: bert.embeddings.word_embeddings.weight is (8, 8) there and (9, 8) here ...
    """
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(
            f"{folder} has no model.safetensors; point to a pretraining run's model/ or checkpoint/"
        )
    weights = load_file(folder / "model.safetensors")
    own = model.state_dict()
    resized = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    if resized:
        raise ValueError(
            f"checkpoint {folder} does not match the model: {resized[0]} is "
            f"{tuple(weights[resized[0]].shape)} there and {tuple(own[resized[0]].shape)} here "
            "(the recipe's model sizes must equal the checkpoint's)"
        )
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # tied decoder weights are stored once; anything else missing is a real error
    missing = [m for m in missing if "decoder" not in m]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {folder} does not match the model: missing {missing}, unexpected "
            f"{unexpected} (the recipe's model sizes must equal the checkpoint's)"
        )
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def load_checkpoint(
    folder: str | Path, model, optimizer: torch.optim.Optimizer | None
) -> dict[str, Any]:
    """Restore weights, optimizer moments and RNG from ``folder``; return the trainer state."""
    folder = Path(folder)
    state = json.loads((folder / "trainer_state.json").read_text())
    load_weights(folder, model)
    if optimizer is not None and (folder / "optimizer.safetensors").exists():
        optimizer_from_tensors(
            optimizer, load_file(folder / "optimizer.safetensors"), state["param_groups"]
        )
    torch.set_rng_state(load_file(folder / "rng.safetensors")["torch"])
    return state


def resume_step(
    folder: str | Path, model, optimizer: torch.optim.Optimizer, run_state: dict, what: str
) -> int:
    """Restore the unfinished run checkpointed at ``folder`` (weights, optimizer, RNG) and return
    its step, or 0 when there is none; a checkpoint of another run (``run_state`` differs: init,
    data or recipe) is refused, naming the folder to delete.

    Example (a checkpoint of run ``{"init": "toy"}`` saved at step 200):
        >>> import tempfile
        >>> from transformers import BertConfig, BertForPreTraining
        >>> config = BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1,
        ...                     num_attention_heads=1, intermediate_size=8)
        >>> model = BertForPreTraining(config)
        >>> optimizer = torch.optim.AdamW(model.parameters())
        >>> folder = Path(tempfile.mkdtemp()) / "reader.checkpoint"
        >>> resume_step(folder, model, optimizer, {"init": "toy"}, "reader")    # a fresh start
        0
        >>> save_checkpoint(folder, model, None, optimizer, {"init": "toy", "step": 200})
        >>> resume_step(folder, model, optimizer, {"init": "toy"}, "reader")
        200
        >>> resume_step(folder, model, optimizer, {"init": "other"}, "reader")
        Traceback (most recent call last):
        ValueError: ... belongs to a reader run with other settings (init, data or recipe); ...
    """
    found = find_checkpoint(folder)
    if found is None:
        return 0
    saved = load_checkpoint(found, model, optimizer)
    if {k: saved.get(k) for k in run_state} != run_state:
        raise ValueError(
            f"{found} belongs to a {what} run with other settings (init, data or recipe); "
            f"rerun with those, or delete {folder} to start over"
        )
    log.info("resuming the %s from %s at step %d", what, found, saved["step"])
    return saved["step"]


class StopFlag:
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
