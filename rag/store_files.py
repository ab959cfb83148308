"""The files of an index folder: inputs validated before anything is written, the SQLite
schema and its writer, and the checks a folder and its segments pass when they are opened.

Example (two passages of one note; the first has two vectors, its own and a window's):
    >>> import tempfile
    >>> docs = [Document("a.md", "Adam keeps two averages.", "0" * 64, 0.0, 24)]
    >>> chunks = [Chunk("a.md", 0, 4, "Adam", ""), Chunk("a.md", 5, 24, "keeps two averages.", "")]
    >>> vectors = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)     # unit rows
    >>> manifest = {"embedder": "made-up", "dim": 2}
    >>> owners = check_inputs(docs, chunks, vectors, manifest, vector_chunks=np.array([0, 0, 1]))
    >>> owners.tolist()
    [0, 0, 1]
    >>> path = Path(tempfile.mkdtemp()) / "notes.sqlite"
    >>> write_sqlite(path, docs, chunks, [("s000001", 2, 3, {"index_type": "flat"})])
    >>> conn = sqlite3.connect(path)
    >>> conn.execute("SELECT id, text FROM chunks").fetchall()
    [(0, 'Adam'), (1, 'keeps two averages.')]
    >>> conn.close()
    >>> check_inputs(docs, chunks, 2 * vectors, manifest, vector_chunks=np.array([0, 0, 1]))
    Traceback (most recent call last):
    ValueError: vectors must be unit length (norms range 2.0000..2.0000); normalise the rows, ...
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.chunking import Chunk
from rag.documents import Document
from rag.index_folder import (
    MANIFEST_FILE,
    READABLE_VERSIONS,
    SEGMENTS_DIR,
    SQLITE_FILE,
    IndexDamaged,
)
from rag.segment import Segment
from rag.segment_set import SegmentSet

if TYPE_CHECKING:  # (rag.vector_spool imports this module)
    from rag.vector_spool import VectorSpool

_UNIT_NORM_TOLERANCE = 0.05  # stored vectors come back from 8 bits (a component may be clipped)
_REBUILD_HINT = "rebuild it with `notesqa index NOTES_DIR --rebuild`"

SCHEMA = """
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
    text TEXT NOT NULL,
    line INTEGER,
    col INTEGER,
    context TEXT
);
CREATE INDEX chunks_document_id ON chunks(document_id);
CREATE TABLE passage_tags (
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    position INTEGER NOT NULL,
    tag TEXT NOT NULL,
    tag_key TEXT NOT NULL
);
CREATE INDEX passage_tags_key ON passage_tags(tag_key);
CREATE INDEX passage_tags_chunk ON passage_tags(chunk_id, position);
CREATE TABLE segments (
    name TEXT PRIMARY KEY,
    passages INTEGER NOT NULL,
    vectors INTEGER NOT NULL,
    kind TEXT NOT NULL,
    recall_at_10 REAL
);
CREATE TABLE skipped (
    path TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""
# segments: the folders under segments/ that hold the passages' vectors and keyword postings
# (rag.segment), with their counts and kind (flat or ivf, with the IVF's measured recall); a
# passage is alive while its row is in chunks.
# line, col: 1-based position of a chunk's start (rag.locations); context: the title and heading
# path the chunk was keyword-indexed with (rag.passage_context); passage_tags: the
# tags of each chunk's note, in the note's order. All added without a format bump: older notesqa
# versions ignore them, and an index written before them reads NULL, "" and no tags
# (``chunk_select``) until the next `notesqa index` rewrites it.
# tag_key is the tag casefolded in Python (SQLite's NOCASE and lower() fold ASCII only), so
# "Été" and "été" are one tag.
CHUNK_SELECT = (  # a chunk's tags as a JSON array of [position, tag]: any character in a tag
    'SELECT c.id, d.path, c.start, c."end", c.text, c.heading, c.line, c.col, c.context, '
    "(SELECT json_group_array(json_array(t.position, t.tag)) FROM passage_tags t "
    "WHERE t.chunk_id = c.id) "
    "FROM chunks c JOIN documents d ON d.id = c.document_id"
)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the database behind ``conn`` has a table ``name``."""
    query = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
    return conn.execute(query, (name,)).fetchone() is not None


def chunk_select(conn: sqlite3.Connection) -> str:
    """``CHUNK_SELECT`` for the index behind ``conn``: positions read as NULL, context as "" and
    tags as none from an index written before its chunks table had those columns."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(chunks)").fetchall()}
    select = CHUNK_SELECT
    if not {"line", "col"} <= columns:
        select = select.replace("c.line, c.col", "NULL, NULL")
    if "context" not in columns:
        select = select.replace("c.context", "''")
    if not has_table(conn, "passage_tags"):
        start = select.index("(SELECT json_group_array")
        select = select[:start] + "NULL " + select[select.index("FROM chunks c") :]
    return select


