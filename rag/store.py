"""The on-disk index: FAISS vectors + SQLite metadata + a JSON manifest, in one folder.

Layout of the folder (no pickle anywhere)::

    manifest.json    {"format_version", "embedder", "dim", "num_chunks", "num_vectors",
                      "num_documents", "index_type", "codec", "keywords", "created",
                      ...whatever the caller adds (e.g. chunking and window settings)}
    notes.sqlite     documents(id, path UNIQUE, sha256, mtime, size)
                     chunks(id PRIMARY KEY, document_id, start, end, heading, text, ...): the
                     passages alive; segments(name, passages, vectors, kind, recall_at_10)
    segments/NAME/   a segment's passage ids, 8-bit vectors and keyword postings (rag.segment)

Vectors are unit rows, so inner products are cosine similarities (decoded from 8 bits: within
about 0.001). A chunk has one vector or several (its own and its token windows',
``embedder.windows``), and a search scores a chunk by a soft maximum of its vectors' cosines
(``soft_best``: the best one, lifted a little where more of them match). Keyword search is BM25
over the same passages (``rag.keyword_segments``).

:meth:`NotesStore.build` writes a complete index into a temporary sibling folder, fsyncs it and
only then swaps it in for the old one: an error or a crash while writing leaves the previous
index as it was (``rag.index_folder.swap_in``).

Example (three one-passage notes with made-up 2-d vectors; ``NotesQA.index`` makes real ones)::

    >>> import tempfile
    >>> tags = {"a.md": ("exam", "ML"), "b.md": ("ml",), "c.md": ("ml/optim",)}
    >>> docs = [Document(path, "text", "0" * 64, 0.0, 4, tags=t) for path, t in tags.items()]
    >>> chunks = [Chunk(d.path, 0, 4, "text", "", tags=d.tags) for d in docs]
    >>> vectors = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)   # unit rows
    >>> folder = Path(tempfile.mkdtemp()) / ".notesqa"
    >>> store = NotesStore.build(folder, docs, chunks, vectors, {"embedder": "made-up", "dim": 2})
    >>> [(h.chunk.source, round(h.score, 2)) for h in NotesStore.open(folder).search(vectors[2], k=1)]
    [('c.md', 1.0)]
    >>> [h.chunk_id for h in store.search(vectors[0], k=2, allowed=np.array([0, 2]))]
    [0, 2]
    >>> store.tags()                        # spellings that differ only in case count as one
    [('ML', 2), ('exam', 1), ('ml/optim', 1)]
"""

from __future__ import annotations

import copy
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.chunking import Chunk
from rag.documents import Document
from rag.index_folder import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    OWN_ENTRIES,
    READABLE_VERSIONS,
    SQLITE_FILE,
    IndexDamaged,
    NoIndex,
    check_replaceable,
    foreign_entries,
    is_notesqa_index,
    read_manifest,
    remove_stale_builds,
)
from rag.segment_set import SegmentSet
from rag.sparse import STEMMER, tokenize
from rag.store_files import (
    TAG_COUNTS,
    check_expected,
    check_format_version,
    chunk_filter,
    chunk_select,
    has_table,
    load_segments,
    open_checked_sqlite,
    split_tags,
)
from rag.store_writer import write_index
from rag.vector_segments import VectorCodec
from rag.vector_spool import VectorSpool
from rag.window_scores import (
    WINDOW_TEMPERATURE,
    best_per_owner,
    candidates_for,
    owner_bounds,
    rescore_owners,
    soft_best,
)

# What `from rag.store import ...` offers: the store, and (for callers written before the split)
# the folder and scoring names that now live in rag.index_folder and rag.window_scores.
__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "OWN_ENTRIES",
    "READABLE_VERSIONS",
    "SQLITE_FILE",
    "WINDOW_TEMPERATURE",
    "Hit",
    "IndexDamaged",
    "NotesStore",
    "best_per_owner",
    "candidates_for",
    "check_replaceable",
    "foreign_entries",
    "is_notesqa_index",
    "owner_bounds",
    "read_manifest",
    "remove_stale_builds",
    "rescore_owners",
    "soft_best",
]

logger = logging.getLogger(__name__)


@dataclass
class Hit:
    """One search result; ``score`` is the cosine similarity of the query and the chunk (with
    several vectors per chunk, their ``soft_best``)."""

    chunk: Chunk
    score: float
    chunk_id: int


