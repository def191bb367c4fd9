"""Notifier configuration (environment variables with the ``AVATARFLOW_`` prefix)."""

from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings
from pydantic import Field


class NotifierSettings(ServiceSettings):
    service_name: str = "notifier"
    http_port: int = 8085
    verifies_tokens = True  # refuses to start without a strong AVATARFLOW_JWT_SECRET
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/notifier.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:// (embedded) or postgresql+psycopg:// (production)",
    )
    notifier_ingest_public_url: str = Field(
        default="http://127.0.0.1:8081",
        description="where the editor page POSTs uploads (ingest allows its origin)",
    )
    notifier_support_url: str = Field(
        default="https://support.avatarflow.example/tickets/new?topic=avatar-processing",
        description="offered when processing failed with contact_support advice",
    )
    notifier_sse_poll_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="how often an open SSE stream re-reads its space (other replicas' writes)",
    )
    notifier_sse_ping_interval_s: float = Field(default=15.0, gt=0, description="SSE keep-alive ping interval")
    notifier_catalogue_prefix: str = Field(default="catalogue/", description="S3 prefix of the pre-generated avatars")
    notifier_catalogue_cache_s: float = Field(default=30.0, ge=0, description="catalogue index cache lifetime")
    notifier_applied_events_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="idempotency records of applied events older than this are deleted (0 keeps them forever); "
        "keep it above the topics' retention",
    )
    notifier_prune_interval_s: float = Field(
        default=3600.0, gt=0, description="how often each replica deletes expired idempotency records"
    )
    notifier_migrate_on_start: bool = Field(
        default=False,
        description="run Alembic migrations at start (SQLite/local; production runs a migration Job)",
    )
    notifier_seed_catalogue: bool = Field(
        default=False, description="write the default pre-generated avatars at start (idempotent)"
    )