TAG_COUNTS = (  # (tag, notes with it), spellings that differ in case as one, most used first
    "SELECT min(t.tag), COUNT(DISTINCT c.document_id) FROM passage_tags t "
    "JOIN chunks c ON c.id = t.chunk_id GROUP BY t.tag_key "
    "ORDER BY COUNT(DISTINCT c.document_id) DESC, t.tag_key"
)


def chunk_filter(
    path_glob: str | None, heading: str | None, tags: Sequence[str]
) -> tuple[list[str], tuple]:
    """``(conditions, parameters)`` for ``CHUNK_SELECT``'s WHERE: the file path matches
    ``path_glob`` (GLOB), the heading path contains ``heading`` as plain text in any case
    (casefolded by ``open_checked_sqlite``'s ``casefold`` function: SQLite's own ``lower`` and
    ``LIKE`` fold ASCII only, and ``%`` or ``_`` in a heading are not wildcards), and the chunk
    has every tag of ``tags`` (compared by ``tag_key``: any case, ``ml`` also matching ``ml/...``).

    Example:
        >>> chunk_filter("bio/*", "Étude", [])
        (['d.path GLOB ?', 'instr(casefold(c.heading), ?) > 0'], ('bio/*', 'étude'))
    """
    where, params = [], []
    if path_glob:
        where.append("d.path GLOB ?")
        params.append(path_glob)
    if heading:
        where.append("instr(casefold(c.heading), ?) > 0")
        params.append(heading.casefold())
    for tag in tags:
        if not tag_key(tag):
            raise ValueError("an empty tag was given; pass a tag such as --tag exam")
        key = tag_key(tag)
        where.append(
            "EXISTS (SELECT 1 FROM passage_tags t WHERE t.chunk_id = c.id AND "
            "(t.tag_key = ? OR substr(t.tag_key, 1, ?) = ?))"
        )
        params.extend([key, len(key) + 1, f"{key}/"])
    return where, tuple(params)


def tag_key(tag: str) -> str:
    """How tags compare: casefolded, ``#`` and surrounding ``/`` dropped.

    Example:
        >>> tag_key("#Été/Cours/")
        'été/cours'
    """
    return tag.strip().lstrip("#").strip("/").casefold()


def split_tags(joined: str | None) -> tuple[str, ...]:
    """The tags of a chunk as ``CHUNK_SELECT`` gathers them (a JSON array of ``[position, tag]``
    in any order; ``None``: no tags), in the note's order.

    Example:
        >>> split_tags('[[1, "exam"], [0, "ml/optim"]]')
        ('ml/optim', 'exam')
    """
    if not joined:
        return ()
    return tuple(tag for _, tag in sorted(json.loads(joined), key=lambda pair: pair[0]))


def _casefold(text: str | None) -> str | None:
    """Python's full Unicode case folding, for SQL (``casefold(heading)``)."""
    return text.casefold() if isinstance(text, str) else text


def check_vector_chunks(vector_chunks: np.ndarray | None, num_vectors: int, num_chunks: int):
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