class NotesStore:
    """An opened index. Use :meth:`build` to write one and :meth:`open` to load it.

    Safe to share between threads (Streamlit): SQLite reads go through one lock-protected
    connection, and searches do not mutate the segments (``rag.segment_set``).
    """

    def __init__(
        self, folder: Path, manifest: dict, conn: sqlite3.Connection, segments: SegmentSet
    ) -> None:
        self.folder = folder
        self._manifest = manifest
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self._chunk_select = chunk_select(conn)
        self._has_tags = has_table(conn, "passage_tags")
        self._segments = segments
        self._stemmer = (manifest.get("keywords") or {}).get("stemmer", STEMMER)

    # ---- writing -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        folder: str | Path,
        documents: list[Document],
        chunks: list[Chunk],
        vectors: np.ndarray | VectorSpool,
        manifest: dict,
        index_type: str = "auto",
        vector_chunks: np.ndarray | None = None,
        skipped: Sequence[tuple[str, str]] = (),
    ) -> NotesStore:
        """``rag.store_writer.write_index`` a complete index to ``folder`` (replacing any old one) and open it."""
        written = write_index(
            folder, documents, chunks, vectors, manifest, index_type, vector_chunks, skipped
        )
        return cls.open(written)

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
            raise NoIndex(folder)
        manifest = read_manifest(folder)
        if manifest is None:
            raise IndexDamaged(folder, f"{MANIFEST_FILE} is not a readable JSON object")
        notes_dir = (
            manifest.get("notes_root") if isinstance(manifest.get("notes_root"), str) else None
        )

        def damaged(problem: str) -> IndexDamaged:
            return IndexDamaged(folder, problem, notes_dir)

        check_format_version(folder, manifest)
        dim = manifest.get("dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise damaged(f"{MANIFEST_FILE} has dim={dim!r}, not a vector size")
        conn = open_checked_sqlite(folder / SQLITE_FILE, damaged)
        try:
            segments = load_segments(folder, dim, conn, damaged)
            check_expected(folder, manifest, expected)  # only once the index is known whole
        except ValueError:  # IndexDamaged included
            conn.close()
            raise
        return cls(folder, manifest, conn, segments)

    @property
    def manifest(self) -> dict:
        """A copy of the manifest (mutating it does not change the store)."""
        return copy.deepcopy(self._manifest)

    def __len__(self) -> int:
        """The number of chunks (``num_vectors`` counts their vectors)."""
        return self._segments.num_live

    @property
    def segment_set(self) -> SegmentSet:
        """The segments behind this store and which of their passages are alive."""
        return self._segments

    def passages_of(self, paths: Sequence[str]) -> list[tuple[int, str]]:
        """``(chunk id, text)`` of every passage of the notes ``paths``."""
        found: list[tuple[int, str]] = []
        for path in paths:
            found += self._query(
                "SELECT c.id, c.text FROM chunks c JOIN documents d ON d.id = c.document_id "
                "WHERE d.path = ? ORDER BY c.id",
                (path,),
            )
        return found

    @property
    def codec(self) -> VectorCodec:
        """The 8-bit ranges every segment of this index is encoded with."""
        return VectorCodec.from_dict(self._manifest["codec"])

    @property
    def num_vectors(self) -> int:
        return self._segments.num_live_vectors

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
        _, path, start, end, text, heading, line, column, context, tags = row
        return Chunk(path, start, end, text, heading, line, column, context or "", split_tags(tags))

    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of the files the last ``index`` left out (none for older indexes)."""
        try:
            return [tuple(row) for row in self._query("SELECT path, reason FROM skipped")]
        except IndexDamaged as exc:
            if "no such table" in str(exc):
                return []
            raise

    def ids_matching(
        self,
        path_glob: str | None = None,
        heading: str | None = None,
        tags: Sequence[str] = (),
    ) -> np.ndarray:
        """Chunk ids whose file path matches ``path_glob`` (SQLite GLOB, e.g. ``bio/*``), whose
        heading path contains ``heading`` (case-insensitive) and whose note has every one of
        ``tags`` (case-insensitive, ``#`` optional; ``ml`` also matches the nested ``ml/optim``,
        as Obsidian's tag search does); used to filter *inside* searches."""
        if tags and not self.has_tags:
            raise ValueError(
                f"the index at {self.folder} was written before notesqa stored tags; run "
                f"`notesqa index {self._manifest.get('notes_root') or 'NOTES_DIR'}` to store them"
            )
        where, params = chunk_filter(path_glob, heading, tags)
        sql = f"{self._chunk_select} {'WHERE ' + ' AND '.join(where) if where else ''}"
        return np.asarray([row[0] for row in self._query(sql, params)], dtype=np.int64)

    @property
    def has_tags(self) -> bool:
        """Whether the index stores tags (one written before they were stored does not)."""
        return self._has_tags

    def tags(self) -> list[tuple[str, int]]:
        """``(tag, number of notes)`` of every tag in the index, most used first, then by name;
        spellings that differ only in case count as one (the smallest spelling is shown, ``ML``
        before ``ml``); the module's example shows one.
        """
        if not self.has_tags:
            return []
        return [(tag, int(count)) for tag, count in self._query(TAG_COUNTS)]

    def hits(self, scored: list[tuple[int, float]]) -> list[Hit]:
        """``Hit``s for ``(chunk_id, score)`` pairs, in the given order."""
        if not scored:
            return []
        marks = ",".join("?" * len(scored))
        rows = self._query(
            f"{self._chunk_select} WHERE c.id IN ({marks})", tuple(i for i, _ in scored)
        )
        by_id = {row[0]: self._row_to_chunk(row) for row in rows}
        return [Hit(chunk=by_id[i], score=s, chunk_id=i) for i, s in scored if i in by_id]

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` chunks most similar to ``query`` (shape ``(d,)`` or ``(1, d)``), best first.

        ``nearest`` without loading the chunks is what fusion uses for its candidates.

        ``allowed`` (chunk ids) restricts the search itself (a FAISS ID selector), so a filter
        never returns fewer than ``k`` hits while enough matching chunks exist (the module's
        example filters a search).
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
        if q.shape[1] != self._manifest["dim"]:
            raise ValueError(
                f"query has dimension {q.shape[1]} but the index holds dimension "
                f"{self._manifest['dim']}; embed the query with the embedder that built the index "
                f"({self._manifest.get('embedder')!r})"
            )
        return self._segments.nearest(q[0], k, allowed)

    def keyword_search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """``(chunk_id, BM25 score)`` of the ``k`` best chunks with a positive score for
        ``query``; ``allowed`` (chunk ids) filters inside the search."""
        if k <= 0 or not query.strip():
            return []
        words = tokenize([query], self._stemmer)[0]
        return self._segments.keyword_search(words, int(k), allowed)

    def chunk(self, chunk_id: int) -> Chunk:
        """The chunk with id ``chunk_id``; ``KeyError`` if there is none."""
        rows = self._query(f"{self._chunk_select} WHERE c.id = ?", (int(chunk_id),))
        if not rows:
            raise KeyError(f"no chunk with id {chunk_id} in the index at {self.folder}")
        return self._row_to_chunk(rows[0])

    def passage_at(self, path: str, line: int) -> Chunk | None:
        """The passage of note ``path`` that holds line ``line`` (the last one starting at or
        before it; the first one for an earlier line), or ``None`` when ``path`` has none."""
        if "c.line" not in self._chunk_select:  # an index written before positions
            rows = self._query(f"{self._chunk_select} WHERE d.path = ? ORDER BY c.id", (path,))
        else:
            rows = self._query(
                f"{self._chunk_select} WHERE d.path = ? ORDER BY (c.line <= ?) DESC, "
                "CASE WHEN c.line <= ? THEN -c.line ELSE c.line END, c.id LIMIT 1",
                (path, int(line), int(line)),
            )
        return self._row_to_chunk(rows[0]) if rows else None

    def chunks(self) -> list[Chunk]:
        """All chunks in id order (``chunk_ids`` gives their ids)."""
        return [self._row_to_chunk(r) for r in self._query(f"{self._chunk_select} ORDER BY c.id")]

    def chunk_ids(self) -> np.ndarray:
        """The ids of all chunks, ascending (the order of ``chunks``)."""
        return np.asarray([r[0] for r in self._query("SELECT id FROM chunks ORDER BY id")], int)

    def chunk_vectors(self, chunk_id: int) -> np.ndarray:
        """``(n, d)`` float32: the stored (decoded) vectors of one chunk (its own, then its
        windows'); an incremental re-index reuses them for passages whose text is unchanged."""
        return self._segments.vectors_of(int(chunk_id))

    def vectors(self) -> np.ndarray:
        """``(num_vectors, dim)`` float32: every chunk's vectors, chunk after chunk in id order
        (decoded; for tools and tests: a search never needs them all)."""
        rows = [self.chunk_vectors(i) for i in self.chunk_ids()]
        return np.concatenate(rows) if rows else np.zeros((0, self._manifest["dim"]), np.float32)

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
        keys = ("embedder", "dim", "chunking", "windows", "notes_root", "created", "format_version")
        # index_type: what searches the vectors now (an IVF in any segment, else exact); the
        # manifest's is the setting (auto, flat, ivf)
        kinds = self._query("SELECT kind, recall_at_10 FROM segments")
        recalls = [r for kind, r in kinds if kind == "ivf" and r is not None]
        return {
            "index_dir": str(self.folder),
            "files": len(self.documents()),
            "passages": len(self),
            "vectors": self.num_vectors,
            "segments": len(self._segments.segments),
            **{key: self._manifest.get(key) for key in keys},
            "index_type": "ivf" if any(kind == "ivf" for kind, _ in kinds) else "flat",
            "recall_at_10": min(recalls) if recalls else None,  # the IVFs' against exact
        }

    def close(self) -> None:
        """Close the SQLite connection (idempotent)."""
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
