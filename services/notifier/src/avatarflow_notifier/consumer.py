"""The notifier's messaging layer: six topics, one consumer group, ``handlers.apply_event`` for each.

Wired onto the notifier's FastAPI app (``app.py``) so one process serves the API and consumes the events.
Database errors are retried with backoff (the template's bounded retries); an event the notifier
cannot apply (``UnsupportedEvent``) goes to the dead-letter topic at once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from avatarflow_contracts import ConsumerGroup, Envelope
from avatarflow_runtime.logging import get_logger
from avatarflow_runtime.service import DOC_BOOTSTRAP, ServiceRuntime

from .handlers import NOTIFIER_TOPICS, apply_event
from .settings import NotifierSettings
from .store import StatusStore, utcnow

TITLE = "avatarflow notifier"
DESCRIPTION = "Keeps each space's avatar status and serves it to the space's editors (and nothing else to viewers)."


def build_runtime(settings: NotifierSettings, store: StatusStore | None) -> ServiceRuntime:
    runtime = ServiceRuntime.create(settings, with_storage=False)

    async def handle(event: Envelope) -> list[Envelope]:
        # Typed for any event: the template narrows it to each topic's model (and documents that one).
        assert store is not None
        await apply_event(store, event)
        return []

    consumer = runtime.consumer(ConsumerGroup.NOTIFIER)
    for topic in NOTIFIER_TOPICS:
        consumer.subscribe(topic, handle)
    return runtime


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


def asyncapi_document() -> dict:  # type: ignore[type-arg]
    runtime = build_runtime(NotifierSettings(kafka_bootstrap_servers=DOC_BOOTSTRAP), None)
    return runtime.asyncapi(TITLE, DESCRIPTION)
