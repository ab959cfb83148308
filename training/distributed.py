"""Who this process is in a data-parallel pretraining run: torchrun's process group, or alone.

Example:
    >>> ranks, device = init_distributed(None)     # not under torchrun
    >>> ranks.is_main, ranks.world_size
    (True, 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    """Who this process is in a data-parallel run (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks of a few numbers (identity on one process)."""
        if self.world_size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()


def init_distributed(device: str | None) -> tuple[Distributed, torch.device]:
    """Join the process group torchrun set up (``WORLD_SIZE`` > 1), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = device.startswith("cuda") if device else torch.cuda.is_available()
    if world <= 1:
        return Distributed(), torch.device(
            device or ("cuda" if torch.cuda.is_available() else "cpu")
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    dev = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank), dev
