"""Fixtures for tests/matting live in matting_fixtures.py (a unique module name: test files import its helpers)."""

from matting_fixtures import *  # noqa: F403
