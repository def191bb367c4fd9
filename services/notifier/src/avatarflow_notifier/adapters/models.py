"""Database tables (SQLAlchemy Core). The Alembic migrations (``..migrations``) must produce exactly this.

Timestamps are stored in UTC; :class:`UtcDateTime` hands back aware datetimes on both PostgreSQL and
SQLite (which has no time zone type).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite compares the stored text, so keep one format: naive UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID_LEN = 128

uploads = Table(
    "notifier_uploads",
    metadata,
    Column("upload_id", String(36), primary_key=True),
    Column("space_id", String(ID_LEN), nullable=False),
    Column("editor_id", String(ID_LEN), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(16), nullable=True),
    Column("uploaded_at", UtcDateTime(), nullable=True),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    # coalesce(uploaded_at, first_seen_at): the "latest upload" ordering key, indexed per space.
    Column("order_at", UtcDateTime(), nullable=False),
    Column("status_at", UtcDateTime(), nullable=False),
    Column("original_key", String(1024), nullable=True),
    Column("terminal_event_type", String(32), nullable=True),
    Column("reasons", JSON, nullable=False),
    Column("editor_messages", JSON, nullable=False),
    Column("checks", JSON, nullable=False),
    Column("warnings", JSON, nullable=False),
    Column("pack", JSON, nullable=True),
    Column("failure", JSON, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_notifier_uploads_space_order", "space_id", "order_at", "upload_id"),
)

spaces = Table(
    "notifier_spaces",
    metadata,
    Column("space_id", String(ID_LEN), primary_key=True),
    # Bumped on every visible change; SSE streams of other replicas poll it.
    Column("version", Integer, nullable=False),
    Column("latest_upload_id", String(36), nullable=True),
    # The current avatar as shown to end users (status.CurrentAvatar as JSON).
    Column("avatar", JSON, nullable=True),
    Column("picked_avatar_id", String(ID_LEN), nullable=True),
    Column("picked_at", UtcDateTime(), nullable=True),
    Column("prompt_dismissed_upload_id", String(36), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

applied_events = Table(
    "notifier_applied_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("event_type", String(32), nullable=False),
    Column("upload_id", String(36), nullable=False),
    Column("space_id", String(ID_LEN), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("applied_at", UtcDateTime(), nullable=False),
    Index("ix_notifier_applied_events_upload", "upload_id"),
    # Retention: old records are deleted by age (StatusStore.prune_applied_events).
    Index("ix_notifier_applied_events_applied_at", "applied_at"),
)
