"""The on-disk index: FAISS vectors + SQLite metadata + a JSON manifest, in one folder.

Layout of the folder (no pickle anywhere)::

    manifest.json    {"format_version", "embedder", "dim", "num_chunks", "num_vectors",
                      "num_documents", "created", ...whatever the caller adds (e.g. chunking
                      and window settings)}
    vectors.faiss    faiss.write_index of the vectors (flat inner product unless approximate);
                     FAISS ids = vector ids, 0..num_vectors-1
    notes.sqlite     documents(id, path UNIQUE, sha256, mtime, size)
                     chunks(id PRIMARY KEY, document_id, start, end, heading, text)
                     vectors(id PRIMARY KEY, chunk_id): the chunk each vector belongs to
    bm25/            bm25s keyword index over the same chunks (JSON + .npy, no pickle)

Vectors are unit rows, so the inner product FAISS returns is the cosine similarity. A chunk has
one vector or several (its own and its token windows', ``embedder.windows``); vectors are grouped
by chunk in chunk order, and a search scores a chunk by a soft maximum of its vectors' cosines
(``soft_best``: the best one, lifted a little where more of them match). With one vector per
chunk, vector id = chunk id and a chunk's score is its cosine.

:meth:`NotesStore.build` writes a complete index into a temporary sibling folder, fsyncs it and
only then swaps it in for the old one: an error or a crash while writing leaves the previous
index as it was. (A folder cannot be renamed over a non-empty folder, so the swap is two
renames: old -> backup, new -> folder; only in the microseconds between them is there no index.)

Example::

    >>> store = NotesStore.build("notes/.notesqa", docs, chunks, vectors,
    ...                          {"embedder": "models/embedder", "dim": 256})  # doctest: +SKIP
    >>> NotesStore.open("notes/.notesqa").search(vectors[0], k=1)[0].score     # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import copy
import datetime as dt
import errno
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag import ann
from rag.ann import build_index
from rag.chunking import Chunk
from rag.documents import Document
from rag.sparse import BM25Index

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: adds the bm25/ keyword index; 3: several vectors per chunk
READABLE_VERSIONS = (2, 3)  # a version-2 index has one vector per chunk and no vectors table
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.faiss"
SQLITE_FILE = "notes.sqlite"
BM25_DIR = "bm25"
EXACT_VECTORS_FILE = "vectors.npy"  # only beside approximate (hnsw/ivfpq) indexes
# Every name notesqa writes inside an index folder: a folder holding anything else is not ours to
# replace or delete, whatever its manifest says.
OWN_ENTRIES = frozenset({MANIFEST_FILE, VECTORS_FILE, SQLITE_FILE, BM25_DIR, EXACT_VECTORS_FILE})
MARKER_KEY, MARKER_VALUE = "notesqa", "index"  # in every manifest notesqa writes
_REBUILD_HINT = "rebuild it with `notesqa index NOTES_DIR --rebuild`"
_UNIT_NORM_TOLERANCE = 1e-3

_SCHEMA = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    mtime REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX chunks_document_id ON chunks(document_id);
CREATE TABLE vectors (
    id INTEGER PRIMARY KEY,
    chunk_id INTEGER NOT NULL REFERENCES chunks(id)
);
CREATE TABLE skipped (
    path TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""
_CHUNK_SELECT = (
    'SELECT c.id, d.path, c.start, c."end", c.text, c.heading '
    "FROM chunks c JOIN documents d ON d.id = c.document_id"
)


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


@dataclass
class Hit:
    """One search result; ``score`` is the cosine similarity of the query and the chunk (with
    several vectors per chunk, their ``soft_best``)."""

    chunk: Chunk
    score: float
    chunk_id: int


def owner_bounds(owners: np.ndarray, count: int) -> np.ndarray:
    """``(count + 1,)`` offsets: owner ``i``'s vectors are rows ``bounds[i]:bounds[i + 1]`` of
    vectors grouped by (non-decreasing) ``owners``; an owner with no vectors gets an empty range.

    Example:
        >>> owner_bounds(np.array([0, 0, 2, 2]), 3).tolist()
        [0, 2, 2, 4]
    """
    return np.searchsorted(np.asarray(owners), np.arange(count + 1))


def best_per_owner(
    ids: Sequence[int], scores: Sequence[float], owners: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """``(owner, score)`` of the first ``k`` distinct owners of ``ids`` (vector ids ranked best
    first, ``-1`` = no hit), each scored by its best vector: a chunk's score is its best window's.

    Example:
        >>> best_per_owner([4, 0, 5, 1], [0.9, 0.8, 0.7, 0.6], np.array([0, 0, 1, 1, 2, 2]), 2)
        [(2, 0.9), (0, 0.8)]
    """
    best: dict[int, float] = {}
    for vector_id, score in zip(ids, scores, strict=True):
        if vector_id < 0:
            continue
        best.setdefault(int(owners[vector_id]), float(score))  # the first is the best
        if len(best) == k:
            break
    return list(best.items())


WINDOW_TEMPERATURE = 0.02  # chosen on held-out SQuAD train: benchmarks/window_scoring.py


def soft_best(cosines: np.ndarray, temperature: float = WINDOW_TEMPERATURE) -> float:
    """A chunk's score from its vectors' cosines ``s``: ``t * log(mean(exp(s / t)))``.

    Between the mean and the best of ``s`` (the best as ``t`` -> 0); with ``t`` = 0.02 a chunk
    whose own vector and several windows match a question outranks one with a single window as
    good, and the mean keeps long chunks (more windows) from gaining by length. On SQuAD dev with
    the shipped embedder and 32-token windows: Recall@5 0.7554 against 0.7466 for the best alone
    (``benchmarks/window_scoring.py``). One vector: its cosine.

    Example:
        >>> round(soft_best(np.array([0.8])), 4), round(soft_best(np.array([0.8, 0.2])), 4)
        (0.8, 0.7861)
    """
    s = np.asarray(cosines, dtype=np.float64)  # (n,)
    top = float(s.max())
    return top + temperature * float(np.log(np.mean(np.exp((s - top) / temperature))))


def rescore_owners(
    owners: Sequence[int], query: np.ndarray, vectors_of: Callable[[int], np.ndarray], k: int
) -> list[tuple[int, float]]:
    """``(owner, soft_best)`` of the ``k`` best of the candidate ``owners``, best first, each
    scored over all its vectors (``vectors_of(owner)``: ``(n, d)`` unit rows; ``query``: ``(d,)``).

    Example:
        >>> rows = {0: np.array([[1.0, 0.0]]), 1: np.array([[0.6, 0.8], [0.8, 0.6]])}
        >>> rescore_owners([0, 1], np.array([1.0, 0.0]), rows.__getitem__, 1)
        [(0, 1.0)]
    """
    scored = [(int(o), soft_best(vectors_of(o) @ query)) for o in owners]
    return sorted(scored, key=lambda pair: -pair[1])[:k]


def candidates_for(k: int, num_vectors: int, num_owners: int) -> int:
    """How many vectors to fetch so that ``k`` distinct owners are likely among them: twice
    ``k`` times the (rounded-up) vectors per owner."""
    return min(num_vectors, 2 * k * -(-num_vectors // max(num_owners, 1)))


def _fsync(path: Path) -> None:
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


def _check_vector_chunks(vector_chunks: np.ndarray | None, num_vectors: int, num_chunks: int):
    """The chunk id of every vector as int64 (``arange`` when ``None``), validated."""
    if vector_chunks is None:
        if num_vectors != num_chunks:
            raise ValueError(
                f"vectors has {num_vectors} rows but there are {num_chunks} chunks; pass one "
                "vector per chunk in the same order, or vector_chunks naming each row's chunk"
            )
        return np.arange(num_chunks, dtype=np.int64)
    owners = np.asarray(vector_chunks)
    if owners.shape != (num_vectors,) or not np.issubdtype(owners.dtype, np.integer):
        raise ValueError(
            f"vector_chunks must be {num_vectors} integer chunk ids, one per vector row, got "
            f"shape {owners.shape} of {owners.dtype}"
        )
    owners = owners.astype(np.int64)
    if num_vectors and (np.any(np.diff(owners) < 0) or owners[0] < 0):
        raise ValueError(
            "vector_chunks must be non-decreasing chunk ids >= 0: group each chunk's vectors "
            "together, in chunk order"
        )
    present = np.unique(owners)
    if len(present) != num_chunks or (num_chunks and present[-1] != num_chunks - 1):
        raise ValueError(
            f"vector_chunks names {len(present)} distinct chunks ({present[:3].tolist()}...) "
            f"but there are {num_chunks} chunks, ids 0..{num_chunks - 1}; every chunk needs at "
            "least one vector, so that a search can find it"
        )
    return owners


def _check_inputs(
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    manifest: dict,
    vector_chunks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate everything before touching the disk; return vectors as C-contiguous float32 and
    every vector's chunk id."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(
            f"vectors must be a 2-D array (num_vectors, dim), got shape {vectors.shape}"
        )
    owners = _check_vector_chunks(vector_chunks, vectors.shape[0], len(chunks))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.all(np.isfinite(vectors)):
        raise ValueError("vectors contain NaN or inf; check the embedder output")
    norms = np.linalg.norm(vectors, axis=1)
    if len(norms) and np.max(np.abs(norms - 1.0)) > _UNIT_NORM_TOLERANCE:
        raise ValueError(
            f"vectors must be unit length (norms range {norms.min():.4f}..{norms.max():.4f}); "
            "normalise the rows, e.g. vectors / np.linalg.norm(vectors, axis=1, keepdims=True)"
        )
    if not isinstance(manifest.get("embedder"), str):
        raise ValueError(
            f"manifest['embedder'] must be a string naming the embedder, got "
            f"{manifest.get('embedder')!r}"
        )
    dim = manifest.get("dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"manifest['dim'] must be a positive int, got {dim!r}")
    if vectors.shape[1] != dim:
        raise ValueError(
            f"vectors have dimension {vectors.shape[1]} but manifest['dim'] is {dim}; "
            "set dim to the embedder's output size"
        )
    try:
        json.dumps(manifest)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"manifest must be JSON-serialisable: {exc}") from exc
    paths = [d.path for d in documents]
    if len(set(paths)) != len(paths):
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        raise ValueError(f"duplicate document paths {dupes}; pass each document once")
    known = set(paths)
    missing = sorted({c.source for c in chunks if c.source not in known})
    if missing:
        raise ValueError(
            f"chunks refer to documents that were not passed: {missing[:5]}; "
            "pass the Document of every chunk's source"
        )
    return vectors, owners


def _write_sqlite(
    path: Path,
    documents: list[Document],
    chunks: list[Chunk],
    owners: np.ndarray,
    skipped: Sequence[tuple[str, str]] = (),
) -> None:
    doc_ids = {d.path: i for i, d in enumerate(documents)}
    conn = sqlite3.connect(str(path))
    try:
        conn.executescript(_SCHEMA)
        conn.executemany(
            "INSERT INTO documents (id, path, sha256, mtime, size) VALUES (?, ?, ?, ?, ?)",
            [(i, d.path, d.sha256, float(d.mtime), int(d.size)) for i, d in enumerate(documents)],
        )
        conn.executemany(
            'INSERT INTO chunks (id, document_id, start, "end", heading, text) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (i, doc_ids[c.source], c.start, c.end, c.heading, c.text)
                for i, c in enumerate(chunks)
            ],
        )
        conn.executemany(
            "INSERT INTO vectors (id, chunk_id) VALUES (?, ?)",
            ((i, chunk_id) for i, chunk_id in enumerate(owners.tolist())),
        )
        conn.executemany(
            "INSERT INTO skipped (path, reason) VALUES (?, ?)",
            [(str(path), str(reason)) for path, reason in skipped],
        )
        conn.commit()
    finally:
        conn.close()


def _write_faiss(index: Any, path: Path) -> None:
    """``faiss.write_index``, its C++ write errors (a full disk) raised as ``OSError``."""
    try:
        faiss.write_index(index, str(path))
    except RuntimeError as exc:
        code = errno.ENOSPC if "No space left" in str(exc) else errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from exc


def _remove_if_ours(path: Path) -> None:
    """Delete ``path`` if it is a notesqa index or an empty folder; leave anything else alone."""
    if is_notesqa_index(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()


def _swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by ``tmp``: old -> backup, tmp -> folder, drop backup.

    Only ever deletes what notesqa wrote: ``folder`` was checked by ``check_replaceable`` and a
    leftover backup that is not an index stops the swap before anything moves.
    """
    backup = folder.with_name(f".{folder.name}.old")
    if backup.exists() and folder.exists():  # stale leftover of an earlier build
        _remove_if_ours(backup)
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
    _fsync(folder.parent)
    if backup.exists():
        _remove_if_ours(backup)


