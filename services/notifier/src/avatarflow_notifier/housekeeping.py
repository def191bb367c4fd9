"""The notifier's start and stop work besides the broker: migrations and the catalogue seed (when
configured) before the consumers start, and the pruning of expired idempotency records while it runs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from .catalogue import Catalogue, seed_catalogue
from .consumer import prune_forever
from .settings import NotifierSettings
from .store import StatusStore


async def migrate_if_configured(settings: NotifierSettings) -> None:
    if settings.notifier_migrate_on_start:
        from .migrate import upgrade_database

        await asyncio.to_thread(upgrade_database, settings.database_url)


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
