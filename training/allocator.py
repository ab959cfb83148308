"""Keep freed CPU memory in the process during training (glibc), instead of returning it each step.

glibc serves large blocks (the (B, T, 4H) activations, the (M, V) MLM logits) with ``mmap`` and
gives them back with ``munmap`` when freed, so every training step page-faults its activations in
again: on a 2-core CPU that is a large share of a small BERT's step (``sys`` time). Turning off
``mmap`` for large blocks and the heap trimming makes the allocator reuse them, the same effect
as ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` set before start or a jemalloc/tcmalloc
preload, but applied from inside the process. The price: freed memory stays in the process, and with batches of varying width (and a varying
number of masked positions) the heap fragments and grows: a 12,000-step pretraining run reached
12.6 GB resident by step 9,300. ``release_free_pages`` (``malloc_trim``, which also returns free
pages inside the heap) is therefore called every ``log_every`` steps, a cost paid once per many steps.

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
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return None
    return libc


def release_free_pages() -> bool:
    """Give the free pages of the heap back to the OS now (glibc ``malloc_trim``); True if any were.

    Example:
        >>> release_free_pages()
        True
    """
    libc = _libc()
    return bool(libc and libc.malloc_trim(0))


@functools.cache
def retain_freed_memory() -> bool:
    """Make glibc keep and reuse freed blocks; True if applied (False off glibc, e.g. macOS)."""
    libc = _libc()
    if libc is None:
        return False
    applied = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
    if applied:
        log.info("allocator: freed memory is kept for reuse (no mmap/trim per step)")
    return applied
