"""``NotesQA``: the one facade over notes -> chunks -> vectors -> retrieval -> reader.

Used by the CLI, the Streamlit app and the LangChain plugin.

Example (``NotesQA.open("~/notes")``: default models, index at ``~/notes/.notesqa``):
    >>> import tempfile
    >>> qa = NotesQA.open("examples/notes", index_dir=tempfile.mkdtemp())
    >>> qa.index(progress=False).chunks
    37
    >>> answer = qa.ask("Who introduced Adam?")[0]
    >>> answer.text, answer.source, answer.line
    ('Kingma', 'optimisers.md', 28)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from embedder import Embedder, WindowConfig, trained_windows
from embedder.owned_folder import discard
from rag.answers import (
    Answer,
    SearchHit,
    check_confidence,
    check_null_threshold,
    extract_answers,
)
from rag.arguments import check_count, check_text
from rag.chunking import Chunk, ChunkingConfig, chunk_document
from rag.documents import DEFAULT_MAX_NOTE_MB, Document, LoadReport, iter_notes
from rag.index_folder import (
    INDEX_DIRNAME,
    IndexDamaged,
    check_index_location,
    check_replaceable,
    new_build_folder,
    read_manifest,
    remove_stale_builds,
    resolve_index_dir,
)
from rag.index_lock import IndexLock
from rag.index_update import merge_small_segments
from rag.index_vectors import PreviousVectors, previous_index, spool_vectors
from rag.modes import DEFAULT_MODE, MODES
from rag.notes_update import updatable, update_in_place
from rag.reader import STORED, Reader
from rag.store import NotesStore
from rag.store_writer import INDEX_TYPES, write_index
from rag.vector_segments import VectorCodec
from rag.vector_spool import VectorSpool

log = logging.getLogger(__name__)


@dataclass
class IndexSummary:
    files: int
    chunks: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    decoded_with_fallback: list[str] = field(default_factory=list)
    seconds: float = 0.0
    index_dir: str = ""
    added: list[str] = field(default_factory=list)  # files new since the last index
    changed: list[str] = field(default_factory=list)  # files whose content changed
    removed: list[str] = field(default_factory=list)  # files gone from the folder
    unchanged: int = 0
    embedded: int = 0  # passages embedded now (the rest reused their stored vectors)
    vectors: int = 0  # passage vectors in the index (several per passage with token windows)
    index_type: str = "flat"  # what searches the vectors: flat (exact) or ivf
    recall_at_10: float | None = None  # of an IVF against exact search
    repaired: str | None = None  # what was wrong with a damaged index that was rebuilt

    def to_dict(self) -> dict:
        return asdict(self)


class NotesQA:
    """Index a notes folder and answer questions over it with sources.

    ``windows`` gives each passage longer than a window extra vectors, one per token window
    (``WindowConfig(tokens=0)`` for one vector per passage), and the dense search scores a
    passage over all its vectors (``rag.window_scores.soft_best``). Left ``None``, an existing index
    keeps its own windows and a new one those the embedder was trained for (``trained_windows``).

    ``dim`` keeps the first ``dim`` components of each vector (for a Matryoshka-trained embedder:
    256 -> 64 makes the index 4x smaller). Left ``None``, an existing index keeps its own size and
    a new one gets the model's full size.

    ``max_note_mb``: a note over this size is skipped and listed with the reason (a note's text
    is held whole while it is cut into passages; its passages are embedded a batch at a time).
    """

    def __init__(
        self,
        notes_dir: str | Path | None,
        index_dir: str | Path,
        embedder: str | Path | None = None,
        reader: str | Path | None = None,
        chunking: ChunkingConfig | None = None,
        dim: int | None = None,
        windows: WindowConfig | None = None,
        max_note_mb: float = DEFAULT_MAX_NOTE_MB,
    ) -> None:
        if not 0 < max_note_mb < float("inf"):
            raise ValueError(
                f"max_note_mb must be a positive number of megabytes, not {max_note_mb}"
            )
        self.max_note_bytes = int(max_note_mb * 1_000_000)
        self.notes_dir = Path(notes_dir).expanduser().resolve() if notes_dir else None
        self.index_dir = Path(index_dir).expanduser()
        self._embedder_path = embedder
        self._reader_path = reader
        self.chunking = chunking or ChunkingConfig()
        self._windows = windows
        self._dim = dim
        self._adopt_index_dim = True  # False while rebuilding: a rebuild starts from full size
        self._embedder: Embedder | None = None
        self._reader: Reader | None = None
        self._store: NotesStore | None = None
        self._store_stamp: tuple[int, int] | None = None
        self._checked: tuple | None = None  # (stamp, store) that ``_damage`` found whole

    @classmethod
    def open(cls, notes_dir: str | Path, index_dir: str | Path | None = None, **kwargs) -> NotesQA:
        """A notes folder with its index (default ``NOTES_DIR/.notesqa``)."""
        notes = Path(notes_dir).expanduser()
        return cls(notes, index_dir or notes / INDEX_DIRNAME, **kwargs)

    @classmethod
    def from_index(cls, index_dir: str | Path | None = None, **kwargs) -> NotesQA:
        """An existing index (found as ``resolve_index_dir`` says), for asking and searching."""
        return cls(None, resolve_index_dir(index_dir), **kwargs)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            emb = Embedder.load(self._embedder_path, truncate_dim=self._dim)
            stored = self._index_dim() if self._dim is None and self._adopt_index_dim else None
            if stored is not None and stored < emb.dim:
                emb = Embedder(emb.model, emb.name, emb.fingerprint, truncate_dim=stored)
            self._embedder = emb
        return self._embedder

    @property
    def windows(self) -> WindowConfig:
        """The token windows ``index`` embeds: as given, else the existing index's, else the
        embedder's."""
        if self._windows is None:
            stored = self._manifest_value("windows")
            try:  # a new index (or no windows record): those the embedder was trained for
                self._windows = WindowConfig(**stored)
            except (TypeError, ValueError):
                self._windows = trained_windows(self._embedder_path)
        return self._windows

    @windows.setter
    def windows(self, config: WindowConfig) -> None:
        self._windows = config

    def _manifest_value(self, key: str):
        """``key`` of the existing index's manifest (``None`` without a readable one)."""
        manifest = read_manifest(self.index_dir)
        return None if manifest is None else manifest.get(key)

    def _index_dim(self) -> int | None:
        """The vector size recorded in the existing index's manifest, if any."""
        dim = self._manifest_value("dim")
        return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None

    @property
    def reader(self) -> Reader:
        """The reader named, else the shipped one."""
        if self._reader is None:
            self._reader = Reader.load(self._reader_path)
        return self._reader

    def _index_stamp(self) -> tuple[int, int] | None:
        """Identity of the index on disk (its manifest's inode and mtime): an update swaps in
        a new folder, so the stamp changes when another process (``notesqa watch``) updates it."""
        try:
            stat = (self.index_dir / "manifest.json").stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    @property
    def store(self) -> NotesStore:
        if self._store is not None and self._index_stamp() != self._store_stamp:
            self._store = None  # updated since it was opened: read the new one (the old one
            # closes when no search holds it any more)
        if self._store is None:
            if not (self.index_dir / "manifest.json").exists():
                NotesStore.open(
                    self.index_dir
                )  # raises the "run notesqa index" error before loading models
            self._store_stamp = self._index_stamp()
            self._store = NotesStore.open(
                self.index_dir,
                expected={"embedder": self.embedder.identity, "dim": self.embedder.dim},
            )
        return self._store

    def index(
        self,
        progress: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
        rebuild: bool = False,
        lock_timeout: float = 10.0,
        index_type: str | None = None,
        optimize: bool = False,
    ) -> IndexSummary:
        """Bring the index up to date with the notes folder, embedding only what changed.

        An index of the same settings is updated in place (``rag.notes_update``): only new and
        changed notes are chunked and embedded, into a new segment, and their old passages
        become tombstones, in one transaction; a crash or a kill at any moment leaves the
        previous state. ``optimize`` then merges the segments into one. Otherwise (no index,
        ``rebuild``, other settings or ``index_type``, an older format) the
        whole index is written beside the old one and swapped in atomically, passages whose text
        is unchanged keeping their stored vectors. Either way the result equals a full rebuild.
        Both run under a lock. An index built by another embedder is refused unless
        ``rebuild``. ``on_progress(done, total)`` reports embedding progress. ``index_type``:
        ``auto`` (exact up to ``rag.vector_segments.IVF_MIN_VECTORS`` vectors, an IVF above, its
        recall against exact search measured and reported), ``flat`` (always exact) or ``ivf``;
        ``None`` keeps the existing index's (``auto`` for a new one).
        """
        if self.notes_dir is None:
            raise ValueError("this NotesQA has no notes folder; use NotesQA.open(NOTES_DIR)")
        # all before the lock (which would create folders) and before loading any model
        if self.notes_dir.is_file():
            raise NotADirectoryError(
                f"{self.notes_dir} is a file; pass the folder that holds your notes "
                f"(e.g. {self.notes_dir.parent})"
            )
        if not self.notes_dir.is_dir():
            raise FileNotFoundError(
                f"notes folder {self.notes_dir} does not exist; pass the folder of your notes"
            )
        check_index_location(self.notes_dir, self.index_dir)
        check_replaceable(self.index_dir)
        started = time.time()
        repaired = None if rebuild else self._damage()
        if repaired is not None:  # rebuilt from scratch, at the model's own size unless --dim
            log.info("the index was damaged (%s); rebuilding it from scratch", repaired)
            rebuild = True
        if rebuild and self._dim is None:  # a rebuild starts from the model's full size
            self._adopt_index_dim = False
            emb = self._embedder
            if emb is not None and emb.truncate_dim is not None:  # adopted from the old index
                self._embedder = Embedder(emb.model, emb.name, emb.fingerprint)
        with IndexLock(self.index_dir, timeout=lock_timeout):
            remove_stale_builds(self.index_dir)  # of an indexer killed before its swap
            emb = self.embedder
            limit = min(self.chunking.max_tokens, emb.max_seq_length - 2)
            cfg = ChunkingConfig(
                max_tokens=limit, overlap_tokens=min(self.chunking.overlap_tokens, limit // 4)
            )
            manifest = {
                "embedder": emb.identity,
                "dim": emb.dim,
                "notes_root": str(self.notes_dir),
                "chunking": {"max_tokens": cfg.max_tokens, "overlap_tokens": cfg.overlap_tokens},
                "windows": self.windows.to_dict(),
            }
            stored = read_manifest(self.index_dir) or {}
            index_type = index_type or stored.get("index_type", "auto")
            if index_type not in INDEX_TYPES:  # an older index's hnsw/ivfpq
                index_type = "auto"
            existing = None if rebuild else self._updatable({**manifest, "index_type": index_type})
            if existing is not None:
                return self._update(existing, cfg, progress, on_progress, optimize, started)
            documents, chunks, report = self._load_and_chunk(cfg)
            spool_folder = new_build_folder(self.index_dir)  # marked: removed if we are killed
            try:
                with VectorSpool(spool_folder, VectorCodec.for_dim(emb.dim)) as spool:
                    old = (
                        ({}, PreviousVectors(None))
                        if rebuild
                        else previous_index(self.index_dir, self.embedder, self.windows)
                    )
                    old_docs, previous = old
                    try:
                        embedded = sum(1 for c in chunks if c.text not in previous)
                        counts = spool_vectors(
                            emb, self.windows, chunks, previous, spool, progress, on_progress
                        )
                    finally:
                        previous.close()  # the old vectors leave memory before the new index
                    owners = np.repeat(np.arange(len(chunks)), counts)  # (N,) chunk of each
                    written = write_index(
                        self.index_dir,
                        documents,
                        chunks,
                        spool,
                        manifest,
                        index_type,
                        owners,
                        skipped=report.skipped,
                    )
            finally:
                discard(spool_folder)
            built = NotesStore.open(written)
            ann = built.stats()
            # searches switch to the new index at once (a watcher updates while the app asks)
            # swapped, not closed: a search on another thread may still be reading the old
            # store, whose files stay readable until the last reference to it goes
            self._store, self._store_stamp = built, self._index_stamp()
        new_docs = {d.path: d.sha256 for d in documents}
        return IndexSummary(
            files=len(documents),
            chunks=len(chunks),
            skipped=report.skipped,
            decoded_with_fallback=report.decoded_with_fallback,
            seconds=time.time() - started,
            index_dir=str(self.index_dir),
            added=sorted(set(new_docs) - set(old_docs)),
            changed=sorted(p for p in new_docs if p in old_docs and old_docs[p] != new_docs[p]),
            removed=sorted(set(old_docs) - set(new_docs)),
            unchanged=sum(1 for p in new_docs if old_docs.get(p) == new_docs[p]),
            embedded=embedded,
            vectors=len(owners),
            index_type=ann.get("index_type", "flat"),
            recall_at_10=ann.get("recall_at_10"),
            repaired=repaired,
        )

    def _updatable(self, manifest: dict) -> NotesStore | None:
        """The current index, when it can be updated in place for ``manifest``'s settings (the
        store ``_damage`` opened, unless another process changed the index since)."""
        stamp, store = self._checked or (None, None)
        self._checked = None
        if store is not None and (stamp is None or stamp != self._index_stamp()):
            store.close()
            store = None
        try:
            store = store or NotesStore.open(self.index_dir)
        except (FileNotFoundError, ValueError):  # none, an older format, damaged: rebuilt
            return None
        if store.folder == self.index_dir and updatable(store, manifest):  # (not a backup)
            return store
        store.close()
        return None

    def _update(self, store, cfg, progress, on_progress, optimize, started) -> IndexSummary:
        """``rag.notes_update.update_in_place``, then the summary of the updated index."""
        try:
            done = update_in_place(
                store, self.notes_dir, self.max_note_bytes, self.embedder, self.windows, cfg,
                progress, on_progress,
            )  # fmt: skip
        finally:
            store.close()
        if optimize:
            merge_small_segments(self.index_dir, everything=True)
        built = NotesStore.open(self.index_dir)
        self._store, self._store_stamp = built, self._index_stamp()
        stats = built.stats()
        return IndexSummary(
            files=stats["files"],
            chunks=stats["passages"],
            skipped=done["skipped"],
            decoded_with_fallback=done["decoded_with_fallback"],
            seconds=time.time() - started,
            index_dir=str(self.index_dir),
            added=done["added"],
            changed=done["changed"],
            removed=done["removed"],
            unchanged=done["unchanged"],
            embedded=done["embedded"],
            vectors=stats["vectors"],
            index_type=stats["index_type"] or "flat",
            recall_at_10=stats["recall_at_10"],
        )

    def _damage(self) -> str | None:
        """What is wrong with the existing index, or ``None`` (no index, or a whole one). A
        whole one stays open for ``_updatable`` (a 100k-passage index takes 0.25 s to open)."""
        self._close_checked()
        stamp = self._index_stamp()  # before opening: a later change shows as a new stamp
        try:
            self._checked = (stamp, NotesStore.open(self.index_dir))
        except IndexDamaged as err:
            return err.problem
        except (FileNotFoundError, ValueError):  # none yet, or an older format: not damage
            return None
        return None

    def _load_and_chunk(
        self, cfg: ChunkingConfig
    ) -> tuple[list[Document], list[Chunk], LoadReport]:
        """Every note cut into passages as it is read. A note's text lives on only in its
        passages (the index stores those, not the note), so the folder's text is never held
        twice, and a note is dropped as soon as it is cut."""
        documents: list[Document] = []
        chunks: list[Chunk] = []
        notes, report = iter_notes(self.notes_dir, self.max_note_bytes, index_dir=self.index_dir)
        for doc in notes:
            chunks.extend(chunk_document(doc, self.embedder.count_tokens, cfg))
            documents.append(replace(doc, text=""))
        return documents, chunks, report

    def stats(self) -> dict:
        """Counts and settings of the index: files, passages, embedder, dimension, chunking."""
        return self.store.stats()

    def tags(self) -> list[tuple[str, int]]:
        """``(tag, number of notes)`` of every tag in the index, most used first."""
        return self.store.tags()

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        path_glob: str | None = None,
        heading: str | None = None,
        tags: Sequence[str] = (),
    ) -> list[SearchHit]:
        """The ``k`` best passages for ``query``; see ``rag.retrieve`` for modes and scores.

        ``path_glob`` (e.g. ``"biology/*"``), ``heading`` (substring of the heading path) and
        ``tags`` (the note has every one; ``ml`` matches ``ml/optim`` too) filter inside the
        search, so up to ``k`` matching passages always come back.
        """
        from rag.retrieve import retrieve

        check_text("query", query)
        k = check_count("k", k)
        tags = (tags,) if isinstance(tags, str) else tuple(tags)
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        hits = retrieve(self.store, self.embedder, query, k, mode, path_glob, heading, tags=tags)
        return [SearchHit.from_chunk(h.chunk, h.score) for h in hits]

    def ask(
        self,
        question: str,
        k: int = 5,
        top_answers: int = 3,
        mode: str = DEFAULT_MODE,
        path_glob: str | None = None,
        heading: str | None = None,
        null_threshold: float | None | str = STORED,
        min_confidence: float | None | str = STORED,
        tags: Sequence[str] = (),
        always_answer: bool = False,
    ) -> list[Answer]:
        """Extract answers from the top ``k`` passages, most confident first; [] when the reader
        abstains.

        When to abstain means the same here, in ``NotesReader``, ``notesqa ask`` and the app:

        * ``min_confidence`` (a calibrated multi-passage reader, as shipped): only answers whose
          ``confidence`` (the probability that it is right) reaches it are listed. Left at
          ``STORED``: the value stored with the reader; a number in [0, 1] overrides it;
          ``None`` lists every answer found.
        * ``null_threshold`` (an older single-passage reader): the same three meanings, see
          ``rag.answers.extract_answers``.
        * ``always_answer=True`` never abstains, whichever the reader (both set to ``None``).

        Example (the shipped reader stores ``min_confidence`` 0.1):
            >>> import tempfile
            >>> qa = NotesQA.open("examples/notes", index_dir=tempfile.mkdtemp())
            >>> _ = qa.index(progress=False)
            >>> shown = qa.ask("Who introduced Adam?")
            >>> all(a.confidence >= qa.reader.calibrator.min_confidence for a in shown)
            True
            >>> every = qa.ask("Who introduced Adam?", always_answer=True)
            >>> [a.confidence for a in every] == sorted((a.confidence for a in every), reverse=True)
            True
        """
        check_text("question", question)
        top_answers = check_count("top_answers", top_answers)
        null_threshold = check_null_threshold(null_threshold)
        min_confidence = check_confidence(min_confidence)
        if always_answer:
            null_threshold = min_confidence = None
        hits = self.search(question, k, mode, path_glob, heading, tags)
        if not hits:
            return []
        return extract_answers(
            self.reader, question, hits, top_answers, null_threshold, min_confidence
        )

    def _close_checked(self) -> None:
        if self._checked is not None:
            self._checked[1].close()
            self._checked = None

    def close(self) -> None:
        self._close_checked()
        if self._store is not None:
            self._store.close()
            self._store = None
