"""The workspace lock as data, for tests that check what an install would pull in."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def locked_closure(*args: str) -> dict[str, str]:
    """``uv export --frozen`` of the lock with ``args`` as ``uv sync`` would take them (``--no-dev``,
    ``--package X``, ``--extra Y``, ``--all-packages``): third-party distribution -> pinned version."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH (./dev installs it): the locked closure cannot be exported")
    out = subprocess.run(
        [uv, "export", "--frozen", "--no-hashes", "--no-annotate", "--no-header", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", out, flags=re.M))
