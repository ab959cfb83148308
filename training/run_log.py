"""A pretraining run's metrics, one CSV row per log step (and TensorBoard when installed).

Example:
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())                # the run's --out folder
    >>> logger = RunLogger(run)
    >>> logger.write({"step": 20, "loss": 7.1})      # appended to RUN/log.csv
    >>> logger.close()
    >>> (run / "log.csv").read_text().splitlines()[1]
    '20,,7.1,,,,,,,,,'
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class RunLogger:
    """Appends metric rows to ``log.csv`` and, when tensorboard is installed, ``tensorboard/``."""

    FIELDS = [
        "step",
        "tokens",
        "loss",
        "mlm_loss",
        "nsp_loss",
        "lr",
        "tokens_per_s",
        "eval_mlm_loss",
        "eval_nsp_loss",
        "eval_mlm_acc",
        "eval_nsp_acc",
        "batch",
    ]

    def __init__(self, run: Path) -> None:
        self.path = run / "log.csv"
        self.fields = self.FIELDS
        if self.path.exists():  # a resumed run keeps its log's columns (older logs have fewer)
            with open(self.path, newline="") as handle:
                self.fields = next(csv.reader(handle), None) or self.FIELDS
        else:
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.FIELDS)
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional at run time
            log.info("tensorboard not installed; logging to %s only", self.path)
        else:
            self.writer = SummaryWriter(str(run / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.fields, extrasaction="ignore").writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key != "step":
                    group = "eval" if key.startswith("eval_") else "train"
                    self.writer.add_scalar(
                        f"{group}/{key.removeprefix('eval_')}", value, row["step"]
                    )
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
