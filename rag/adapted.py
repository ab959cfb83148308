"""Models adapted to one person's notes (``notesqa adapt``), kept inside that notes' index folder.

Layout, all written by notesqa (the folder carries the ``.notesqa-owned`` marker):

    INDEX/adapted/manifest.json   what was adapted: the base model's fingerprint, the notes' state
                                  (file -> sha256 prefix and size), steps, minutes, objective
    INDEX/adapted/reader/         a reader folder like models/reader (fp16 safetensors)

``ask``, ``search``, the app and the LangChain plugin use the adapted reader when there is one and
no reader is named (``base=True`` or ``--base`` ignores it); deleting the folder goes back. An
index update carries the folder into the new index (``carry_adapted``).

Example:
    >>> import tempfile
    >>> index = Path(tempfile.mkdtemp())
    >>> adapted_reader(index) is None                   # nothing adapted yet: the shipped reader
    True
    >>> notes_state([("a.md", "ab12" * 16, 300), ("b.md", "cd34" * 16, 100)])
    {'a.md': ['ab12ab12ab12ab12', 300], 'b.md': ['cd34cd34cd34cd34', 100]}
    >>> seen = {"notes": notes_state([("a.md", "ab12" * 16, 300), ("b.md", "cd34" * 16, 100)])}
    >>> changed_share(seen, [("a.md", "ab12" * 16, 300), ("b.md", "ffff" * 16, 100)])
    0.25
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from embedder.owned_folder import MARKER, backup_of, is_owned, temp_prefix

ADAPTED_DIR = "adapted"
ADAPTED_MANIFEST = "manifest.json"
READER_DIR = "reader"
OWNED_KIND = "adapted"
DIGEST_CHARS = 16  # of each file's sha256: enough to tell an edit, small for a big vault
READAPT_SHARE = 0.3  # stats suggests adapting again once this share of the notes' bytes changed


def adapted_dir(index_dir: str | Path) -> Path:
    return Path(index_dir) / ADAPTED_DIR


def read_adaptation(index_dir: str | Path) -> dict | None:
    """The adapted models' manifest, or ``None`` when nothing (complete) was adapted."""
    folder = adapted_dir(index_dir)
    if folder.is_symlink() or not is_owned(folder):
        return None
    try:
        manifest = json.loads((folder / ADAPTED_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def adapted_reader(index_dir: str | Path | None) -> Path | None:
    """The reader adapted to this index's notes, if one is there and complete."""
    if index_dir is None or read_adaptation(index_dir) is None:
        return None
    reader = adapted_dir(index_dir) / READER_DIR
    return reader if (reader / "config.json").is_file() else None


def model_stamp(folder: str | Path) -> tuple[int, int] | None:
    """Identity of a model folder's weights on disk (inode, mtime): a new adapt swaps in new
    files, so a long-running app notices and loads them."""
    try:
        stat = (Path(folder) / "model.safetensors").stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def notes_state(documents: Iterable[tuple[str, str, int]]) -> dict[str, list]:
    """``{path: [sha256 prefix, size]}`` of the indexed notes ``(path, sha256, size)``."""
    return {path: [sha[:DIGEST_CHARS], int(size)] for path, sha, size in documents}


def changed_share(adaptation: dict, documents: Iterable[tuple[str, str, int]]) -> float:
    """Share of the notes' bytes now in the index that the adapted models never saw (new or
    edited files), 0 to 1."""
    seen = adaptation.get("notes") or {}
    total = changed = 0
    for path, sha, size in documents:
        total += size
        if seen.get(path, [None])[0] != sha[:DIGEST_CHARS]:
            changed += size
    return round(changed / total, 4) if total else 0.0


def adaptation_summary(index_dir: str | Path, documents: Iterable[tuple[str, str, int]]) -> dict:
    """What ``stats`` says about adaptation: which reader answers, and whether to adapt again."""
    adaptation = read_adaptation(index_dir)
    if adaptation is None or adapted_reader(index_dir) is None:
        return {"reader": "shipped (run `notesqa adapt NOTES` to adapt it to these notes)"}
    share = changed_share(adaptation, documents)
    summary = {
        "reader": (
            f"adapted to these notes ({adaptation.get('steps', '?')} steps, "
            f"{adaptation.get('minutes', '?')} min, {adaptation.get('created', '?')}; "
            "--base uses the shipped one)"
        ),
        "adapted_from": adaptation.get("base"),
        "notes_changed_since_adapting": share,
    }
    if share >= READAPT_SHARE:
        summary["suggestion"] = (
            f"{share:.0%} of the notes changed since the reader was adapted; "
            "run `notesqa adapt NOTES` again"
        )
    return summary


def is_adapted_leftover(name: str) -> bool:
    """Names an interrupted write of ``adapted/`` can leave inside the index folder."""
    return name.startswith(temp_prefix(ADAPTED_DIR)) or name == backup_of(ADAPTED_DIR).name


def carry_adapted(old_index: str | Path, new_build: str | Path) -> bool:
    """Put the adapted models of ``old_index`` into the index build ``new_build`` (hard links
    where the file system allows, else copies), so an index update keeps them. Returns whether
    there was anything to carry."""
    source = adapted_dir(old_index)
    if read_adaptation(old_index) is None:
        return False
    target = adapted_dir(new_build)
    for root, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
        relative = Path(root).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            src = Path(root, name)
            if src.is_symlink():
                continue
            try:
                os.link(src, target / relative / name)
            except OSError:
                shutil.copy2(src, target / relative / name)
    return (target / MARKER).exists()
