"""Notifier configuration (environment variables with the ``AVATARFLOW_`` prefix)."""

from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings
from pydantic import Field


class NotifierSettings(ServiceSettings):
    service_name: str = "notifier"
    # AVATARFLOW_DATABASE_URL: SQLite is the embedded default; production uses postgresql+psycopg://.
    database_url: str = "sqlite+aiosqlite:///./var/notifier.db"
    # AVATARFLOW_NOTIFIER_INGEST_PUBLIC_URL: where the editor page POSTs uploads (ingest must allow
    # this page's origin with CORS).
    notifier_ingest_public_url: str = "http://127.0.0.1:8081"
    # AVATARFLOW_NOTIFIER_SUPPORT_URL: offered when processing failed with "contact_support" advice.
    notifier_support_url: str = "https://support.avatarflow.example/tickets/new?topic=avatar-processing"
    # How often an open SSE stream re-reads its space's version (changes by other replicas).
    notifier_sse_poll_interval_s: float = Field(default=2.0, gt=0)
    notifier_sse_ping_interval_s: float = Field(default=15.0, gt=0)
    # Catalogue of pre-generated avatars: the index object is <prefix>index.json in s3_bucket.
    notifier_catalogue_prefix: str = "catalogue/"
    notifier_catalogue_cache_s: float = Field(default=30.0, ge=0)
    # Run Alembic migrations when the app starts (handy for SQLite; off when a job migrates).
    notifier_migrate_on_start: bool = False
    # Seed the pre-generated avatar catalogue at start when it is missing (local stack, first deploy).
    notifier_seed_catalogue: bool = False
