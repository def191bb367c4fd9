"""Fixtures for tests/notifier live in notifier_fixtures.py (a unique module name: test files import its helpers)."""

from notifier_fixtures import *  # noqa: F403
