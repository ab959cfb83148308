"""Writing an index folder: the passages' segment (8-bit vectors and keyword postings), the SQLite
metadata and the manifest, staged in a folder marked as notesqa's and swapped in whole
(``embedder.owned_folder``).

Example:
    >>> import tempfile
    >>> from rag.chunking import chunk_document, whitespace_token_count
    >>> doc = Document("adam.md", "# Adam\\n\\nTwo moving averages.", "sha", 0.0, 28)
    >>> chunks = chunk_document(doc, whitespace_token_count)
    >>> folder = Path(tempfile.mkdtemp()) / ".notesqa"
    >>> write_index(folder, [doc], chunks, np.eye(1, 4, dtype=np.float32),
    ...             {"embedder": "e", "dim": 4}).name
    '.notesqa'
"""

from __future__ import annotations

import copy
import datetime as dt
import errno
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from embedder.owned_folder import discard, write_marker
from rag.chunking import Chunk
from rag.documents import Document
from rag.index_folder import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    MARKER_KEY,
    MARKER_VALUE,
    SEGMENTS_DIR,
    SQLITE_FILE,
    check_replaceable,
    new_build_folder,
    swap_in,
)
from rag.segment import Segment
from rag.sparse import K1, STEMMER, STOPWORDS, tokenize
from rag.store_files import check_inputs, write_sqlite
from rag.vector_blocks import VectorSource
from rag.vector_segments import IVF_MIN_VECTORS, IVF_TRAIN_MIN, VectorCodec, measure_recall
from rag.vector_spool import VectorSpool

logger = logging.getLogger(__name__)

INDEX_TYPES = ("auto", "flat", "ivf")  # auto: exact below IVF_MIN_VECTORS vectors, an IVF above
TOKENIZE_BATCH = 1_000  # passages tokenized for the keyword postings at a time
FIRST_SEGMENT = "s000001"
SEGMENT_KIND = "segment"  # the .notesqa-owned record of a segment folder


def keyword_settings() -> dict:
    """How the keyword postings' words were made and are scored (saved in the manifest)."""
    return {"stopwords": STOPWORDS, "stemmer": STEMMER, "k1": K1}


def passage_words(chunks: Sequence[Chunk]) -> Iterator[list[str]]:
    """The keyword index's words of each passage, tokenized a batch at a time."""
    for first in range(0, len(chunks), TOKENIZE_BATCH):
        texts = [c.keyword_text for c in chunks[first : first + TOKENIZE_BATCH]]
        yield from tokenize(texts, STEMMER)


def ivf_threshold(index_type: str) -> int | None:
    """The vectors from which a segment of an ``index_type`` index is an IVF (``None``: never)."""
    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r}; use one of {', '.join(INDEX_TYPES)}")
    return {"auto": IVF_MIN_VECTORS, "flat": None, "ivf": IVF_TRAIN_MIN}[index_type]


def build_segment(
    chunks: Sequence[Chunk],
    chunk_ids: np.ndarray,
    vectors: np.ndarray | VectorSource,
    counts: np.ndarray,
    codec: VectorCodec,
    index_type: str,
) -> tuple[Segment, dict]:
    """The passages' segment and its summary (kind, measured recall of an IVF)."""
    words = passage_words(chunks)
    segment = Segment.build(chunk_ids, codec, vectors, counts, words, ivf_threshold(index_type))
    info = {"index_type": "ivf" if segment.vectors.approximate else "flat", "recall_at_10": None}
    if segment.vectors.approximate:
        info["recall_at_10"] = measure_recall(segment.vectors)
    return segment, info


def write_index(
    folder: str | Path,
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray | VectorSpool,
    manifest: dict,
    index_type: str = "auto",
    vector_chunks: np.ndarray | None = None,
    skipped: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write a complete index to ``folder`` (replacing any old one); returns the folder.

    ``folder`` must be new, empty or a notesqa index (``check_replaceable``); ``skipped``
    lists ``(path, reason)`` of the files the loader left out, for ``notesqa stats --files``.

    ``index_type``: ``auto`` searches exactly up to ``rag.vector_segments.IVF_MIN_VECTORS``
    vectors and through an IVF above (its recall against exact search is measured and put in
    the manifest); ``flat`` always exactly; ``ivf`` through an IVF whenever one can be trained.

    ``vectors`` is ``(num_vectors, dim)`` float32 with unit rows, or a ``VectorSpool`` of them
    (read a block at a time); chunk ``i`` gets id ``i``. ``vector_chunks``
    (``(num_vectors,)`` ints, non-decreasing) names each row's chunk when a chunk has several
    vectors; ``None`` means one vector per chunk, in chunk order. ``manifest`` needs
    ``"embedder"`` (str) and ``"dim"`` (int); the format, counts, codec and keyword settings are
    added here.
    """
    folder = Path(folder).expanduser()
    owners = check_inputs(documents, chunks, vectors, manifest, vector_chunks)
    check_replaceable(folder)  # never replace (and so delete) what notesqa did not write
    rows = vectors if isinstance(vectors, VectorSpool) else np.asarray(vectors, np.float32)
    codec = VectorCodec.for_dim(int(manifest["dim"]))
    counts = np.bincount(owners, minlength=len(chunks))  # (chunks,) vectors of each
    chunk_ids = np.arange(len(chunks), dtype=np.int64)
    tmp = new_build_folder(folder)  # marked as ours; killed builds' leftovers removed
    try:
        segment, info = build_segment(chunks, chunk_ids, rows, counts, codec, index_type)
        del rows
        segment.save(tmp / SEGMENTS_DIR / FIRST_SEGMENT)
        write_marker(tmp / SEGMENTS_DIR / FIRST_SEGMENT, SEGMENT_KIND)  # a merge may delete it
        segments = [(FIRST_SEGMENT, len(segment), segment.vectors.num_vectors, info)]
        del segment
        try:
            write_sqlite(tmp / SQLITE_FILE, documents, chunks, segments, skipped)
        except sqlite3.OperationalError as exc:  # "database or disk is full"
            code = errno.ENOSPC if "full" in str(exc) else errno.EIO
            raise OSError(code, f"cannot write the index ({exc})", str(tmp)) from exc
        full_manifest = {
            **copy.deepcopy(manifest),
            MARKER_KEY: MARKER_VALUE,
            "format_version": FORMAT_VERSION,
            "num_chunks": len(chunks),
            "num_vectors": len(owners),
            "num_documents": len(documents),
            "index_type": index_type,  # the setting; each segment's kind is in the SQLite file
            "codec": codec.to_dict(),
            "keywords": keyword_settings(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        # The manifest goes last: a folder with a manifest is a finished index.
        (tmp / MANIFEST_FILE).write_text(
            json.dumps(full_manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        swap_in(tmp, folder)  # fsyncs every file first
    except BaseException:
        discard(tmp)
        raise
    logger.info(
        "wrote index with %d chunks (%d vectors) from %d documents to %s",
        len(chunks),
        len(owners),
        len(documents),
        folder,
    )
    return folder
