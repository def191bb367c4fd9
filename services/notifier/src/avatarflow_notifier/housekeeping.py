"""The notifier's start and stop work besides the broker: migrations and the catalogue seed (when
configured) before the consumers start, and the pruning of expired idempotency records while it runs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

from avatarflow_runtime.logging import get_logger

from .adapters.catalogue import Catalogue, seed_catalogue
from .adapters.store import StatusStore, utcnow
from .settings import NotifierSettings


async def migrate_if_configured(settings: NotifierSettings) -> None:
    if settings.notifier_migrate_on_start:
        from .migrate import upgrade_database

        await asyncio.to_thread(upgrade_database, settings.database_url)


async def prune_forever(store: StatusStore, settings: NotifierSettings) -> None:
    """Delete expired idempotency records now and then every ``notifier_prune_interval_s``.

    A failed round (database away) is logged and tried again next round; it never stops the
    service, since the records only save work (the reducer is idempotent without them).
    """
    log = get_logger("avatarflow.notifier.retention")
    retention = timedelta(days=settings.notifier_applied_events_retention_days)
    while True:
        try:
            deleted = await store.prune_applied_events(utcnow() - retention)
            if deleted:
                log.info(
                    "applied_events_pruned",
                    deleted=deleted,
                    retention_days=settings.notifier_applied_events_retention_days,
                )
        except Exception as exc:  # any failure: retried next round
            log.warning("applied_events_prune_failed", error=type(exc).__name__)
        await asyncio.sleep(settings.notifier_prune_interval_s)


@dataclass
class Housekeeping:
    """Before the consumers start: migrations and the catalogue seed (when configured); while the
    service runs: the pruning of expired idempotency records."""

    settings: NotifierSettings
    store: StatusStore
    catalogue: Catalogue
    pruner: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        settings = self.settings
        await migrate_if_configured(settings)
        if settings.notifier_seed_catalogue:
            prefix = settings.notifier_catalogue_prefix
            await asyncio.to_thread(seed_catalogue, self.catalogue.s3, settings.s3_bucket, prefix=prefix)
        if settings.notifier_applied_events_retention_days > 0:
            self.pruner = asyncio.create_task(prune_forever(self.store, settings), name="prune-applied-events")

    async def stop(self) -> None:
        if self.pruner is not None:
            self.pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pruner
