"""The matting core is pure: it imports without MediaPipe or pymatting, and the process set-up
(numba's cache directory) is the package bootstrap's, done before numba is first imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mediapipe", "pymatting"):
            raise ImportError("blocked: " + name)
        return None
sys.meta_path.insert(0, Block())
"""


def run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_core_imports_without_mediapipe_or_pymatting_and_the_bootstrap_sets_the_numba_cache(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "AVATARFLOW_NUMBA_CACHE_DIR")}
    env["AVATARFLOW_NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    code = """
import os, sys
import avatarflow_matting.core
import avatarflow_matting.handlers
import numba
assert "mediapipe" not in sys.modules and "pymatting" not in sys.modules, sorted(sys.modules)
assert os.environ["NUMBA_CACHE_DIR"] == os.environ["AVATARFLOW_NUMBA_CACHE_DIR"]
assert numba.config.CACHE_DIR == os.environ["AVATARFLOW_NUMBA_CACHE_DIR"], numba.config.CACHE_DIR
from avatarflow_matting.bootstrap import warm_up
print(warm_up())
"""
    result = run(code, env)
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "numba").rglob("*.nbi")), "the warm-up must compile into the configured cache"
