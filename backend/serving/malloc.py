"""Keeping a long-running process's heap from fragmenting (glibc only; a no-op elsewhere).

glibc gives every thread that allocates its own arena (up to 8 per core), and frees into
them without returning memory to the system; and after a large block is freed it raises its
mmap threshold, so later large blocks (a batch's arrays, a few MB) come from the heap and
leave holes there. A daemon whose threads (I/O, compute, ZeroMQ's, torch's) allocate batches
of varying size then grows slowly although nothing leaks. Capping the arenas, fixing the mmap
threshold (large blocks are mapped and unmapped whole) and trimming the heap now and then
keep its resident memory flat.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB and more: mapped, returned on free


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc has both; musl has neither)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at ``count`` and fix its mmap threshold (0: leave both at
    glibc's defaults); whether it applied. Call it before the process starts its threads:
    arenas already made stay."""
    if count <= 0 or _LIBC is None:
        return False
    fixed = _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # also stops its dynamic rise
    return bool(_LIBC.mallopt(M_ARENA_MAX, int(count))) and bool(fixed)


def trim() -> None:
    """Return free heap memory to the system (``malloc_trim(0)``; about a millisecond)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
