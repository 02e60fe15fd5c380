"""Bounded memory for long videos: stop glibc's allocator from hoarding freed buffers.

When decoding runs in one thread and the network in others, glibc serves mid-sized buffers
(frames, activations of a few MB) from per-thread heaps and, because its mmap threshold rises
with every large free, keeps them after they are freed: a 10-minute detection grew to about
3 GB instead of peaking at 1.2 GB (docs/detect.md). A fixed
mmap threshold returns every buffer of 1 MiB or more to the system when it is freed, and two
arenas keep the small ones together. Both are process-wide ``mallopt`` settings; elsewhere than
glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import functools

_M_MMAP_THRESHOLD = -3  # glibc malloc.h
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20
ARENA_MAX = 2


@functools.cache
def bound_heap_growth() -> bool:
    """Apply the settings above once per process; True when the C library accepted them."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this Python runs on
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_ARENA_MAX, ARENA_MAX))
