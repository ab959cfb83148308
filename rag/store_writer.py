"""Writing an index folder: FAISS vectors, SQLite metadata, the keyword index and the manifest,
staged in a folder marked as notesqa's and swapped in whole (``embedder.owned_folder``).

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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedder.owned_folder import discard
from rag.ann import build_index
from rag.chunking import Chunk
from rag.documents import Document
from rag.index_folder import (
    BM25_DIR,
    EXACT_VECTORS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    MARKER_KEY,
    MARKER_VALUE,
    SQLITE_FILE,
    VECTORS_FILE,
    check_replaceable,
    new_build_folder,
    swap_in,
)
from rag.sparse import BM25Index
from rag.store_files import check_inputs, write_faiss, write_sqlite
from rag.vector_spool import VectorSpool

logger = logging.getLogger(__name__)


def write_index(
    folder: str | Path,
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray | VectorSpool,
    manifest: dict,
    index_type: str = "flat",
    vector_chunks: np.ndarray | None = None,
    skipped: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write a complete index to ``folder`` (replacing any old one); returns the folder.

    ``folder`` must be new, empty or a notesqa index (``check_replaceable``); ``skipped``
    lists ``(path, reason)`` of the files the loader left out, for ``notesqa stats --files``.

    ``index_type`` is ``flat`` (exact, the default), ``hnsw`` or ``ivfpq`` (approximate, for
    large collections; their recall against exact search is measured and put in the manifest).

    ``vectors`` is ``(num_vectors, dim)`` float32 with unit rows, or a ``VectorSpool`` of them
    (indexing a big vault: a flat index is filled in place from its file, so the vectors are in
    memory once); chunk ``i`` gets id ``i``.
    ``vector_chunks`` (``(num_vectors,)`` ints, non-decreasing) names each row's chunk when a
    chunk has several vectors; ``None`` means one vector per chunk, in chunk order.
    ``manifest`` needs ``"embedder"`` (str) and ``"dim"`` (int); ``format_version``,
    ``num_chunks``, ``num_vectors``, ``num_documents`` and ``created`` are added here.
    """
    folder = Path(folder).expanduser()
    owners = check_inputs(documents, chunks, vectors, manifest, vector_chunks)
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
    tmp = new_build_folder(folder)  # marked as ours; killed builds' leftovers removed
    try:
        if isinstance(vectors, VectorSpool) and index_type == "flat":
            index = vectors.flat_index()  # filled in place: the vectors are in memory once
            ann_info = {"index_type": "flat"}
        else:
            if isinstance(vectors, VectorSpool):
                vectors = vectors.array()
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (N, d)
            index, ann_info = build_index(vectors, index_type)
        full_manifest.update(ann_info)
        write_faiss(index, tmp / VECTORS_FILE)
        del index  # (a big vault's vectors: held once at a time)
        if ann_info["index_type"] != "flat":  # exact copies: reuse and filtered search
            np.save(tmp / EXACT_VECTORS_FILE, vectors, allow_pickle=False)
        del vectors
        try:
            write_sqlite(tmp / SQLITE_FILE, documents, chunks, owners, skipped)
        except sqlite3.OperationalError as exc:  # "database or disk is full"
            code = errno.ENOSPC if "full" in str(exc) else errno.EIO
            raise OSError(code, f"cannot write the index ({exc})", str(tmp)) from exc
        BM25Index.build([c.keyword_text for c in chunks]).save(tmp / BM25_DIR)
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
