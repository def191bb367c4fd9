"""Keep freed megapixel arrays in the process instead of handing them back to the kernel.

glibc serves allocations above its mmap threshold (128 KiB, raised dynamically up to 32 MiB) with
fresh ``mmap`` pages and unmaps them on free, and trims the heap top once more than the trim
threshold is free. A cut-out allocates and frees tens of megapixel-sized arrays, so every message
got brand-new pages, and the first touch of each 4 KiB page is a page fault: about 5,000 per
cut-out on a 1 MP photo, around 10 ms, more than the matting arithmetic itself. With the mmap
threshold at its maximum and trimming above 256 MiB only, those arrays come from (and go back
to) the heap, whose pages stay mapped and are reused by the next message. Cost: the process keeps
the peak working set of one message mapped (RSS is measured by the benchmark, well inside the
700 MB budget). This is a per-process setting, so the worker calls it once at start (``warm_up``).
"""

from __future__ import annotations

import ctypes
import ctypes.util

# <malloc.h> parameter numbers and the 64-bit ceiling of the mmap threshold.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
_TRIM_THRESHOLD = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Apply the allocator settings above; False where the C library has no ``mallopt`` (not
    glibc) or refuses them, in which case nothing changes."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
