"""Fixtures for tests/deploy live in deploy_fixtures.py (a unique module name: test files import its helpers)."""

from deploy_fixtures import *  # noqa: F403
