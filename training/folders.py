"""Replace a model or data folder by a fully written one, so a crash never leaves half of either.

Every writer in ``training`` stages its output in a sibling temp folder first (``staging_folder``
makes one, marked as notesqa's), then ``replace_folder`` swaps it in with two renames
(``embedder.owned_folder.swap_in``), keeping the previous copy at ``.NAME.old`` until the new one
is in place (``training.checkpoint.find_checkpoint`` falls back to it if the swap was
interrupted). The temp folders of runs killed before their swap are removed by the next write of
the same folder; only folders carrying notesqa's marker are ever deleted on notesqa's own.

What ``replace_folder`` replaces: nothing, an empty folder, a folder carrying the marker, or a
folder an older notesqa wrote before markers, recognised by its content (``written_by_training``:
a model folder, ``config.json`` with its weights and only the files a model folder holds, or a
pretraining data folder). Anything else, e.g. ``--out`` pointing at a folder of notes, stops with
a ``ValueError`` before anything moves: pass a new folder or remove it yourself.

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


# Everything a model folder written by notesqa (transformers / sentence-transformers) holds.
MODEL_FILES = frozenset(
    {
        "config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "README.md",  # sentence-transformers' model card
        "eval_results.json",
        "notesqa_whitening.json",
        "training_args.bin",
        "trainer_state.json",
        "optimizer.safetensors",
        "rng.safetensors",
    }
)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
MODULE_FILES = frozenset({"config.json", "model.safetensors", "pytorch_model.bin"})
DATA_FILES = frozenset({"tokens.npy", "sentences.npy", "documents.npy", "meta.json"})


def _is_module_folder(path: Path) -> bool:
    """A sentence-transformers module folder (``1_Pooling``, ``3_Dense``): only its config and
    weights."""
    head, _, tail = path.name.partition("_")
    if not (head.isdigit() and tail) or path.is_symlink() or not path.is_dir():
        return False
    return all(
        p.name in MODULE_FILES and p.is_file() and not p.is_symlink() for p in path.iterdir()
    )


def written_by_training(folder: str | Path) -> bool:
    """Whether ``folder``, without notesqa's marker, is one training wrote before markers and
    so may be replaced: a model folder (``config.json`` and its weights, nothing but the files
    a model folder holds, ``MODEL_FILES`` and module folders like ``1_Pooling``), or a
    pretraining data folder (``meta.json`` and the ``.npy`` shards, nothing else). A folder
    holding anything else (notes, a thesis) is never one.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("config.json", "model.safetensors"):
        ...     _ = (folder / name).write_text("{}")
        >>> written_by_training(folder)
        True
        >>> _ = (folder / "ch1.md").write_text("my thesis")
        >>> written_by_training(folder)
        False
    """
    folder = Path(folder)
    try:
        if folder.is_symlink() or not folder.is_dir():
            return False
        entries = list(folder.iterdir())
        names = {p.name for p in entries}
        files_ok = all(
            (p.is_file() and not p.is_symlink() and p.name in MODEL_FILES) or _is_module_folder(p)
            for p in entries
        )
        if files_ok and "config.json" in names and any(w in names for w in WEIGHT_FILES):
            return True
        return "meta.json" in names and all(
            p.name in DATA_FILES and p.is_file() and not p.is_symlink() for p in entries
        )
    except OSError:
        return False


def staging_folder(target: str | Path, kind: str = KIND) -> Path:
    """A new, marked temporary folder beside ``target`` to write its next version into (the
    leftovers of killed writers of ``target`` are removed on the way)."""
    return owned_folder.new_temp(Path(target), kind)


def replace_folder(staged: str | Path, target: str | Path) -> Path:
    """Move the complete folder ``staged`` to ``target``, replacing what was there.

    ``target`` must be absent, empty, marked as notesqa's or ``written_by_training``; a folder
    holding anything else stops with a ``ValueError`` naming it ("pass a new folder or remove it
    yourself") and nothing moves. ``staged`` becomes notesqa's (it is marked if it was not made
    by ``staging_folder``), so a copy of it left at ``.NAME.old`` by a crash is removed by the
    next swap; a ``.NAME.old`` that is neither marked nor ``written_by_training`` stops the swap
    with a ``ValueError`` naming it.
    """
    staged, target = Path(staged), Path(target)
    made_here = owned_folder.is_owned(staged)  # by staging_folder: ours to drop if refused
    if not made_here:
        owned_folder.write_marker(staged, KIND)
    try:
        owned_folder.swap_in(staged, target, may_replace=written_by_training)
    except ValueError:
        if made_here:  # leave no .NAME.tmp-* beside a folder we refused to touch
            owned_folder.discard(staged)
        raise
    return target


__all__ = [
    "checkpoint_folder",
    "previous_copy",
    "replace_folder",
    "staging_folder",
    "written_by_training",
]