def _open_checked_sqlite(
    path: Path, manifest: dict, damaged: Callable[[str], IndexDamaged]
) -> sqlite3.Connection:
    """A read-only connection to the index's SQLite file after ``PRAGMA quick_check`` and a
    count of its rows against the manifest; ``damaged(problem)`` is raised otherwise."""
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise damaged(f"{SQLITE_FILE} fails its integrity check: {verdict}")
        chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        documents = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        vectors = None
        if manifest.get("format_version", 0) >= 3:
            vectors = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise damaged(f"{SQLITE_FILE} cannot be read: {exc}") from exc
    except IndexDamaged:
        conn.close()
        raise
    counts = [("passages", chunks, manifest["num_chunks"])]
    if "num_documents" in manifest:
        counts.append(("files", documents, manifest["num_documents"]))
    if vectors is not None:
        counts.append(("vectors", vectors, manifest.get("num_vectors")))
    for what, have, want in counts:
        if have != want:
            conn.close()
            raise damaged(f"{SQLITE_FILE} holds {have} {what}, {MANIFEST_FILE} says {want}")
    return conn


class NotesStore:
    """An opened index. Use :meth:`build` to write one and :meth:`open` to load it.

    Safe to share between threads (Streamlit): SQLite reads go through one lock-protected
    connection, and FAISS searches on a flat index do not mutate it.
    """

    def __init__(self, folder: Path, manifest: dict, index: Any, conn: sqlite3.Connection):
        self.folder = folder
        self._manifest = manifest
        self._index = index
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self._bm25: BM25Index | None = None
        self._exact: np.ndarray | None = None
        self._owners: np.ndarray | None = None  # chunk id of every vector; None: the same id
        self._bounds: np.ndarray | None = None  # (num_chunks + 1,) each chunk's vector range
        if index.ntotal != self._manifest["num_chunks"]:  # several vectors per chunk
            rows = self._query("SELECT chunk_id FROM vectors ORDER BY id")
            self._owners = np.asarray([row[0] for row in rows], dtype=np.int64)
            if len(self._owners) != index.ntotal or (
                len(rows) and (np.any(np.diff(self._owners) < 0) or self._owners[-1] >= len(self))
            ):
                self.close()
                raise IndexDamaged(
                    folder,
                    f"its vectors table does not match {VECTORS_FILE} ({index.ntotal} vectors)",
                    manifest.get("notes_root"),
                )
            self._bounds = owner_bounds(self._owners, self._manifest["num_chunks"])

    # ---- writing -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        folder: str | Path,
        documents: list[Document],
        chunks: list[Chunk],
        vectors: np.ndarray,
        manifest: dict,
        index_type: str = "flat",
        vector_chunks: np.ndarray | None = None,
        skipped: Sequence[tuple[str, str]] = (),
    ) -> NotesStore:
        """Write a complete index to ``folder`` (replacing any old one) and open it.

        ``folder`` must be new, empty or a notesqa index (``check_replaceable``); ``skipped``
        lists ``(path, reason)`` of the files the loader left out, for ``notesqa stats --files``.

        ``index_type`` is ``flat`` (exact, the default), ``hnsw`` or ``ivfpq`` (approximate, for
        large collections; their recall against exact search is measured and put in the manifest).

        ``vectors`` is ``(num_vectors, dim)`` float32 with unit rows; chunk ``i`` gets id ``i``.
        ``vector_chunks`` (``(num_vectors,)`` ints, non-decreasing) names each row's chunk when a
        chunk has several vectors; ``None`` means one vector per chunk, in chunk order.
        ``manifest`` needs ``"embedder"`` (str) and ``"dim"`` (int); ``format_version``,
        ``num_chunks``, ``num_vectors``, ``num_documents`` and ``created`` are added here.
        """
        folder = Path(folder).expanduser()
        vectors, owners = _check_inputs(documents, chunks, vectors, manifest, vector_chunks)
        check_replaceable(folder)  # never replace (and so delete) what notesqa did not write
        full_manifest = {
            **copy.deepcopy(manifest),
            MARKER_KEY: MARKER_VALUE,
            "format_version": FORMAT_VERSION,
            "num_chunks": len(chunks),
            "num_vectors": len(owners),
            "num_documents": len(documents),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            index, ann_info = build_index(vectors, index_type)
            full_manifest.update(ann_info)
            _write_faiss(index, tmp / VECTORS_FILE)
            if ann_info["index_type"] != "flat":  # exact copies: reuse and filtered search
                np.save(tmp / EXACT_VECTORS_FILE, vectors, allow_pickle=False)
            try:
                _write_sqlite(tmp / SQLITE_FILE, documents, chunks, owners, skipped)
            except sqlite3.OperationalError as exc:  # "database or disk is full"
                code = errno.ENOSPC if "full" in str(exc) else errno.EIO
                raise OSError(code, f"cannot write the index ({exc})", str(tmp)) from exc
            BM25Index.build([c.text for c in chunks]).save(tmp / BM25_DIR)
            # The manifest goes last: a folder with a manifest is a finished index.
            (tmp / MANIFEST_FILE).write_text(
                json.dumps(full_manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            for name in (VECTORS_FILE, SQLITE_FILE, MANIFEST_FILE):
                _fsync(tmp / name)
            _fsync(tmp)
            _swap_in(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info(
            "wrote index with %d chunks (%d vectors) from %d documents to %s",
            len(chunks),
            len(owners),
            len(documents),
            folder,
        )
        return cls.open(folder)

    # ---- reading -------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path, expected: dict | None = None) -> NotesStore:
        """Open the index in ``folder``, checking that it is whole and matches ``expected``.

        A damaged index (a file missing, truncated or garbage, counts that disagree with the
        manifest) raises ``IndexDamaged`` before anything is compared. ``expected`` maps manifest
        keys to required values, e.g. ``{"embedder": "models/embedder", "dim": 256}``; any
        difference raises ``ValueError`` naming the key, both values and the fix.
        """
        folder = Path(folder).expanduser()
        manifest_path = folder / MANIFEST_FILE
        backup = folder.with_name(f".{folder.name}.old")
        if not manifest_path.is_file() and (backup / MANIFEST_FILE).is_file():
            # a swap was interrupted between its two renames: the previous index is intact
            logger.warning("using the previous index at %s (an update was interrupted)", backup)
            return cls.open(backup, expected)
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"no notesqa index at {folder}; run `notesqa index NOTES_DIR` first"
            )
        manifest = read_manifest(folder)
        if manifest is None:
            raise IndexDamaged(folder, f"{MANIFEST_FILE} is not a readable JSON object")
        notes_dir = (
            manifest.get("notes_root") if isinstance(manifest.get("notes_root"), str) else None
        )

        def damaged(problem: str) -> IndexDamaged:
            return IndexDamaged(folder, problem, notes_dir)

        stored_version = manifest.get("format_version")
        if stored_version not in READABLE_VERSIONS:
            raise ValueError(
                f"index at {folder} has format_version={stored_version!r} but this notesqa "
                f"reads format_version {' or '.join(map(str, READABLE_VERSIONS))}; {_REBUILD_HINT}"
            )
        for key in ("num_chunks", "dim"):
            value = manifest.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise damaged(f"{MANIFEST_FILE} has {key}={value!r}, not a count")
        for name in (VECTORS_FILE, SQLITE_FILE, f"{BM25_DIR}/size.txt"):
            if not (folder / name).is_file():
                raise damaged(f"{name} is missing")
        try:
            index = faiss.read_index(str(folder / VECTORS_FILE))
        except RuntimeError as exc:
            raise damaged(f"{VECTORS_FILE} cannot be read: {str(exc).splitlines()[0]}") from exc
        num_vectors = manifest.get("num_vectors", manifest.get("num_chunks"))  # v2: one each
        if index.d != manifest["dim"] or index.ntotal != num_vectors:
            raise damaged(
                f"{VECTORS_FILE} holds {index.ntotal} vectors of dimension {index.d}, "
                f"{MANIFEST_FILE} says {num_vectors} of dimension {manifest['dim']}"
            )
        conn = _open_checked_sqlite(folder / SQLITE_FILE, manifest, damaged)
        try:
            size = int((folder / BM25_DIR / "size.txt").read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            size = -1
        if size != manifest["num_chunks"]:
            conn.close()
            raise damaged(
                f"{BM25_DIR}/size.txt says {size if size >= 0 else 'nothing readable'}, "
                f"{MANIFEST_FILE} {manifest['num_chunks']} passages"
            )
        # Compare as JSON sees it, so a tuple in `expected` equals the stored list.
        for key, want in json.loads(json.dumps(expected or {})).items():
            have = manifest.get(key)
            if have != want:
                conn.close()
                raise ValueError(
                    f"index at {folder} was built with {key}={have!r} but {key}={want!r} is "
                    f"expected; {_REBUILD_HINT}"
                )
        return cls(folder, manifest, index, conn)

    @property
    def manifest(self) -> dict:
        """A copy of the manifest (mutating it does not change the store)."""
        return copy.deepcopy(self._manifest)

    def __len__(self) -> int:
        """The number of chunks (``num_vectors`` counts their vectors)."""
        return int(self._manifest["num_chunks"])

    @property
    def num_vectors(self) -> int:
        return int(self._index.ntotal)

    def vector_chunk_ids(self) -> np.ndarray:
        """``(num_vectors,)`` int64: the chunk id of every stored vector (non-decreasing)."""
        if self._owners is None:
            return np.arange(self.num_vectors, dtype=np.int64)
        return self._owners.copy()

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self._conn is None:
            raise ValueError(f"the index at {self.folder} is closed; open it again")
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise IndexDamaged(
                    self.folder, f"{SQLITE_FILE}: {exc}", self._manifest.get("notes_root")
                ) from exc

    @staticmethod
    def _row_to_chunk(row: tuple) -> Chunk:
        _, path, start, end, text, heading = row
        return Chunk(source=path, start=start, end=end, text=text, heading=heading)

    @property
    def bm25(self) -> BM25Index:
        """The keyword index over the same chunk ids (loaded on first use)."""
        if self._bm25 is None:
            try:
                self._bm25 = BM25Index.load(self.folder / BM25_DIR)
            except (OSError, ValueError, KeyError, IndexError) as exc:
                raise IndexDamaged(
                    self.folder,
                    f"the keyword index {BM25_DIR}/ cannot be read: {type(exc).__name__}: {exc}",
                    self._manifest.get("notes_root"),
                ) from exc
        return self._bm25

    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of the files the last ``index`` left out (none for older indexes)."""
        try:
            return [tuple(row) for row in self._query("SELECT path, reason FROM skipped")]
        except IndexDamaged as exc:
            if "no such table" in str(exc):
                return []
            raise

    def ids_matching(self, path_glob: str | None = None, heading: str | None = None) -> np.ndarray:
        """Chunk ids whose file path matches ``path_glob`` (SQLite GLOB, e.g. ``bio/*``) and whose
        heading path contains ``heading`` (case-insensitive); used to filter *inside* searches."""
        where, params = [], []
        if path_glob:
            where.append("d.path GLOB ?")
            params.append(path_glob)
        if heading:
            where.append("lower(c.heading) LIKE ?")
            params.append(f"%{heading.lower()}%")
        sql = f"{_CHUNK_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''}"
        return np.asarray([row[0] for row in self._query(sql, tuple(params))], dtype=np.int64)

    def hits(self, scored: list[tuple[int, float]]) -> list[Hit]:
        """``Hit``s for ``(chunk_id, score)`` pairs, in the given order."""
        if not scored:
            return []
        marks = ",".join("?" * len(scored))
        rows = self._query(f"{_CHUNK_SELECT} WHERE c.id IN ({marks})", tuple(i for i, _ in scored))
        by_id = {row[0]: self._row_to_chunk(row) for row in rows}
        return [Hit(chunk=by_id[i], score=s, chunk_id=i) for i, s in scored if i in by_id]

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` chunks most similar to ``query`` (shape ``(d,)`` or ``(1, d)``), best first.

        ``nearest`` without loading the chunks is what fusion uses for its candidates.

        ``allowed`` (chunk ids) restricts the search itself (a FAISS ID selector), so a filter
        never returns fewer than ``k`` hits while enough matching chunks exist.

        Example::

            >>> [h.chunk_id for h in store.search(store.vectors()[3], k=2)]  # doctest: +SKIP
            [3, 7]
        """
        return self.hits(self.nearest(query, k, allowed))

    def nearest(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """``(chunk_id, score)`` of the ``k`` chunks most similar to ``query``, best first; a
        chunk's score is its cosine, or with several vectors their ``soft_best`` (the chunks whose
        vectors the index finds nearest, re-scored over all their vectors); ``allowed`` as in
        ``search``."""
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))  # (1, d)
        if q.shape[1] != self._index.d:
            raise ValueError(
                f"query has dimension {q.shape[1]} but the index holds dimension "
                f"{self._index.d}; embed the query with the embedder that built the index "
                f"({self._manifest.get('embedder')!r})"
            )
        k = min(int(k), len(self) if allowed is None else len(allowed))
        if k <= 0:
            return []
        owners = self._owners
        if owners is None:  # vector id = chunk id
            return self._nearest_vectors(q, k, allowed)
        allowed_vectors = None
        if allowed is not None:
            allowed_vectors = np.flatnonzero(np.isin(owners, np.asarray(allowed, np.int64)))
        available = self.num_vectors if allowed_vectors is None else len(allowed_vectors)
        fetch = min(available, candidates_for(k, self.num_vectors, len(self)))
        while True:  # fetch vectors until k distinct chunks are among them
            hits = self._nearest_vectors(q, fetch, allowed_vectors)
            found = best_per_owner([i for i, _ in hits], [s for _, s in hits], owners, len(hits))
            if len(found) >= k or fetch >= available:
                return rescore_owners([o for o, _ in found], q[0], self._vectors_of, k)
            fetch = min(available, 2 * fetch)

    def _vectors_of(self, chunk_id: int) -> np.ndarray:
        """The ``(n, d)`` vectors of one chunk (grouped by chunk, so one contiguous range)."""
        first, end = self._bounds[chunk_id], self._bounds[chunk_id + 1]
        if self._manifest.get("index_type", "flat") != "flat":  # exact copies beside the index
            return np.asarray(self.vectors()[first:end], dtype=np.float32)
        return self._index.reconstruct_batch(np.arange(first, end, dtype=np.int64))

    def _nearest_vectors(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """``(vector_id, cosine)`` of the ``k`` vectors nearest the ``(1, d)`` query ``q``,
        best first, among the ``allowed`` vector ids (all when ``None``)."""
        if allowed is not None and self._manifest.get("index_type", "flat") != "flat":
            return self._exact_subset_search(q[0], k, allowed)
        if self._manifest.get("index_type", "flat") != "flat":  # candidates re-ranked exactly
            scores, ids = ann.search(self._index, q, k, exact_vectors=self.vectors())  # (1, k)
        else:
            params = None
            if allowed is not None:
                params = faiss.SearchParameters(
                    sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
                )
            scores, ids = self._index.search(q, k, params=params)  # (1, k), (1, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _exact_subset_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray
    ) -> list[tuple[int, float]]:
        """Exact search among ``allowed`` vector ids (filters on approximate indexes)."""
        ids = np.asarray(allowed, dtype=np.int64)
        scores = self.vectors()[ids] @ query  # (A,)
        top = np.argsort(-scores)[:k]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def chunk(self, chunk_id: int) -> Chunk:
        """The chunk with id ``chunk_id``; ``KeyError`` if there is none."""
        rows = self._query(f"{_CHUNK_SELECT} WHERE c.id = ?", (int(chunk_id),))
        if not rows:
            raise KeyError(f"no chunk with id {chunk_id} in the index at {self.folder}")
        return self._row_to_chunk(rows[0])

    def chunks(self) -> list[Chunk]:
        """All chunks in id order (chunk ``i`` of the list has id ``i``)."""
        return [self._row_to_chunk(r) for r in self._query(f"{_CHUNK_SELECT} ORDER BY c.id")]

    def vectors(self) -> np.ndarray:
        """All stored vectors, ``(num_vectors, dim)`` float32; row ``i`` belongs to chunk
        ``vector_chunk_ids()[i]`` (to chunk ``i`` when each chunk has one).

        Lets an incremental re-index keep the vectors of unchanged files instead of re-embedding.
        """
        if self.num_vectors == 0:
            return np.zeros((0, self._index.d), dtype=np.float32)
        exact = self.folder / EXACT_VECTORS_FILE
        if exact.exists():  # approximate indexes may not reconstruct exactly (PQ)
            if self._exact is None:  # mapped once; a search reads only its candidates' rows
                self._exact = np.load(exact, mmap_mode="r", allow_pickle=False)
            return self._exact
        return self._index.reconstruct_batch(np.arange(self.num_vectors, dtype=np.int64))

    def documents(self) -> list[dict]:
        """One dict per document: ``path, sha256, mtime, size, num_chunks`` (in id order)."""
        rows = self._query(
            "SELECT d.path, d.sha256, d.mtime, d.size, COUNT(c.id) FROM documents d "
            "LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id ORDER BY d.id"
        )
        keys = ("path", "sha256", "mtime", "size", "num_chunks")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def stats(self) -> dict:
        """Counts and settings of the index (``notesqa stats``, the app's statistics panel)."""
        keys = (
            "embedder",
            "dim",
            "chunking",
            "windows",
            "notes_root",
            "created",
            "format_version",
            "index_type",
            "recall_at_10",
        )
        return {
            "index_dir": str(self.folder),
            "files": len(self.documents()),
            "passages": len(self),
            "vectors": self.num_vectors,
            **{key: self._manifest.get(key) for key in keys},
        }

    def close(self) -> None:
        """Close the SQLite connection and unmap the exact vectors (idempotent)."""
        self._exact = None
        if self._conn is not None:
            with self._lock:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> NotesStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"NotesStore({str(self.folder)!r}, chunks={len(self)}, vectors={self.num_vectors}, "
            f"embedder={self._manifest.get('embedder')!r})"
        )
