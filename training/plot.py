"""Plot a pretraining run's curves (from its ``log.csv``) into one PNG.

Example (a two-row log as ``training.run_log.RunLogger`` writes it):
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> _ = (run / "log.csv").write_text("step,mlm_loss,eval_mlm_loss\\n10,7.5,\\n20,6.9,7.1\\n")
    >>> read_log(run)
    {'mlm_loss': [(10, 7.5), (20, 6.9)], 'eval_mlm_loss': [(20, 7.1)]}
    >>> plot_run(run).name                     # $ notesqa plot RUN
    'curves.png'
"""

from __future__ import annotations

import csv
from pathlib import Path


def read_log(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{column: [(step, value), ...]}`` for every non-empty cell of ``run_dir/log.csv``."""
    path = Path(run_dir) / "log.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found; pass the folder given to `notesqa train pretrain --out`"
        )
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(row["step"])
            for key, value in row.items():
                if key != "step" and value not in ("", None):
                    series.setdefault(key, []).append((step, float(value)))
    if not series:
        raise ValueError(f"{path} has no rows yet; let the run reach its first log_every step")
    return series


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write losses, held-out accuracies and throughput against steps to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_log(run_dir)
    out = Path(out) if out else Path(run_dir) / "curves.png"
    panels = [
        ("loss", ["mlm_loss", "eval_mlm_loss", "nsp_loss", "eval_nsp_loss"]),
        ("held-out accuracy", ["eval_mlm_acc", "eval_nsp_acc"]),
        ("tokens / s", ["tokens_per_s"]),
        ("learning rate", ["lr"]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (title, keys) in zip(axes.flat, panels, strict=True):
        for key in keys:
            if key in series:
                steps, values = zip(*series[key], strict=True)
                ax.plot(steps, values, label=key, marker="o" if key.startswith("eval") else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"pretraining: {Path(run_dir).resolve().name}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
