"""Every passage's vectors, in passage order, into a ``VectorSpool``: reused from the index being
replaced when a passage is unchanged, else embedded ``EMBED_BATCH`` passages at a time.

Memory holds one batch's tokens and windows and the previous index (for its reusable vectors),
never the whole folder's vectors: a 50 MB vault has about 760,000 of them.

Example:
    >>> import tempfile
    >>> from embedder import Embedder, WindowConfig
    >>> from rag.chunking import Chunk
    >>> chunks = [Chunk("a.md", 0, 20, "Adam keeps averages.", "")]
    >>> from rag.vector_segments import VectorCodec
    >>> with VectorSpool(tempfile.mkdtemp(), VectorCodec.for_dim(256)) as spool:
    ...     counts = spool_vectors(Embedder.load(), WindowConfig.of(0), chunks,
    ...                            PreviousVectors(None), spool)
    ...     counts, len(spool)
    ([1], 1)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from embedder import Embedder, WindowConfig
from rag.chunking import Chunk
from rag.store import NotesStore
from rag.vector_spool import VectorSpool
from rag.window_scores import rows_by_owner

log = logging.getLogger(__name__)

EMBED_BATCH = 256  # passages embedded at a time while indexing


class PreviousVectors:
    """The vectors of the index being replaced, found by passage text (an unchanged passage
    keeps its vectors: the embedder is deterministic). ``None``: nothing to reuse."""

    def __init__(self, store: NotesStore | None, paths: Sequence[str] | None = None) -> None:
        """``paths``: only the passages of these notes (an update in place re-embeds the notes
        that changed, and only their old passages can match); ``None``: every passage."""
        self._store = store
        if store is None:
            self._chunk_of: dict[str, int] = {}
        elif paths is None:
            self._chunk_of = {
                c.text: int(i) for i, c in zip(store.chunk_ids(), store.chunks(), strict=True)
            }
        else:
            self._chunk_of = {text: int(i) for i, text in store.passages_of(paths)}

    def __contains__(self, text: str) -> bool:
        return text in self._chunk_of

    def vectors(self, text: str) -> np.ndarray:
        """``(n, d)`` float32: the stored vectors of the passage with this text (decoded from
        8 bits: encoded again, they keep their codes)."""
        return self._store.chunk_vectors(self._chunk_of[text])

    def close(self, keep_store: bool = False) -> None:
        """Close the old index (its vectors leave memory before the new index is built), or
        only forget it when ``keep_store`` (an update in place still uses it)."""
        if self._store is not None and not keep_store:
            self._store.close()
        self._store = None
        self._chunk_of = {}


def spool_vectors(
    embedder: Embedder,
    windows: WindowConfig,
    chunks: list[Chunk],
    previous: PreviousVectors,
    spool: VectorSpool,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Append every chunk's ``(n_i, d)`` vectors (its own, then its token windows') to ``spool``
    in chunk order; returns each chunk's ``n_i``. ``on_progress(done, total)`` (or a tqdm bar
    when ``progress``) counts the passages embedded."""
    todo = [i for i, c in enumerate(chunks) if c.text not in previous]
    counts = [0] * len(chunks)
    spooled = 0  # chunks before this one are in the spool

    def spool_until(stop: int, fresh: dict[int, np.ndarray]) -> None:
        nonlocal spooled
        for i in range(spooled, stop):
            rows = fresh.pop(i) if i in fresh else previous.vectors(chunks[i].text)  # (n_i, d)
            spool.append(rows)
            counts[i] = len(rows)
        spooled = stop

    bar = None
    if progress and on_progress is None and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="embedding passages", unit="passage", leave=False)
    if on_progress is not None and todo:
        on_progress(0, len(todo))
    for first in range(0, len(todo), EMBED_BATCH):
        batch = todo[first : first + EMBED_BATCH]
        texts = [chunks[i].text for i in batch]  # the text alone (rag.passage_context says why)
        vectors, owners = embedder.encode_with_windows(texts, windows)
        fresh = rows_by_owner(vectors, owners, len(batch))  # (n_i, d) per passage of the batch
        spool_until(batch[-1] + 1, dict(zip(batch, fresh, strict=True)))
        if bar is not None:
            bar.update(len(batch))
        if on_progress is not None:
            on_progress(min(first + EMBED_BATCH, len(todo)), len(todo))
    spool_until(len(chunks), {})
    if bar is not None:
        bar.close()
    return counts


def previous_index(
    index_dir: Path, embedder: Embedder, windows: WindowConfig
) -> tuple[dict[str, str], PreviousVectors]:
    """``({path: sha256}, its vectors by passage text)`` of the index in ``index_dir``; no vectors
    when it was built with other token windows (they are all re-embedded then). The caller
    closes the ``PreviousVectors``."""
    try:
        old = NotesStore.open(index_dir)
    except FileNotFoundError:
        return {}, PreviousVectors(None)
    except ValueError as err:  # an older format or a damaged index: build from scratch
        log.warning("rebuilding the index from scratch: %s", err)
        return {}, PreviousVectors(None)
    kept = False
    try:
        manifest = old.manifest
        if manifest.get("dim") != embedder.dim:
            raise ValueError(
                f"the index at {index_dir} holds vectors of dimension "
                f"{manifest.get('dim')}, not {embedder.dim} as asked; leave out --dim to "
                "keep its size, or run `notesqa index NOTES_DIR --rebuild` to change it"
            )
        if manifest.get("embedder") != embedder.identity:
            raise ValueError(
                f"the index at {index_dir} was built with embedder "
                f"{manifest.get('embedder')!r}, not {embedder.identity!r}; run "
                "`notesqa index NOTES_DIR --rebuild` to re-embed everything with the new one"
            )
        docs = {d["path"]: d["sha256"] for d in old.documents()}
        stored_windows = manifest.get("windows", WindowConfig(tokens=0).to_dict())
        if stored_windows != windows.to_dict():
            log.info(
                "token windows changed (%s before): re-embedding every passage", stored_windows
            )
            return docs, PreviousVectors(None)
        kept = True
        return docs, PreviousVectors(old)
    finally:
        if not kept:
            old.close()
