"""Numba JIT cache set-up and worker warm-up.

The core's per-pixel kernels (kernels.py) are compiled by numba on first use: a few seconds with an
empty cache, well under a second when the compiled code is already on disk. pymatting (used only by
the evaluation, for reference foregrounds) compiles all of its kernels when imported: 30-40 s
cold. ``configure_numba_cache`` must therefore run before numba is first imported (kernels.py
calls it at import), and a worker calls ``warm_up`` once at start so that no message pays the
compile or load cost. Container images run ``warm_up`` at build time, so the cache ships with them.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import ModuleType

from .memory import keep_freed_memory

_CACHE_ENV_VARS = ("AVATARFLOW_NUMBA_CACHE_DIR", "NUMBA_CACHE_DIR")


def default_numba_cache_dir() -> Path:
    """A writable per-user directory: numba refuses to cache next to read-only site-packages."""
    return Path(tempfile.gettempdir()) / f"avatarflow-numba-cache-{os.getuid()}"


def configure_numba_cache() -> Path:
    """Point numba's on-disk cache at a writable directory (env first, then the default).

    Only effective before numba is first imported in this process, which is why the core imports
    pymatting lazily, after calling this.
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


def import_pymatting() -> ModuleType:
    """Import pymatting with the cache configured (first call compiles or loads the kernels)."""
    configure_numba_cache()
    import pymatting

    return pymatting


def warm_up() -> float:
    """Prepare a worker process: allocator settings (memory.py), then load (or compile and cache)
    the core's JIT kernels and run each once; returns seconds."""
    started = time.perf_counter()
    keep_freed_memory()
    configure_numba_cache()
    from . import kernels

    kernels.warm_up()
    return time.perf_counter() - started
