"""Updating an index in place, the way Lucene and tantivy do: the passages of new and changed notes
go into a new segment, the passages they replace and those of removed notes become tombstones
(their rows leave the SQLite file, their vectors and postings stay in their segment until a
merge), and small segments merge once there are more than ``MAX_SEGMENTS``.

Every step is crash-safe. A segment is written into a marked temporary folder and renamed into
``segments/`` complete; only then does one SQLite transaction delete the old passages' rows, add
the new ones and list the segment. A crash before the commit leaves the old index (and a segment
folder nobody lists, removed by the next update); after it, the new one. A search sees one or the
other: a store reloads when the manifest's ``generation`` changes (rewritten after each commit).
Keyword scores after an update equal a rebuild's (``rag.keyword_segments`` counts only live
passages), and so do vector scores (one codec, exact segments below ``IVF_MIN_VECTORS``).

Example (``NotesQA.index`` calls this; see tests/rag/test_index_update.py):
    >>> MAX_SEGMENTS
    8
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from embedder.owned_folder import discard, new_temp, remove_owned, swap_in
from rag.chunking import Chunk
from rag.documents import Document
from rag.index_folder import MANIFEST_FILE, SEGMENTS_DIR, SQLITE_FILE
from rag.keyword_segments import merge as merge_keywords
from rag.segment import Segment
from rag.segment_set import SegmentSet
from rag.store import NotesStore
from rag.store_files import insert_passages, insert_segments, insert_skipped
from rag.store_writer import SEGMENT_KIND, build_segment, ivf_threshold
from rag.vector_segments import LiveVectors, VectorCodec, VectorSegment, measure_recall

log = logging.getLogger(__name__)

MAX_SEGMENTS = 8  # more, and the smallest merge into one
MIN_LIVE_SHARE = 0.5  # a segment with fewer of its passages alive is merged (tombstones dropped)


def segment_name(number: int) -> str:
    return f"s{number:06d}"


def next_segment_number(folder: Path, listed: Sequence[str]) -> int:
    """One past every segment listed or lying in ``segments/`` (an orphan of a crash included)."""
    names = set(listed) | {p.name for p in (folder / SEGMENTS_DIR).glob("s*") if p.is_dir()}
    numbers = [int(n[1:]) for n in names if n[1:].isdigit()]
    return max(numbers, default=0) + 1


def write_segment(folder: Path, name: str, segment: Segment) -> None:
    """Save ``segment`` as ``segments/NAME``, complete or not at all."""
    target = folder / SEGMENTS_DIR / name
    tmp = new_temp(target, SEGMENT_KIND)
    try:
        segment.save(tmp)
        swap_in(tmp, target)
    except BaseException:
        discard(tmp)
        raise


def remove_unlisted_segments(folder: Path, listed: Sequence[str]) -> None:
    """Delete segment folders no commit lists (a crash between writing one and its commit, or
    the segments a merge replaced)."""
    for path in (folder / SEGMENTS_DIR).iterdir():
        if path.is_dir() and path.name.startswith("s") and path.name not in listed:
            try:
                remove_owned(path)
            except OSError as exc:  # removed by the next update
                log.warning("could not remove the unused segment %s: %s", path, exc)


@contextlib.contextmanager
def transaction(folder: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction on the index's SQLite file (rolled back on any error), then the
    manifest rewritten with the new counts (``bump_manifest``)."""
    conn = sqlite3.connect(str(folder / SQLITE_FILE), timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
        counts = counts_of(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    bump_manifest(folder, counts)


def bump_manifest(folder: Path, counts: dict) -> None:
    """Rewrite the manifest with the new counts and a new ``generation`` (atomically): open
    stores and other processes see that the index changed."""
    path = folder / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(counts)
    manifest["generation"] = int(manifest.get("generation", 0)) + 1
    manifest["updated"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    tmp = path.with_name(f".{MANIFEST_FILE}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def counts_of(conn: sqlite3.Connection) -> dict:
    """The manifest's counts, from the SQLite file (``num_vectors`` is ``NotesStore``'s)."""
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "num_chunks": one("SELECT COUNT(*) FROM chunks"),
        "num_documents": one("SELECT COUNT(*) FROM documents"),
    }


def apply_update(
    store: NotesStore,
    documents: list[Document],
    removed: Sequence[str],
    chunks: list[Chunk],
    vectors: np.ndarray,
    counts: np.ndarray,
    skipped: Sequence[tuple[str, str]],
) -> dict:
    """Put the new and changed notes ``documents`` (their ``chunks`` and the chunks' ``vectors``,
    ``counts[i]`` rows each) into a new segment and drop the old passages of those notes and of
    the ``removed`` paths. Returns ``{"segment", "merged"}``: the new segment's name (``None``
    when no passage was added) and the segments merged after it."""
    folder = store.folder
    view = store.segment_set
    remove_unlisted_segments(folder, view.names)  # of an update killed before its commit
    first_id = view.next_chunk_id
    name = None
    if chunks:
        name = segment_name(next_segment_number(folder, view.names))
        chunk_ids = np.arange(first_id, first_id + len(chunks), dtype=np.int64)
        kind = store.manifest.get("index_type", "auto")
        segment, info = build_segment(chunks, chunk_ids, vectors, counts, store.codec, kind)
        write_segment(folder, name, segment)
    with transaction(folder) as conn:
        paths = [d.path for d in documents] + list(removed)
        dead: list[int] = []
        for path in paths:  # tombstones: the passages of every note replaced or removed
            dead += [
                row[0]
                for row in conn.execute(
                    "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
                    "WHERE d.path = ?",
                    (path,),
                )
            ]
            conn.execute(
                "DELETE FROM passage_tags WHERE chunk_id IN (SELECT c.id FROM chunks c "
                "JOIN documents d ON d.id = c.document_id WHERE d.path = ?)",
                (path,),
            )
            conn.execute(
                "DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE path = ?)",
                (path,),
            )
        conn.executemany("DELETE FROM documents WHERE path = ?", [(p,) for p in removed])
        conn.executemany(
            "INSERT INTO documents (path, sha256, mtime, size) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256, mtime = excluded.mtime, "
            "size = excluded.size",
            [(d.path, d.sha256, float(d.mtime), int(d.size)) for d in documents],
        )
        doc_ids = dict(conn.execute("SELECT path, id FROM documents").fetchall())
        insert_passages(conn, chunks, first_id, doc_ids)
        if name is not None:
            row = (name, len(chunks), int(np.sum(counts)), info["index_type"], info["recall_at_10"])
            insert_segments(conn, [row])
        conn.execute("DELETE FROM skipped")
        insert_skipped(conn, skipped)
    merged = merge_small_segments(folder) if needs_merge(view, dead, name is not None) else []
    return {"segment": name, "merged": merged}


def needs_merge(view: SegmentSet, dead: Sequence[int], added: bool) -> bool:
    """Whether the segments of ``view``, less the passages ``dead`` and with one more segment
    when ``added``, call for ``merge_small_segments`` (decided without loading them again)."""
    if len(view.segments) + added > MAX_SEGMENTS:
        return True
    live = [int(m.sum()) for m in view.live]
    for chunk_id in dead:
        live[view.locate(int(chunk_id))[0]] -= 1
    return any(
        alive < MIN_LIVE_SHARE * len(segment)
        for alive, segment in zip(live, view.segments, strict=True)
    )


def merge_small_segments(folder: Path, everything: bool = False) -> list[str]:
    """Merge segments into one: the smallest while there are more than ``MAX_SEGMENTS``, those
    more than ``MIN_LIVE_SHARE`` tombstones, or all of them when ``everything`` (``notesqa index
    --optimize``: one segment, an IVF when large). Returns the names merged away."""
    with NotesStore.open(folder) as store:
        view = store.segment_set
        live = [int(m.sum()) for m in view.live]
        order = sorted(range(len(view.segments)), key=lambda i: live[i])
        chosen = {i for i in order if view.live_share(i) < MIN_LIVE_SHARE}
        if everything:
            chosen |= set(order) if len(order) > 1 else set()
        elif len(order) > MAX_SEGMENTS:
            chosen |= set(order[: len(order) - MAX_SEGMENTS // 2])
        if not chosen:
            return []
        chosen_list = sorted(chosen)
        names = [view.names[i] for i in chosen_list]
        kept = [i for i in chosen_list if live[i]]
        merged = None
        if kept:
            merged = merge_segment_parts(
                [view.segments[i] for i in kept],
                [view.live[i] for i in kept],
                store.codec,
                ivf_threshold(store.manifest.get("index_type", "auto")),
            )
            merged_name = segment_name(next_segment_number(folder, view.names))
            write_segment(folder, merged_name, merged)
    with transaction(folder) as conn:
        conn.executemany("DELETE FROM segments WHERE name = ?", [(n,) for n in names])
        if merged is not None:
            kind, recall = "flat", None
            if merged.vectors.approximate:
                kind, recall = "ivf", measure_recall(merged.vectors)
            insert_segments(
                conn, [(merged_name, len(merged), merged.vectors.num_vectors, kind, recall)]
            )
        listed = [r[0] for r in conn.execute("SELECT name FROM segments")]
    remove_unlisted_segments(folder, listed)
    log.info("merged segments %s", ", ".join(names))
    return names


def merge_segment_parts(
    segments: Sequence[Segment],
    live: Sequence[np.ndarray],
    codec: VectorCodec,
    ivf_min_vectors: int | None,
) -> Segment:
    """One segment of the ``live`` passages of ``segments``, in order: their decoded vectors
    encoded again a block at a time (the same codes: one codec; an IVF when there are enough)
    and their postings merged (first: they are smaller than the vectors' build)."""
    chunk_ids = np.concatenate(
        [s.chunk_ids[alive] for s, alive in zip(segments, live, strict=True)]
    )
    per_passage = np.concatenate(
        [np.diff(s.vectors.bounds)[alive] for s, alive in zip(segments, live, strict=True)]
    )
    bounds = np.concatenate([[0], np.cumsum(per_passage)])
    keywords = merge_keywords([s.keywords for s in segments], live)
    rows = LiveVectors([s.vectors for s in segments], live, codec.dim)
    return Segment(chunk_ids, VectorSegment.build(codec, rows, bounds, ivf_min_vectors), keywords)
