"""Remake a whole model stack with one command: the stages of a stack file, run in order, resumable.

A stack file (``training/stacks/*.json``) lists stages; each is one ``notesqa train ...`` command
written as its argument list, with ``{data}`` for the data folder, ``{out}`` for the stage's own
folder, ``{models}`` for where the finished models go and ``{NAME}`` for the folder of an earlier
stage called NAME. A stage writes into
``RUNS/NAME`` (or the folder of the stage its ``"out"`` names, to continue it) and, once it has
finished, a marker ``RUNS/.stages/NAME.json``; a rerun skips marked stages, and the stage that was
cut off resumes from its own checkpoint (pretraining and every finetuning are resumable).

Time estimates: each stage carries ``reference_minutes``, what it took on the stack's reference
machine, whose pretraining speed the file records (``reference_tokens_per_second``).
:func:`probe_tokens_per_second` measures this machine's speed on a few pretraining steps of the
same model, and every estimate scales by the ratio.

Example:
    >>> stack = load_stack("smoke")
    >>> [stage.name for stage in stack.stages][:3]
    ['tokenizer', 'pretrain', 'reader']
    >>> stack.stages[1].command("/data", Path("runs"))[:3]
    ['pretrain', '--config', 'smoke']
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

STACKS_DIR = Path(__file__).parent / "stacks"
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\}")


@dataclass
class Stage:
    """One ``notesqa train`` command of a stack."""

    name: str = field(metadata={"help": "Folder name under RUNS and the name later stages use."})
    train: list[str] = field(metadata={"help": "Arguments after `notesqa train`, placeholders."})
    what: str = field(default="", metadata={"help": "One line for --help and the log."})
    out: str = field(default="", metadata={"help": "Continue this earlier stage's folder."})
    reference_minutes: float = field(default=1.0, metadata={"help": "Minutes on the reference."})

    def folder(self, runs: Path) -> Path:
        return runs / (self.out or self.name)

    def command(self, data: str | Path, runs: Path, folders: dict[str, Path] | None = None):
        """The argument list with its placeholders filled in.

        Example:
            >>> Stage("reader", ["reader", "--init", "{pretrain}/model"]).command("d", Path("r"))
            ['reader', '--init', 'r/pretrain/model']
        """

        def fill(match: re.Match) -> str:
            key = match.group(1)
            if key == "data":
                return str(data)
            if key == "out":
                return str(self.folder(runs))
            return str((folders or {}).get(key, runs / key))

        return [PLACEHOLDER.sub(fill, arg) for arg in self.train]


@dataclass
class Stack:
    """A stack file: what it makes and its stages in order."""

    description: str
    stages: list[Stage]
    reference_tokens_per_second: float = 1.0
    reference_machine: str = ""
    probe_recipe: str = "tiny"

    def check(self) -> None:
        """Refuse a stack whose stages name a folder no earlier stage makes."""
        seen = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"two stages are called {stage.name!r}; names must be unique")
            if stage.out and stage.out not in seen:
                raise ValueError(f"stage {stage.name!r} continues {stage.out!r}, not run before it")
            for arg in stage.train:
                for key in PLACEHOLDER.findall(arg):
                    if key not in {"data", "out", "models"} | seen:
                        raise ValueError(
                            f"stage {stage.name!r} uses {{{key}}}, which no earlier stage makes"
                        )
            seen.add(stage.name)


def load_stack(name: str | Path) -> Stack:
    """A stack file by path, or by name from ``training/stacks`` (``shipped``, ``smoke``)."""
    path = Path(name)
    if not path.is_file():
        path = STACKS_DIR / f"{path.name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"stack {name} not found; pass a JSON file or one of "
            f"{sorted(p.stem for p in STACKS_DIR.glob('*.json'))}"
        )
    data = json.loads(path.read_text())
    unknown = sorted(set(data) - {"description", "stages", "reference_tokens_per_second",
                                  "reference_machine", "probe_recipe"})  # fmt: skip
    if unknown:
        raise ValueError(f"unknown keys {unknown} in stack {path}")
    stack = Stack(**{**data, "stages": [Stage(**stage) for stage in data["stages"]]})
    stack.check()
    return stack


def probe_tokens_per_second(recipe: str = "tiny", steps: int = 3, device: str | None = None):
    """Pretraining tokens per second of ``recipe``'s BERT on this machine: a few optimizer steps
    on random tokens, the MLM head on 15% of them as in real pretraining (the first step, a
    warm-up, is not timed). Takes seconds.

    Example:
        >>> probe_tokens_per_second("tiny") > 0
        True
    """
    import torch
    import torch.nn.functional as F
    from transformers import BertForPreTraining

    from training.configs import load_recipe
    from training.precision import autocast, use_bf16
    from training.pretrain import bert_config
    from training.pretraining_objective import PretrainingHeads

    cfg = load_recipe(recipe).pretrain
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    vocab = 16384
    heads = PretrainingHeads(BertForPreTraining(bert_config(cfg, vocab, device=dev))).to(dev)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    batch, length = cfg.batch_size, cfg.max_seq_length
    ids = torch.randint(5, vocab, (batch, length), generator=generator).to(dev)  # (B, T)
    ones, zeros = torch.ones_like(ids), torch.zeros_like(ids)
    masked = max(1, int(0.15 * batch * length))
    positions = torch.randperm(batch * length, generator=generator)[:masked].to(dev)  # (M,)
    bf16 = use_bf16(cfg.precision, dev)
    elapsed = 0.0
    for step in range(steps + 1):
        started = time.perf_counter()
        with autocast(bf16, dev):
            mlm_logits, nsp_logits = heads(ids, ones, zeros, positions)  # (M, V), (B, 2)
        loss = F.cross_entropy(mlm_logits.float(), ids.flatten()[positions])
        loss = loss + F.cross_entropy(nsp_logits.float(), torch.zeros(batch, dtype=torch.long))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            elapsed += time.perf_counter() - started
    return steps * batch * length / elapsed


def marker(runs: Path, stage: Stage) -> Path:
    return runs / ".stages" / f"{stage.name}.json"


def finished(runs: Path, stage: Stage) -> dict | None:
    """The marker a finished stage left, or None."""
    path = marker(runs, stage)
    return json.loads(path.read_text()) if path.is_file() else None


def mark_finished(runs: Path, stage: Stage, seconds: float, command: list[str]) -> None:
    path = marker(runs, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "stage": stage.name,
        "seconds": round(seconds, 1),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": ["notesqa", "train", *command],
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def human_minutes(minutes: float) -> str:
    """``human_minutes(135) == '2 h 15 min'``; under a minute, seconds."""
    if minutes < 1:
        return f"{max(1, round(minutes * 60))} s"
    if minutes < 60:
        return f"{round(minutes)} min"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


__all__ = [
    "Stack",
    "Stage",
    "finished",
    "human_minutes",
    "load_stack",
    "mark_finished",
    "probe_tokens_per_second",
]
