"""Whose folder is it? Finding the index folder, recognising a notesqa index, refusing to
replace anything else, and swapping a freshly written index in for the old one.

notesqa deletes or replaces only folders it wrote itself: a manifest with the ``notesqa: index``
marker and nothing in the folder that notesqa does not write (``OWN_ENTRIES``). A folder cannot be
renamed over a non-empty folder, so ``swap_in`` is two renames: old -> backup, new -> folder; only
in the microseconds between them is there no index.

Example:
    >>> check_replaceable("notes/.notesqa")    # nothing there yet, or an index of ours: fine
    >>> check_replaceable("notes")             # doctest: +SKIP
    ValueError: notes exists and is not a notesqa index; nothing was changed. ...
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

FORMAT_VERSION = 3  # 2: adds the bm25/ keyword index; 3: several vectors per chunk
READABLE_VERSIONS = (2, 3)  # a version-2 index has one vector per chunk and no vectors table
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.faiss"
SQLITE_FILE = "notes.sqlite"
BM25_DIR = "bm25"
EXACT_VECTORS_FILE = "vectors.npy"  # only beside approximate (hnsw/ivfpq) indexes
INDEX_DIRNAME = ".notesqa"  # the default index folder, inside the notes folder
# Every name notesqa writes inside an index folder: a folder holding anything else is not ours to
# replace or delete, whatever its manifest says.
OWN_ENTRIES = frozenset({MANIFEST_FILE, VECTORS_FILE, SQLITE_FILE, BM25_DIR, EXACT_VECTORS_FILE})
MARKER_KEY, MARKER_VALUE = "notesqa", "index"  # in every manifest notesqa writes


class IndexDamaged(ValueError):
    """The index folder is a notesqa index but a file in it cannot be used (truncated, garbage,
    counts that disagree with the manifest). A plain ``notesqa index`` rebuilds it.

    Example:
        >>> str(IndexDamaged(Path("n/.notesqa"), "notes.sqlite is not a database", "n"))
        'index at n/.notesqa is damaged (notes.sqlite is not a database); run `notesqa index n --rebuild`'
    """

    def __init__(self, folder: Path, problem: str, notes_dir: str | None = None) -> None:
        self.folder = folder
        self.problem = problem
        notes = notes_dir or "NOTES_DIR"
        super().__init__(
            f"index at {folder} is damaged ({problem}); run `notesqa index {notes} --rebuild`"
        )


def resolve_index_dir(index: str | Path | None) -> Path:
    """``--index``, then ``$NOTESQA_INDEX``, then ``./.notesqa``."""
    if index:
        return Path(index).expanduser()
    if os.environ.get("NOTESQA_INDEX"):
        return Path(os.environ["NOTESQA_INDEX"]).expanduser()
    return Path.cwd() / INDEX_DIRNAME


def check_index_location(notes_dir: Path, index_dir: Path) -> None:
    """Refuse an index folder that is the notes folder or lies above it: replacing the index
    would then replace the notes. (Inside the notes folder, like the default, is fine.)"""
    notes, index = notes_dir.resolve(), index_dir.expanduser().resolve()
    if index == notes:
        raise ValueError(
            f"--index {index_dir} is the notes folder itself; the index needs a folder of its own: "
            f"leave out --index to use {notes_dir / INDEX_DIRNAME}"
        )
    if index in notes.parents:
        raise ValueError(
            f"--index {index_dir} contains the notes folder {notes_dir}; pass a folder of its own "
            f"for the index, e.g. {notes_dir / INDEX_DIRNAME} (the default)"
        )


def read_manifest(folder: str | Path) -> dict | None:
    """The JSON object in ``folder/manifest.json``, or ``None`` when it is missing or unreadable."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def foreign_entries(folder: str | Path) -> list[str]:
    """Names in ``folder`` that notesqa never writes into an index folder (sorted).

    Example:
        >>> foreign_entries("notes/.notesqa")  # doctest: +SKIP
        []
    """
    return sorted(name for name in os.listdir(folder) if name not in OWN_ENTRIES)


def is_notesqa_index(folder: str | Path) -> bool:
    """Whether ``folder`` is an index that notesqa wrote and may replace or delete.

    Recognised by its manifest's content, never by a file name: the ``notesqa: index`` marker (or,
    for indexes written before the marker, a readable format version with the embedder and chunk
    count), and nothing in the folder that notesqa does not write itself.
    """
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    manifest = read_manifest(folder)
    if manifest is None:
        return False
    marked = manifest.get(MARKER_KEY) == MARKER_VALUE
    legacy = (
        manifest.get("format_version") in READABLE_VERSIONS
        and isinstance(manifest.get("embedder"), str)
        and "num_chunks" in manifest
        and (folder / VECTORS_FILE).is_file()
        and (folder / SQLITE_FILE).is_file()
    )
    return (marked or legacy) and not foreign_entries(folder)


def check_replaceable(folder: str | Path) -> None:
    """Raise ``ValueError`` unless ``folder`` may receive a new index: it does not exist, is an
    empty folder, or is a notesqa index (which the new one replaces). Nothing is touched.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise ValueError(
            f"{folder} is a symbolic link; pass the real folder for the index, or a new one"
        )
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(
            f"{folder} is a file, not a folder; pass a new or empty folder for the index"
        )
    if not any(folder.iterdir()) or is_notesqa_index(folder):
        return
    if read_manifest(folder) is not None and read_manifest(folder).get(MARKER_KEY) == MARKER_VALUE:
        raise ValueError(
            f"{folder} is a notesqa index but also holds files notesqa did not write "
            f"({', '.join(foreign_entries(folder)[:5])}); move them out, then index again"
        )
    raise ValueError(
        f"{folder} exists and is not a notesqa index; nothing was changed. Pass a new or empty "
        "folder for the index (the default is NOTES_DIR/.notesqa)"
    )


def remove_stale_builds(folder: str | Path) -> None:
    """Delete the temporary folders of builds of ``folder`` that were killed before their swap
    (``.NAME.tmp-*`` beside it), but only those holding nothing notesqa did not write."""
    folder = Path(folder)
    for stale in folder.parent.glob(f".{folder.name}.tmp-*"):
        if stale.is_dir() and not stale.is_symlink() and not foreign_entries(stale):
            shutil.rmtree(stale, ignore_errors=True)


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk (folders cannot be opened on Windows: skip there)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_if_ours(path: Path) -> None:
    """Delete ``path`` if it is a notesqa index or an empty folder; leave anything else alone."""
    if is_notesqa_index(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()


def swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by ``tmp``: old -> backup, tmp -> folder, drop backup.

    Only ever deletes what notesqa wrote: ``folder`` was checked by ``check_replaceable`` and a
    leftover backup that is not an index stops the swap before anything moves.
    """
    backup = folder.with_name(f".{folder.name}.old")
    if backup.exists() and folder.exists():  # stale leftover of an earlier build
        remove_if_ours(backup)
    if backup.exists() and not is_notesqa_index(backup):
        raise ValueError(
            f"{backup} is in the way of the index update and is not a notesqa index; "
            "move it elsewhere and index again"
        )
    # (A backup without a folder is the last good index of an interrupted swap: it is kept
    # until the new index is in place.)
    had_old = folder.exists()
    if had_old:
        os.rename(folder, backup)
    try:
        os.rename(tmp, folder)
    except OSError:
        if had_old:
            os.rename(backup, folder)  # put the old index back
        raise
    fsync_path(folder.parent)
    if backup.exists():
        remove_if_ours(backup)
