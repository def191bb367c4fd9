"""Run the notifier's Alembic migrations.

Programmatic: ``upgrade_database(url)``. Command line: ``python -m avatarflow_notifier.migrate
[--url URL] [--revision head]`` (the URL defaults to ``AVATARFLOW_DATABASE_URL``).
Async driver URLs (``sqlite+aiosqlite``, ``postgresql+psycopg``) are accepted: migrations run on the
matching synchronous driver.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def sync_url(url: str) -> str:
    """The synchronous-driver twin of an async database URL (psycopg 3 serves both)."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    elif parsed.drivername in ("postgresql+asyncpg", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' must be escaped for configparser interpolation (passwords may contain it).
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (idempotent). Blocking: call it in a thread
    from async code."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Apply the notifier's database migrations")
    parser.add_argument("--url", default=None, help="defaults to AVATARFLOW_DATABASE_URL")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args(argv)
    if args.url is None:
        from .settings import NotifierSettings

        args.url = NotifierSettings().database_url
    upgrade_database(args.url, args.revision)
    print(f"notifier database at revision {args.revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
