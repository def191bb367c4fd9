"""The Alembic migrations produce exactly the schema the models describe (both engines)."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from avatarflow_notifier.adapters.models import metadata
from avatarflow_notifier.migrate import sync_url, upgrade_database
from sqlalchemy import create_engine, inspect


def schema_diff(url: str) -> list:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_migrations_match_models(db_url):
    assert schema_diff(db_url) == []
    upgrade_database(db_url)  # idempotent: a second run changes nothing
    assert schema_diff(db_url) == []
    engine = create_engine(sync_url(db_url))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"notifier_uploads", "notifier_spaces", "notifier_applied_events", "alembic_version"} <= tables


def test_migrate_module_runs_from_the_command_line(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "avatarflow_notifier.migrate", "--url", url], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert schema_diff(url) == []
