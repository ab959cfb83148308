"""Replace a model or data folder by a fully written one, so a crash never leaves half of either.

Every writer in ``training`` stages its output in a sibling temp folder first (``staging_folder``
makes one, marked as notesqa's), then ``replace_folder`` swaps it in with two renames
(``embedder.owned_folder.swap_in``), keeping the previous copy at ``.NAME.old`` until the new one
is in place (``training.checkpoint.find_checkpoint`` falls back to it if the swap was
interrupted). The temp folders of runs killed before their swap are removed by the next write of
the same folder; only folders carrying notesqa's marker are ever deleted on notesqa's own.

Example:
    >>> import tempfile
    >>> runs = Path(tempfile.mkdtemp())
    >>> staged = staging_folder(runs / "emb"); _ = (staged / "config.json").write_text("{}")
    >>> replace_folder(staged, runs / "emb") == runs / "emb"
    True
    >>> sorted(p.name for p in (runs / "emb").iterdir())
    ['.notesqa-owned', 'config.json']
"""

from __future__ import annotations

from pathlib import Path

from embedder import owned_folder

KIND = "training"  # the kind recorded in the marker of a folder training writes


def previous_copy(folder: str | Path) -> Path:
    """Where ``replace_folder`` keeps ``folder``'s previous copy during the swap.

    Example:
        >>> previous_copy("runs/emb").as_posix()
        'runs/.emb.old'
    """
    return owned_folder.backup_of(folder)


def checkpoint_folder(out_dir: str | Path) -> Path:
    """Where an unfinished run that will write ``out_dir`` keeps its resumable checkpoint.

    Example:
        >>> checkpoint_folder("runs/emb").as_posix()
        'runs/emb.checkpoint'
    """
    out = Path(out_dir)
    return out.with_name(out.name + ".checkpoint")


def staging_folder(target: str | Path, kind: str = KIND) -> Path:
    """A new, marked temporary folder beside ``target`` to write its next version into (the
    leftovers of killed writers of ``target`` are removed on the way)."""
    return owned_folder.new_temp(Path(target), kind)


def replace_folder(staged: str | Path, target: str | Path) -> Path:
    """Move the complete folder ``staged`` to ``target``, replacing what was there.

    ``staged`` becomes notesqa's (it is marked if it was not made by ``staging_folder``), so a
    copy of it left at ``.NAME.old`` by a crash is removed by the next swap; a ``.NAME.old``
    without the marker is not notesqa's and stops the swap with a ``ValueError`` naming it.
    """
    staged, target = Path(staged), Path(target)
    if not owned_folder.is_owned(staged):
        owned_folder.write_marker(staged, KIND)
    owned_folder.swap_in(staged, target)
    return target


__all__ = [
    "checkpoint_folder",
    "previous_copy",
    "replace_folder",
    "staging_folder",
]
