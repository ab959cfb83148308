"""Vectors spooled to a temporary file as 8-bit codes as they are embedded, then read once, a block
at a time, into the index.

Indexing a big vault makes hundreds of thousands of vectors (100k passages of Wikipedia: about
960,000, 985 MB as float32). The spool holds them in the index's own 8-bit code (a quarter of
that), written as they come and read back by ``blocks`` with plain reads, so memory holds one
batch while embedding and one block while building: no float32 copy and no memory-map whose pages
stay resident. Decoded and encoded again, a vector keeps its code, so the index stores exactly
what the spool does.

Example:
    >>> import tempfile
    >>> from rag.vector_segments import VectorCodec
    >>> with VectorSpool(tempfile.mkdtemp(), VectorCodec.for_dim(2)) as spool:
    ...     spool.append(np.array([[1.0, 0.0]], dtype=np.float32))
    ...     spool.append(np.array([[0.0, 1.0], [0.6, 0.8]], dtype=np.float32))  # unit rows
    ...     len(spool), [round(float(x), 2) for x in spool.take(np.array([2]))[0]]
    (3, [0.6, 0.8])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rag.store_files import check_vector_rows
from rag.vector_blocks import take_from_blocks
from rag.vector_segments import VectorCodec


class VectorSpool:
    """An append-only temporary file under ``folder`` of ``codec``'s codes (``dim`` bytes a
    vector), deleted on ``close``; a ``rag.vector_blocks.VectorSource`` of the decoded vectors."""

    def __init__(self, folder: str | Path, codec: VectorCodec) -> None:
        self.codec = codec
        self.dim = codec.dim
        fd, name = tempfile.mkstemp(prefix=".notesqa-vectors-", suffix=".u8", dir=folder)
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append(self, rows: np.ndarray) -> None:
        """Add ``rows`` ``(n, dim)`` (finite unit rows) after those already spooled."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        check_vector_rows(rows)
        if rows.shape[1] != self.dim:
            raise ValueError(f"rows must have shape (n, {self.dim}), got {rows.shape}")
        if len(rows):
            self._file.write(self.codec.encode(rows).tobytes())
        self._rows += len(rows)

    def blocks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(first, (b, dim) float32)``: the spooled vectors decoded, ``size`` at a time."""
        self._file.flush()
        with open(self.path, "rb") as handle:
            for first in range(0, self._rows, size):
                count = min(size, self._rows - first)
                data = handle.read(count * self.dim)
                if len(data) != count * self.dim:
                    raise OSError(f"the vector spool {self.path} was cut short")
                codes = np.frombuffer(data, dtype=np.uint8).reshape(count, self.dim)
                yield first, self.codec.decode(codes)

    def take(self, ids: np.ndarray) -> np.ndarray:
        """``(len(ids), dim)`` float32: the decoded vectors at these positions (one pass)."""
        return take_from_blocks(self, ids)

    def close(self) -> None:
        """Delete the spool file."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> VectorSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
