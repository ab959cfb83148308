"""Every passage's vectors, in passage order, into a ``VectorSpool``: reused from the index being
replaced when a passage is unchanged, else embedded ``EMBED_BATCH`` passages at a time.

Memory holds one batch's tokens and windows and the previous index (for its reusable vectors),
never the whole folder's vectors: a 50 MB vault has about 760,000 of them.

Example:
    >>> import tempfile
    >>> from embedder import Embedder, WindowConfig
    >>> from rag.chunking import Chunk
    >>> chunks = [Chunk("a.md", 0, 20, "Adam keeps averages.", "")]
    >>> with VectorSpool(tempfile.mkdtemp(), dim=256) as spool:
    ...     counts = spool_vectors(Embedder.load(), WindowConfig.of(0), chunks,
    ...                            PreviousVectors(None), spool)
    ...     counts, len(spool)
    ([1], 1)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from embedder import Embedder, WindowConfig
from rag.chunking import Chunk
from rag.store import NotesStore
from rag.vector_spool import VectorSpool
from rag.window_scores import rows_by_owner

EMBED_BATCH = 256  # passages embedded at a time while indexing


class PreviousVectors:
    """The vectors of the index being replaced, found by passage text (an unchanged passage
    keeps its vectors: the embedder is deterministic). ``None``: nothing to reuse."""

    def __init__(self, store: NotesStore | None) -> None:
        self._store = store
        self._chunk_of = (
            {c.text: int(i) for i, c in zip(store.chunk_ids(), store.chunks(), strict=True)}
            if store
            else {}
        )

    def __contains__(self, text: str) -> bool:
        return text in self._chunk_of

    def vectors(self, text: str) -> np.ndarray:
        """``(n, d)`` float32: the stored vectors of the passage with this text (decoded from
        8 bits: encoded again, they keep their codes)."""
        return self._store.chunk_vectors(self._chunk_of[text])

    def close(self) -> None:
        """Close the old index (its vectors leave memory before the new index is built)."""
        if self._store is not None:
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
