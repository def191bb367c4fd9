"""Process set-up for the matting worker: the numba JIT cache and the allocator.

Both act on the whole process, which is why they are not in ``core/``:

* **The numba cache.** The core's per-pixel kernels (``core/kernels.py``) are compiled by numba
  when first used: a few seconds with an empty cache, well under a second when the compiled code
  is already on disk. numba reads the cache location (``NUMBA_CACHE_DIR``) once, when it is first
  imported, and the kernels are declared when the core is imported; so :func:`configure_numba_cache`
  runs when this package is (``avatarflow_matting/__init__.py``), before any ``core`` import, in
  every process that uses the core: the service, ``avatarctl``, the benchmarks, the tests, the
  image's build-time warm-up. pymatting (used only by the evaluation, for reference foregrounds)
  compiles all of its kernels when imported, 30-40 s cold: ``evaluation.import_pymatting``.
* **The allocator** (:func:`keep_freed_memory`), below.

A worker calls :func:`warm_up` once at start so that no message pays the compile or load cost;
container images compile the kernels at build time (``core.warm_up``), so the cache ships with them.

Keeping freed megapixel arrays in the process instead of handing them back to the kernel:

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
import os
import tempfile
import time
from pathlib import Path

_CACHE_ENV_VARS = ("AVATARFLOW_NUMBA_CACHE_DIR", "NUMBA_CACHE_DIR")


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


def default_numba_cache_dir() -> Path:
    """A writable per-user directory: numba refuses to cache next to read-only site-packages."""
    return Path(tempfile.gettempdir()) / f"avatarflow-numba-cache-{os.getuid()}"


def configure_numba_cache() -> Path:
    """Point numba's on-disk cache at a writable directory (env first, then the default).

    Only effective before numba is first imported in this process (see above); idempotent.
    """
    for name in _CACHE_ENV_VARS:
        value = os.environ.get(name)
        if value:
            path = Path(value)
            break
    else:
        path = default_numba_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    return path


def warm_up() -> float:
    """Prepare a worker process: allocator settings, then load (or compile and cache) the core's
    JIT kernels and run each once; returns seconds."""
    started = time.perf_counter()
    keep_freed_memory()
    configure_numba_cache()
    from .core import kernels

    kernels.warm_up()
    return time.perf_counter() - started
