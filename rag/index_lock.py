"""One writer at a time: an exclusive lock file beside the index folder (the folder itself is
swapped on every update, so the lock cannot live inside it).

Example:
    >>> import tempfile
    >>> index_dir = Path(tempfile.mkdtemp()) / ".notesqa"
    >>> lock = IndexLock(index_dir)
    >>> lock.path.name
    '.notesqa.lock'
    >>> with lock, IndexLock(index_dir, timeout=0):     # a second indexer waits, then gives up
    ...     pass
    Traceback (most recent call last):
    TimeoutError: another `notesqa index` (pid ...) is updating ...; wait for it to finish and ...
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class IndexLock:
    """An exclusive lock beside the index folder so two indexers never write it at once.

    Waits up to ``timeout`` seconds, then fails with a message naming the holder's pid.
    """

    def __init__(self, index_dir: Path, timeout: float = 10.0) -> None:
        hidden = index_dir.name if index_dir.name.startswith(".") else f".{index_dir.name}"
        self.path = index_dir.parent / f"{hidden}.lock"  # beside it: the folder itself is swapped
        self.timeout = timeout
        self._handle = None

    def __enter__(self) -> IndexLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        deadline = time.time() + self.timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    handle.close()
                    raise TimeoutError(
                        f"another `notesqa index` (pid {holder}) is updating {self.path.parent}; "
                        "wait for it to finish and run this again"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
