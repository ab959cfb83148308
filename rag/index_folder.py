"""Whose folder is it? Finding the index folder, recognising a notesqa index, refusing to
replace anything else, and swapping a freshly written index in for the old one.

notesqa deletes or replaces only folders it wrote itself: a manifest with the ``notesqa: index``
marker and nothing in the folder that notesqa does not write (``OWN_ENTRIES``), or, when the
manifest itself is damaged, a folder holding only notesqa's files with its ``.notesqa-owned``
record (``is_damaged_index``). Writing, swapping and cleaning up after killed writers is
``embedder.owned_folder``'s job, the one mechanism every folder notesqa writes goes through.

Example:
    >>> import tempfile
    >>> notes = Path(tempfile.mkdtemp())
    >>> _ = (notes / "week1.md").write_text("# Week 1")
    >>> check_replaceable(notes / ".notesqa")    # nothing there yet, or an index of ours: fine
    >>> check_replaceable(notes)                 # a folder of notes is never replaced
    Traceback (most recent call last):
    ValueError: ... exists and is not a notesqa index; nothing was changed. ...
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from embedder import owned_folder
from embedder.owned_folder import MARKER

# 2: adds the bm25/ keyword index; 3: several vectors per chunk; 4: segments (8-bit vectors and
# keyword postings per segment, rag.segment), the passages' ids listed in the SQLite file
FORMAT_VERSION = 4
READABLE_VERSIONS = (4,)  # an older index is rebuilt by the next `notesqa index`
KNOWN_VERSIONS = (2, 3, 4)  # folders notesqa wrote in any version (it may replace them)
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.faiss"
SQLITE_FILE = "notes.sqlite"
BM25_DIR = "bm25"
EXACT_VECTORS_FILE = "vectors.npy"  # beside approximate indexes before version 4
SEGMENTS_DIR = "segments"  # one folder per segment (rag.segment)
ADAPTED_DIR = "adapted"  # written by the `notesqa adapt` of earlier versions; a rebuild drops it
INDEX_DIRNAME = ".notesqa"  # the default index folder, inside the notes folder
# Every name notesqa writes inside an index folder: a folder holding anything else is not ours to
# replace or delete, whatever its manifest says.
OWN_ENTRIES = frozenset(
    {
        MANIFEST_FILE,
        SQLITE_FILE,
        SEGMENTS_DIR,
        MARKER,
        ADAPTED_DIR,
        *(VECTORS_FILE, BM25_DIR, EXACT_VECTORS_FILE),  # of indexes before version 4
        f"{SQLITE_FILE}-journal",  # SQLite's, while an update commits (or after a crash in one)
    }
)
MARKER_KEY, MARKER_VALUE = "notesqa", "index"  # in every manifest notesqa writes
OWNED_KIND = "index"  # the kind in the .notesqa-owned record of an index folder


class NoIndex(FileNotFoundError):
    """There is no notesqa index in the folder asked for (``notesqa index`` makes one).

    Example:
        >>> str(NoIndex(Path("n/.notesqa")))
        'no notesqa index at n/.notesqa; run `notesqa index NOTES_DIR` first'
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(f"no notesqa index at {folder}; run `notesqa index NOTES_DIR` first")


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
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in (MANIFEST_FILE, "week1.md"):
        ...     _ = (folder / name).write_text("{}")
        >>> foreign_entries(folder)
        ['week1.md']
    """
    return sorted(
        name
        for name in os.listdir(folder)
        if name not in OWN_ENTRIES
        and not (_adapted_leftover(name) and owned_folder.is_owned(Path(folder) / name))
    )


def _adapted_leftover(name: str) -> bool:
    """A temporary or previous copy of ``adapted/`` that an interrupted earlier-version
    ``notesqa adapt`` can have left inside the index folder (ours only if it carries the marker)."""
    return name.startswith(owned_folder.temp_prefix(ADAPTED_DIR)) or (
        name == owned_folder.backup_of(ADAPTED_DIR).name
    )


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
        manifest.get("format_version") in KNOWN_VERSIONS
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
    if not any(folder.iterdir()) or is_notesqa_index(folder) or is_damaged_index(folder):
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


def is_damaged_index(folder: str | Path) -> bool:
    """Whether ``folder`` is an index notesqa wrote whose manifest is missing, empty, truncated
    or not an object: nothing in it that notesqa does not write, and either its
    ``.notesqa-owned`` record says ``index`` or (an index written before that record) it holds
    ``manifest.json``, ``vectors.faiss`` and ``notes.sqlite``. Such a folder is ours to replace.

    Example (an index whose manifest a crash left empty):
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in (MANIFEST_FILE, VECTORS_FILE, SQLITE_FILE):
        ...     _ = (folder / name).write_text("")
        >>> is_damaged_index(folder)
        True
        >>> _ = (folder / "week1.md").write_text("# Week 1")
        >>> is_damaged_index(folder)                 # a file notesqa never writes: not ours
        False
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or read_manifest(folder) is not None:
        return False
    if foreign_entries(folder):
        return False
    if owned_folder.owner_kind(folder) == OWNED_KIND:
        return True
    return all((folder / name).is_file() for name in (MANIFEST_FILE, VECTORS_FILE, SQLITE_FILE))


def new_build_folder(folder: str | Path) -> Path:
    """A marked temporary folder beside the index ``folder`` for a new build (removing those of
    builds killed before their swap: ``embedder.owned_folder.new_temp``)."""
    return owned_folder.new_temp(Path(folder), OWNED_KIND)


def remove_stale_builds(folder: str | Path) -> None:
    """Delete the temporary folders of builds of ``folder`` whose writer was killed before the
    swap (``.NAME.tmp-*`` beside it carrying the marker, whatever else they hold)."""
    owned_folder.remove_stale_temps(Path(folder))


def _replaceable_leftover(path: Path) -> bool:
    """A leftover previous copy written before markers: an index of ours, or an empty folder."""
    if is_notesqa_index(path) or is_damaged_index(path):
        return True
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by ``tmp`` (``embedder.owned_folder.swap_in``): old -> backup,
    tmp -> folder, drop backup.

    Only ever deletes what notesqa wrote: ``folder`` was checked by ``check_replaceable`` (and
    is checked again here: marked, empty, or an index by ``is_notesqa_index`` /
    ``is_damaged_index``, else ``ValueError``), and a leftover backup that is neither marked nor
    an index stops the swap before anything moves.
    (A backup without a folder is the last good index of an interrupted swap: it is kept until
    the new index is in place.)
    """
    owned_folder.swap_in(
        tmp, folder, may_delete=_replaceable_leftover, may_replace=_replaceable_leftover
    )


__all__ = [
    "BM25_DIR",
    "EXACT_VECTORS_FILE",
    "FORMAT_VERSION",
    "INDEX_DIRNAME",
    "MANIFEST_FILE",
    "MARKER_KEY",
    "MARKER_VALUE",
    "OWN_ENTRIES",
    "READABLE_VERSIONS",
    "SQLITE_FILE",
    "VECTORS_FILE",
    "IndexDamaged",
    "check_index_location",
    "check_replaceable",
    "foreign_entries",
    "is_damaged_index",
    "is_notesqa_index",
    "new_build_folder",
    "read_manifest",
    "remove_stale_builds",
    "resolve_index_dir",
    "swap_in",
]
