"""Keep large freed blocks in the process heap instead of returning them to the OS.

glibc serves large allocations (the [batch, time, units] blocks of a training step: 20 MB at the
Cueva shape, 200 MB for an evaluation batch) with fresh ``mmap`` pages and unmaps them on free,
so every such tensor page-faults on first write. In a training step that costs as much as the
arithmetic of the whole integration (measured: the backward's input-column copy 33 → 9 ms, the
K = 2 readout GEMM 17 → 2.5 ms). Raising the mmap and trim thresholds makes freed blocks
reusable. The cost is that the process keeps its peak heap; for a training or scoring process
that is the working set anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def keep_large_allocations() -> bool:
    """Tune glibc's malloc once per process; False where that is not possible (not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # Older glibc caps the mmap threshold at 32 MiB (HEAP_MAX_SIZE / 2) and rejects more.
    mapped = any(mallopt(_M_MMAP_THRESHOLD, size) == 1 for size in (1 << 30, 1 << 25))
    return mapped and mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
