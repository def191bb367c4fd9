"""The notifier's messaging layer: six topics, one consumer group, ``handlers.apply_event`` for each.

Wired onto the notifier's FastAPI app (``app.py``) so one process serves the API and consumes the events
(the pruning of expired idempotency records is in ``housekeeping.py``).
Database errors are retried with backoff (the template's bounded retries); an event the notifier
cannot apply (``UnsupportedEvent``) goes to the dead-letter topic at once.
"""

from __future__ import annotations

from typing import Any

from avatarflow_contracts import ConsumerGroup, Envelope
from avatarflow_runtime.service import DOC_BOOTSTRAP, ServiceRuntime

from .adapters.store import StatusStore
from .handlers import NOTIFIER_TOPICS, apply_event
from .settings import NotifierSettings

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


def asyncapi_document() -> dict[str, Any]:
    runtime = build_runtime(NotifierSettings(kafka_bootstrap_servers=DOC_BOOTSTRAP), None)
    return runtime.asyncapi(TITLE, DESCRIPTION)
