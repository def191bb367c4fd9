"""The matting service: ``core/`` (pure), ``adapters/`` (the person model), ``handlers``, ``app``.

Importing the package points numba's cache at a writable directory first
(:func:`bootstrap.configure_numba_cache`): numba reads that location once, when it is first
imported, and ``core`` declares its cached kernels as it is imported, so this has to happen before
any ``avatarflow_matting.core`` import in any process (see ``bootstrap.py``).
"""

from .bootstrap import configure_numba_cache

configure_numba_cache()
