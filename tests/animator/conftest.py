"""Fixtures for tests/animator live in animator_fixtures.py (a unique module name: test files import its helpers)."""

from animator_fixtures import *  # noqa: F403
