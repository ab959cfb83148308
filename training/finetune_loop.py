"""The resumable finetuning loop the readers share: seeded batches, warm-up then linear decay,
clipped AdamW steps, a progress bar, and a checkpoint on a stop, on a timer and every N steps.

The caller brings the model, its optimizer and a ``loss_of(rows)`` that turns a list of item
indices into a scalar loss; the loop owns everything about *when*. A rerun with the same
``run_state`` resumes at the step the checkpoint recorded and draws the same batches from there.

Example (a toy model learns y = 2x from 16 points; the readers pass BERT and their features):
    >>> import tempfile
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Linear(1, 1)
    >>> optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.0)
    >>> x = torch.linspace(-1, 1, 16)[:, None]                    # (16, 1)
    >>> def loss_of(rows):
    ...     return ((model(x[rows]) - 2 * x[rows]) ** 2).mean()
    >>> loop = LoopSettings("y=2x", steps=200, learning_rate=0.1, warmup_ratio=0.1,
    ...                     batch_size=4, seed=0, save_every=0)
    >>> checkpoint_dir = Path(tempfile.mkdtemp()) / "toy.checkpoint"
    >>> run_finetuning(model, None, optimizer, len(x), loss_of, {"init": "toy"}, checkpoint_dir,
    ...                loop)                   # False: stopped early, the checkpoint holds the run
    True
    >>> round(model.weight.item(), 2), round(model.bias.item(), 2)
    (2.0, 0.0)
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from training.checkpoint import StopFlag, resume_step, save_checkpoint
from training.schedule import warmup_then_decay

log = logging.getLogger(__name__)


def batch_order(num_items: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless batches of item indices: seeded shuffled passes, each batch drawn in order.

    A resumed run skips the batches already trained on and continues the same sequence.

    Example:
        >>> list(itertools.islice(batch_order(5, 2, seed=0), 3))   # the third straddles two passes
        [[2, 1], [0, 4], [3, 0]]
    """
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            fresh = list(range(num_items))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch, order = order[:batch_size], order[batch_size:]
        yield batch


@dataclass
class LoopSettings:
    """When the loop steps, logs and saves."""

    name: str  # the bar's label and the log's
    steps: int
    learning_rate: float
    warmup_ratio: float
    batch_size: int
    seed: int
    log_every: int = 20
    save_every: int = 200  # 0: only on a stop (and at the end with checkpoint_last)
    checkpoint_last: bool = False  # save after the last step too (work follows that may stop)


def run_finetuning(
    model: torch.nn.Module,
    tokenizer,
    optimizer: torch.optim.Optimizer,
    num_items: int,
    loss_of: Callable[[list[int]], torch.Tensor],
    run_state: dict,
    checkpoint_dir: Path,
    loop: LoopSettings,
    max_minutes: float | None = None,
    on_log: Callable[[], None] | None = None,
) -> bool:
    """Train ``loop.steps`` steps (from the checkpoint's step when one matches ``run_state``).

    Returns True when every step ran, False when a stop (Ctrl-C, SIGTERM, ``max_minutes``) saved
    a checkpoint first. ``on_log`` runs every ``log_every`` steps (e.g. to release memory).
    """
    first_step = resume_step(checkpoint_dir, model, optimizer, run_state, loop.name)
    batches = itertools.islice(batch_order(num_items, loop.batch_size, loop.seed), first_step, None)
    warmup = int(loop.steps * loop.warmup_ratio)

    def checkpoint(done: int) -> None:
        save_checkpoint(checkpoint_dir, model, tokenizer, optimizer, {**run_state, "step": done})

    model.train()
    bar = tqdm(range(first_step, loop.steps), desc=loop.name, unit="step")
    started, running, stop = time.time(), 0.0, StopFlag()
    try:
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = warmup_then_decay(step, loop.learning_rate, warmup, loop.steps)
            loss = loss_of(next(batches))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            running = 0.98 * running + 0.02 * loss.item() if step > first_step else loss.item()
            if step % loop.log_every == 0:
                bar.set_postfix(loss=f"{running:.3f}")
                if on_log is not None:
                    on_log()
            out_of_time = max_minutes is not None and (time.time() - started) / 60 >= max_minutes
            if stop.stop or out_of_time:
                checkpoint(step + 1)
                log.warning("%s stopped at step %d; run it again to resume", loop.name, step + 1)
                return False
            last = loop.checkpoint_last and step + 1 == loop.steps
            if (loop.save_every and (step + 1) % loop.save_every == 0) or last:
                checkpoint(step + 1)
    finally:
        stop.restore()
    log.info(
        "%s trained %d steps in %.0f s", loop.name, loop.steps - first_step, time.time() - started
    )
    return True


__all__ = ["LoopSettings", "batch_order", "run_finetuning"]
