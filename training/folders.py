"""Replace a model or data folder by a fully written one, so a crash never leaves half of either.

Every writer in ``training`` stages its output in a sibling temp folder first; ``replace_folder``
then swaps it in with two renames, keeping the previous copy at ``.NAME.old`` until the new one is
in place (``training.checkpoint.find_checkpoint`` falls back to it if the swap was interrupted).

Example:
    >>> staged = Path("runs/.emb.tmp"); staged.mkdir(); (staged / "config.json").write_text("{}")
    >>> replace_folder(staged, Path("runs/emb"))
    PosixPath('runs/emb')
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def previous_copy(folder: str | Path) -> Path:
    """Where ``replace_folder`` keeps ``folder``'s previous copy during the swap."""
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.old")


def checkpoint_folder(out_dir: str | Path) -> Path:
    """Where an unfinished run that will write ``out_dir`` keeps its resumable checkpoint.

    Example:
        >>> checkpoint_folder("runs/emb")
        PosixPath('runs/emb.checkpoint')
    """
    out = Path(out_dir)
    return out.with_name(out.name + ".checkpoint")


def replace_folder(staged: str | Path, target: str | Path) -> Path:
    """Move the complete folder ``staged`` to ``target``, replacing what was there."""
    staged, target = Path(staged), Path(target)
    old = previous_copy(target)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


__all__ = ["checkpoint_folder", "previous_copy", "replace_folder"]
