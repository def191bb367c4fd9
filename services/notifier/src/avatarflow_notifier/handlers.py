"""The entry point the Kafka consumer calls for every event on the notifier's topics.

``await apply_event(store, event)`` is idempotent: redelivered, duplicated or out-of-order events
never move a status backwards, and a change is published to this process's live streams after it
committed. It returns the :class:`StatusChange`, or None when the event changed nothing.

Raises :class:`UnsupportedEvent` (a ``PoisonEvent``: dead-letter it) for events the notifier cannot
apply, e.g. an upload id reused in another space. Database errors propagate: retry them.
"""

from __future__ import annotations

from avatarflow_contracts import (
    AvatarFailed,
    AvatarMatted,
    AvatarRendered,
    Envelope,
    FaceRejected,
    FaceValidated,
    ImageUploaded,
    PoisonEvent,
    Topic,
)

from .adapters.store import StatusChange, StatusStore
from .metrics import EVENTS_APPLIED

# The topics the notifier consumes (consumer group avatarflow-notifier).
NOTIFIER_TOPICS: tuple[Topic, ...] = (
    Topic.IMAGE_UPLOADED,
    Topic.FACE_VALIDATED,
    Topic.FACE_REJECTED,
    Topic.AVATAR_MATTED,
    Topic.AVATAR_RENDERED,
    Topic.AVATAR_FAILED,
)
HANDLED_EVENTS = (ImageUploaded, FaceValidated, FaceRejected, AvatarMatted, AvatarRendered, AvatarFailed)


class UnsupportedEvent(PoisonEvent):
    """The event can never be applied (wrong type, or it contradicts what is stored)."""


async def apply_event(store: StatusStore, event: Envelope) -> StatusChange | None:
    if not isinstance(event, HANDLED_EVENTS):
        EVENTS_APPLIED.labels(event_type=event.event_type, outcome="unsupported").inc()
        raise UnsupportedEvent(f"the notifier does not handle {event.event_type}")
    try:
        change = await store.apply(event)
    except ValueError as exc:
        EVENTS_APPLIED.labels(event_type=event.event_type, outcome="rejected").inc()
        raise UnsupportedEvent(str(exc)) from exc
    EVENTS_APPLIED.labels(event_type=event.event_type, outcome="changed" if change else "unchanged").inc()
    return change
