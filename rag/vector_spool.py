"""Vectors spooled to a temporary file as they are embedded, then read once into the index.

Indexing a big vault makes hundreds of thousands of vectors (50 MB of notes: about 760,000, 780 MB
as float32). Spooled to disk as they come, memory holds one batch while embedding, and the index
is encoded (8 bits a number) from a memory-map of the file (``mapped``).

Example:
    >>> import tempfile
    >>> with VectorSpool(tempfile.mkdtemp(), dim=2) as spool:
    ...     spool.append(np.array([[1.0, 0.0]], dtype=np.float32))
    ...     spool.append(np.array([[0.0, 1.0], [0.6, 0.8]], dtype=np.float32))  # unit rows
    ...     len(spool), spool.mapped()[2].tolist()
    (3, [0.6000000238418579, 0.800000011920929])
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from rag.store_files import check_vector_rows


class VectorSpool:
    """An append-only file of ``(n, dim)`` float32 rows in a temporary file under ``folder``
    (deleted on ``close``)."""

    def __init__(self, folder: str | Path, dim: int) -> None:
        self.dim = int(dim)
        fd, name = tempfile.mkstemp(prefix=".notesqa-vectors-", suffix=".f32", dir=folder)
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append(self, rows: np.ndarray) -> None:
        """Add ``rows`` ``(n, dim)`` (converted to float32) after those already spooled."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        check_vector_rows(rows)
        if rows.shape[1] != self.dim:
            raise ValueError(f"rows must have shape (n, {self.dim}), got {rows.shape}")
        self._file.write(rows.tobytes())
        self._rows += len(rows)

    def mapped(self) -> np.ndarray:
        """Every row spooled, ``(len, dim)`` float32, memory-mapped from the file (pages are read
        as they are used; nothing is copied)."""
        self._file.flush()
        if not self._rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=(self._rows, self.dim))

    def close(self) -> None:
        """Delete the spool file."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> VectorSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
