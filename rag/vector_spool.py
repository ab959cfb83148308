"""Vectors spooled to a temporary file as they are embedded, then read once into the index.

Indexing a big vault makes hundreds of thousands of vectors (50 MB of notes: about 760,000, 780 MB
as float32). Held in memory as they come and then copied into FAISS, they cost twice that and more
(an ``IndexFlat`` grows by doubling); spooled to disk, memory holds one batch while embedding and
the vectors once when the flat index is filled in place from the file (``flat_index``).

Example:
    >>> import tempfile
    >>> with VectorSpool(tempfile.mkdtemp(), dim=2) as spool:
    ...     spool.append(np.array([[1.0, 0.0]], dtype=np.float32))
    ...     spool.append(np.array([[0.0, 1.0], [0.6, 0.8]], dtype=np.float32))  # unit rows
    ...     index = spool.flat_index()
    ...     len(spool), index.ntotal, index.reconstruct(2).tolist()
    (3, 3, [0.6000000238418579, 0.800000011920929])
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import faiss
import numpy as np

from rag.store_files import check_vector_rows

_READ_BLOCK = 64 << 20  # bytes read from the spool at a time


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

    def array(self) -> np.ndarray:
        """Every row spooled, ``(len, dim)`` float32, read into memory."""
        self._file.flush()
        out = np.empty((self._rows, self.dim), dtype=np.float32)
        self._read_into(out.reshape(-1).view(np.uint8))
        return out

    def flat_index(self) -> faiss.Index:
        """An exact inner-product ``IndexIDMap2`` (ids ``0..len-1``) over the rows, its storage
        filled in place from the file: the vectors are in memory once."""
        self._file.flush()
        inner = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIDMap2(inner)  # (keeps a reference to inner)
        nbytes = self._rows * self.dim * 4
        if nbytes:
            inner.codes.resize(nbytes)
            self._read_into(faiss.rev_swig_ptr(inner.codes.data(), nbytes))
            inner.ntotal = self._rows
            faiss.copy_array_to_vector(np.arange(self._rows, dtype=np.int64), index.id_map)
            index.ntotal = self._rows
            index.construct_rev_map()
        return index

    def _read_into(self, buffer: np.ndarray) -> None:
        """Fill the uint8 ``buffer`` with the spool's bytes, a block at a time."""
        self._file.seek(0)
        view = memoryview(buffer)
        done = 0
        while done < len(buffer):
            read = self._file.readinto(view[done : done + _READ_BLOCK])
            if not read:
                raise OSError(f"the vector spool {self.path} ended early (at byte {done})")
            done += read

    def close(self) -> None:
        """Delete the spool file."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> VectorSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
