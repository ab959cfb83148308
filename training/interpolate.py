"""Weight-space interpolation of two fine-tuned siblings (WiSE-FT, "model soups").

``(1 - weight) * start + weight * end``, tensor by tensor, for two model folders of one
architecture, typically a model and a finetuning of it (an embedder and its STS stage): the
interpolated model often trades better than either end (``benchmarks/tuning/weight_interpolation.py``
measures the whole line). The result is ``end``'s folder (configs, tokenizer, modules) with the
mixed ``model.safetensors``, written atomically.

Example (two made-up one-tensor "models"; real ones are ``notesqa train`` output folders):
    >>> import tempfile
    >>> runs = Path(tempfile.mkdtemp())
    >>> for name, value in [("joint", 0.0), ("sts", 1.0)]:
    ...     (runs / name).mkdir()
    ...     save_file({"w": torch.full((2,), value)}, runs / name / WEIGHTS_FILE)
    >>> soup = interpolate_models(runs / "joint", runs / "sts", 0.25, runs / "soup")
    >>> soup.name, load_file(soup / WEIGHTS_FILE)["w"].tolist()
    ('soup', [0.25, 0.25])
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from training.folders import replace_folder, staging_folder

WEIGHTS_FILE = "model.safetensors"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass model folders saved by notesqa train")
    return load_file(path)


def interpolate_models(start: str | Path, end: str | Path, weight: float, out: str | Path) -> Path:
    """Write ``(1 - weight) * start + weight * end`` to ``out`` (0 <= weight <= 1)."""
    start, end, out = Path(start), Path(end), Path(out)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be between 0 (start) and 1 (end), not {weight}")
    a, b = _weights(start), _weights(end)
    mismatched = sorted(set(a) ^ set(b)) or [k for k in b if a[k].shape != b[k].shape]
    if mismatched:
        raise ValueError(
            f"{start} and {end} are different architectures (first difference: "
            f"{mismatched[0]}); interpolate a model with a finetuning of it"
        )
    mixed = {
        # fp32 arithmetic, stored in end's dtype: (1 - w) * a + w * b
        k: torch.lerp(a[k].float(), b[k].float(), weight).to(b[k].dtype).contiguous()
        if b[k].is_floating_point()
        else b[k]
        for k in b
    }
    tmp = staging_folder(out)  # marked; a killed run's leftover is removed
    shutil.copytree(
        end,
        tmp,
        ignore=shutil.ignore_patterns(WEIGHTS_FILE, "checkpoint-*", ".*"),
        dirs_exist_ok=True,
    )
    save_file(mixed, tmp / WEIGHTS_FILE, metadata={"format": "pt"})
    return replace_folder(tmp, out)


__all__ = ["interpolate_models"]
