"""What ``NotesQA.index`` does when an index of the same settings exists: read the notes folder,
chunk and embed only the notes whose content changed (passages whose text is unchanged keep
their vectors), and hand them to ``rag.index_update.apply_update``. Unchanged notes are read
by their modification time and size (read and hashed only when those changed), never chunked
or embedded again, so editing one note of a big vault costs that note.

Example (``NotesQA.index`` calls it; tests/rag/test_index_update.py runs it):
    >>> from rag.notes_update import UPDATE_SETTINGS
    >>> UPDATE_SETTINGS
    ('embedder', 'dim', 'chunking', 'windows', 'notes_root', 'index_type')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from embedder import Embedder, WindowConfig
from embedder.owned_folder import discard
from rag.chunking import ChunkingConfig, chunk_document
from rag.documents import UNCHANGED, iter_notes
from rag.index_folder import new_build_folder
from rag.index_update import apply_update
from rag.index_vectors import PreviousVectors, spool_vectors
from rag.store import NotesStore
from rag.vector_spool import VectorSpool

# manifest settings an index must share with the new run to be updated in place
UPDATE_SETTINGS = ("embedder", "dim", "chunking", "windows", "notes_root", "index_type")


def updatable(store: NotesStore, manifest: dict) -> bool:
    """Whether ``store`` was written with the settings of ``manifest`` (else: a rebuild)."""
    stored = store.manifest
    return all(stored.get(key) == manifest.get(key) for key in UPDATE_SETTINGS)


def update_in_place(
    store: NotesStore,
    notes_dir: Path,
    max_note_bytes: int,
    embedder: Embedder,
    windows: WindowConfig,
    cfg: ChunkingConfig,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> dict:
    """Bring ``store`` up to date with ``notes_dir``; returns the summary's counts and lists
    (``added``, ``changed``, ``removed``, ``unchanged``, ``embedded``, ``skipped``, ...)."""
    known = store.documents()
    stored = {d["path"]: d["sha256"] for d in known}
    stat_cache = {d["path"]: (d["mtime"], d["size"]) for d in known}
    notes, report = iter_notes(
        notes_dir, max_note_bytes, index_dir=store.folder, stat_cache=stat_cache
    )
    documents, chunks, seen = [], [], set()
    for doc in notes:
        seen.add(doc.path)
        if doc.sha256 in (UNCHANGED, stored.get(doc.path)):
            continue  # not read again (same time and size), or read and hashed the same
        chunks.extend(chunk_document(doc, embedder.count_tokens, cfg))
        documents.append(replace(doc, text=""))
    removed = sorted(set(stored) - seen)
    added = sorted(d.path for d in documents if d.path not in stored)
    changed = sorted(d.path for d in documents if d.path in stored)
    result = {
        "added": added,
        "changed": changed,
        "removed": removed,
        "unchanged": len(seen) - len(documents),
        "skipped": report.skipped,
        "decoded_with_fallback": report.decoded_with_fallback,
        "embedded": 0,
        "written": False,
    }
    same_skipped = sorted(map(tuple, report.skipped)) == sorted(store.skipped())
    if not documents and not removed and same_skipped:
        return result
    previous = PreviousVectors(store, changed)  # an edited note's untouched passages
    spool_folder = new_build_folder(store.folder)  # marked: removed if we are killed
    try:
        with VectorSpool(spool_folder, store.codec) as spool:
            result["embedded"] = sum(1 for c in chunks if c.text not in previous)
            counts = spool_vectors(
                embedder, windows, chunks, previous, spool, progress, on_progress
            )
            previous.close(keep_store=True)
            apply_update(
                store,
                documents,
                removed,
                chunks,
                spool,
                np.asarray(counts, dtype=np.int64),
                report.skipped,
            )
    finally:
        discard(spool_folder)
    result["written"] = True
    return result
