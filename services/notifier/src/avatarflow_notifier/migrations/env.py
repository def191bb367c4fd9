"""Alembic environment: runs migrations on a synchronous connection.

``upgrade_database`` passes an open connection in ``config.attributes["connection"]``; the
``alembic`` command line (with ``sqlalchemy.url`` set) gets an engine made here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from avatarflow_notifier.adapters.models import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from avatarflow_notifier.migrate import sync_url

    engine = create_engine(sync_url(config.get_main_option("sqlalchemy.url") or ""))
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