def check_inputs(
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray | VectorSpool,
    manifest: dict,
    vector_chunks: np.ndarray | None = None,
) -> np.ndarray:
    """Validate everything before touching the disk; return every vector's chunk id.

    ``vectors`` is a ``(num_vectors, dim)`` array, checked for shape, finiteness and unit rows,
    or a ``rag.vector_spool.VectorSpool``, whose rows were checked as they were spooled.
    """
    if hasattr(vectors, "blocks"):  # a VectorSpool: its rows were checked as they came
        shape = (len(vectors), vectors.dim)
    else:
        vectors = np.asarray(vectors)
        check_vector_rows(vectors)
        shape = vectors.shape
    owners = check_vector_chunks(vector_chunks, shape[0], len(chunks))
    if not isinstance(manifest.get("embedder"), str):
        raise ValueError(
            f"manifest['embedder'] must be a string naming the embedder, got "
            f"{manifest.get('embedder')!r}"
        )
    dim = manifest.get("dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"manifest['dim'] must be a positive int, got {dim!r}")
    if shape[1] != dim:
        raise ValueError(
            f"vectors have dimension {shape[1]} but manifest['dim'] is {dim}; "
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
    return owners


def check_vector_rows(vectors: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``vectors`` is 2-D with finite unit rows."""
    if vectors.ndim != 2:
        raise ValueError(
            f"vectors must be a 2-D array (num_vectors, dim), got shape {vectors.shape}"
        )
    if not np.all(np.isfinite(vectors)):
        raise ValueError("vectors contain NaN or inf; check the embedder output")
    norms = np.linalg.norm(vectors, axis=1)
    if len(norms) and np.max(np.abs(norms - 1.0)) > _UNIT_NORM_TOLERANCE:
        raise ValueError(
            f"vectors must be unit length (norms range {norms.min():.4f}..{norms.max():.4f}); "
            "normalise the rows, e.g. vectors / np.linalg.norm(vectors, axis=1, keepdims=True)"
        )


def write_sqlite(
    path: Path,
    documents: list[Document],
    chunks: list[Chunk],
    segments: Sequence[tuple[str, int, int, dict]],
    skipped: Sequence[tuple[str, str]] = (),
) -> None:
    """A new SQLite file: the documents, chunk ``i`` with id ``i``, their tags, the ``segments``
    (``(name, passages, vectors, {"index_type", "recall_at_10"})``) and the files left out."""
    doc_ids = {d.path: i for i, d in enumerate(documents)}
    conn = sqlite3.connect(str(path))
    try:
        conn.executescript(SCHEMA)
        conn.executemany(
            "INSERT INTO documents (id, path, sha256, mtime, size) VALUES (?, ?, ?, ?, ?)",
            [(i, d.path, d.sha256, float(d.mtime), int(d.size)) for i, d in enumerate(documents)],
        )
        insert_passages(conn, chunks, 0, doc_ids)
        insert_segments(
            conn,
            [(n, p, v, info["index_type"], info.get("recall_at_10")) for n, p, v, info in segments],
        )
        insert_skipped(conn, skipped)
        conn.commit()
    finally:
        conn.close()


def insert_passages(
    conn: sqlite3.Connection, chunks: Sequence[Chunk], first_id: int, doc_ids: dict[str, int]
) -> None:
    """Rows for ``chunks`` with ids ``first_id, first_id + 1, ...`` and their tags; ``doc_ids``
    maps each chunk's source to its document's id."""
    conn.executemany(
        'INSERT INTO chunks (id, document_id, start, "end", heading, text, line, col, context) '
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (  # rows made one at a time: the passages' text is not copied into a list
            (
                first_id + i,
                doc_ids[c.source],
                c.start,
                c.end,
                c.heading,
                c.text,
                c.line,
                c.column,
                c.context,
            )  # fmt: skip
            for i, c in enumerate(chunks)
        ),
    )
    conn.executemany(
        "INSERT INTO passage_tags (chunk_id, position, tag, tag_key) VALUES (?, ?, ?, ?)",
        (
            (first_id + i, j, tag, tag_key(tag))
            for i, c in enumerate(chunks)
            for j, tag in enumerate(c.tags)
        ),
    )


def insert_segments(
    conn: sqlite3.Connection, rows: Sequence[tuple[str, int, int, str, float | None]]
) -> None:
    """List segments: ``(name, passages, vectors, kind, recall_at_10)`` each."""
    conn.executemany(
        "INSERT INTO segments (name, passages, vectors, kind, recall_at_10) VALUES (?, ?, ?, ?, ?)",
        rows,
    )


def insert_skipped(conn: sqlite3.Connection, skipped: Sequence[tuple[str, str]]) -> None:
    """The files the loader left out, ``(path, reason)`` each."""
    conn.executemany(
        "INSERT INTO skipped (path, reason) VALUES (?, ?)",
        [(str(path), str(reason)) for path, reason in skipped],
    )


def open_checked_sqlite(path: Path, damaged: Callable[[str], IndexDamaged]) -> sqlite3.Connection:
    """A connection to the index's SQLite file after ``PRAGMA quick_check``; ``damaged(problem)``
    is raised otherwise. Only ever read through, but opened for writing (``mode=rw``, never
    created): an update killed mid-commit leaves a journal that the next reader rolls back."""
    if not path.is_file():
        raise damaged(f"{SQLITE_FILE} is missing")
    uri = path.resolve().as_uri() + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    conn.create_function("casefold", 1, _casefold, deterministic=True)
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise damaged(f"{SQLITE_FILE} fails its integrity check: {verdict}")
        if not has_table(conn, "segments"):
            raise damaged(f"{SQLITE_FILE} has no segments table")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise damaged(f"{SQLITE_FILE} cannot be read: {exc}") from exc
    except IndexDamaged:
        conn.close()
        raise
    return conn


def load_segments(
    folder: Path, dim: int, conn: sqlite3.Connection, damaged: Callable[[str], IndexDamaged]
) -> SegmentSet:
    """The segments the SQLite file lists, with its passages alive; ``damaged(problem)`` when a
    segment is missing, unreadable or holds other counts than listed, or a listed passage is in
    no segment."""
    try:
        listed = conn.execute(
            "SELECT name, passages, vectors FROM segments ORDER BY name"
        ).fetchall()
        live = np.asarray(
            [r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id")], np.int64
        )
    except sqlite3.DatabaseError as exc:
        raise damaged(f"{SQLITE_FILE} cannot be read: {exc}") from exc
    segments = []
    for name, passages, vectors in listed:
        where = folder / SEGMENTS_DIR / name
        try:
            segment = Segment.load(where)
        except (OSError, ValueError, KeyError, RuntimeError, EOFError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise damaged(f"{SEGMENTS_DIR}/{name} cannot be read: {problem}") from exc
        if segment.vectors.index.d != dim:
            raise damaged(
                f"{SEGMENTS_DIR}/{name} holds vectors of dimension {segment.vectors.index.d}, "
                f"{MANIFEST_FILE} says {dim}"
            )
        if (len(segment), segment.vectors.num_vectors) != (passages, vectors):
            raise damaged(
                f"{SEGMENTS_DIR}/{name} holds {len(segment)} passages and {segment.vectors.num_vectors} "
                f"vectors, {SQLITE_FILE} says {passages} and {vectors}"
            )
        segments.append(segment)
    try:
        view = SegmentSet(segments, live, [name for name, _, _ in listed])
    except ValueError as exc:
        raise damaged(str(exc)) from exc
    if view.num_live != len(live):
        raise damaged(f"{len(live) - view.num_live} passages of {SQLITE_FILE} are in no segment")
    return view


def check_format_version(folder: Path, manifest: dict) -> None:
    """Raise ``ValueError`` with the fix unless this notesqa reads the index's format version."""
    stored_version = manifest.get("format_version")
    if stored_version not in READABLE_VERSIONS:
        raise ValueError(
            f"index at {folder} has format_version={stored_version!r} but this notesqa "
            f"reads format_version {' or '.join(map(str, READABLE_VERSIONS))}; {_REBUILD_HINT}"
        )


def check_expected(folder: Path, manifest: dict, expected: dict | None) -> None:
    """Raise ``ValueError`` naming the key, both values and the fix where ``manifest`` differs
    from ``expected`` (manifest keys to required values)."""
    # Compare as JSON sees it, so a tuple in `expected` equals the stored list.
    for key, want in json.loads(json.dumps(expected or {})).items():
        have = manifest.get(key)
        if have != want:
            raise ValueError(
                f"index at {folder} was built with {key}={have!r} but {key}={want!r} is "
                f"expected; {_REBUILD_HINT}"
            )
