"""Write an fp16 copy of a model folder (the shipped models are fp16 safetensors).

Every ``*.safetensors`` file is converted; other files (configs, tokenizer, sentence-transformers
module folders) are copied as they are. Loading code casts back to fp32 for CPU inference.

Example (a made-up run folder: one fp32 weight, a config and optimizer state):
    >>> import tempfile, torch
    >>> run = Path(tempfile.mkdtemp()) / "run"
    >>> run.mkdir()
    >>> save_file({"w": torch.ones(2, 2)}, run / "model.safetensors")
    >>> save_file({"exp_avg": torch.zeros(2, 2)}, run / "optimizer.safetensors")
    >>> _ = (run / "config.json").write_text("{}")
    >>> out = export_fp16(run, run.parent / "model")
    >>> load_file(out / "model.safetensors")["w"].dtype
    torch.float16
    >>> (out / "config.json").is_file(), (out / "optimizer.safetensors").exists()
    (True, False)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from embedder.owned_folder import check_target
from training.folders import replace_folder, staging_folder, written_by_training

SKIP = {"optimizer.safetensors", "rng.safetensors", "trainer_state.json"}


def export_fp16(src: str | Path, dst: str | Path) -> Path:
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"model folder {src} not found")
    check_target(dst, written_by_training)  # refuse a folder of the user's before any work
    tmp = staging_folder(dst)  # marked; a killed export's leftover is removed
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_dir() or rel.name in SKIP or rel.parts[0].startswith("."):
            continue
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            tensors = load_file(path)
            save_file(
                {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
                target,
                metadata={"format": "pt"},
            )
        else:
            shutil.copy2(path, target)
    return replace_folder(tmp, dst)


__all__ = ["export_fp16"]
