"""One Validator per test session (the models load once, like a warm worker)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from avatarflow_validator.bootstrap import open_validator
from avatarflow_validator.core import Validator

SHARED = Path(os.environ.get("AVATARFLOW_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def validator() -> Iterator[Validator]:
    with open_validator() as instance:
        yield instance
