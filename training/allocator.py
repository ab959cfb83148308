"""Keep freed CPU memory in the process during training (glibc), instead of returning it each step.

glibc serves large blocks (the (B, T, 4H) activations, the (M, V) MLM logits) with ``mmap`` and
gives them back with ``munmap`` when freed, so every training step page-faults its activations in
again: on a 2-core CPU that is a large share of a small BERT's step (``sys`` time). Turning off
``mmap`` for large blocks and the heap trimming makes the allocator reuse them, the same effect
as ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` set before start or a jemalloc/tcmalloc
preload, but applied from inside the process. The price: the process keeps its peak memory.

``benchmarks/pretrain_throughput.py`` reports the effect (``ours_retain_freed_memory``).

Example:
    >>> retain_freed_memory()    # Linux with glibc
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

log = logging.getLogger(__name__)

# mallopt parameters from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1


@functools.cache
def retain_freed_memory() -> bool:
    """Make glibc keep and reuse freed blocks; True if applied (False off glibc, e.g. macOS)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
    if applied:
        log.info("allocator: freed memory is kept for reuse (no mmap/trim per step)")
    return applied
