"""Numba JIT cache set-up and worker warm-up.

pymatting compiles all of its numba kernels when it is imported: about 30-40 s with an empty cache,
about 1 s when the compiled code is already on disk. ``configure_numba_cache`` must therefore run
before the first import of pymatting or numba, and a worker calls ``warm_up`` once at start so that
no message pays the import cost.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

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


def import_pymatting():  # type: ignore[no-untyped-def]
    """Import pymatting with the cache configured (first call compiles or loads the kernels)."""
    configure_numba_cache()
    import pymatting

    return pymatting


def warm_up() -> float:
    """Load (or compile and cache) the JIT code the core uses and run it once; returns seconds."""
    started = time.perf_counter()
    pymatting = import_pymatting()
    image = np.full((16, 16, 3), 0.5)
    alpha = np.tile(np.linspace(0.0, 1.0, 16), (16, 1))
    pymatting.estimate_foreground_ml(image, alpha)
    return time.perf_counter() - started
