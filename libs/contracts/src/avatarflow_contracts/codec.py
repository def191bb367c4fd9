"""Parse and serialise events with the versioning rule enforced.

Consumers call :func:`decode_event`; it raises :class:`PoisonEvent` subclasses for anything that
must go to the dead-letter topic instead of being processed.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .events import EVENT_MODELS, SCHEMA_MAJOR, Envelope, EventT
from .topics import Topic

# Far above any legitimate event (face.validated with 478 landmarks is ~30 KB).
MAX_EVENT_BYTES = 512 * 1024


class PoisonEvent(Exception):
    """The record can never be processed as it is; it belongs on the dead-letter topic."""


class MalformedEvent(PoisonEvent):
    pass


class UnknownSchemaVersion(PoisonEvent):
    pass


class EventTooLarge(PoisonEvent):
    pass


def encode_event(event: Envelope) -> bytes:
    return event.model_dump_json().encode()


def decode_event(raw: bytes, model: type[EventT]) -> EventT:
    """Bytes -> validated event of ``model``; raises a PoisonEvent subclass on bad input."""
    if len(raw) > MAX_EVENT_BYTES:
        raise EventTooLarge(f"event is {len(raw)} bytes, limit {MAX_EVENT_BYTES}")
    try:
        payload: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:  # e.g. 100 KB of "[": deeper than the parser goes, never an event
        raise MalformedEvent("JSON nested too deeply") from exc
    if not isinstance(payload, dict):
        raise MalformedEvent("event must be a JSON object")
    version = payload.get("schema_version")
    if not isinstance(version, str) or not version.split(".", 1)[0].isdigit():
        raise MalformedEvent("schema_version missing or not MAJOR.MINOR")
    major = int(version.split(".", 1)[0])
    if major != SCHEMA_MAJOR:
        raise UnknownSchemaVersion(
            f"schema_version {version} has major {major}; this consumer understands {SCHEMA_MAJOR}.x"
        )
    expected_type = model.model_fields["event_type"].default
    if payload.get("event_type") != expected_type:
        raise MalformedEvent(f"event_type {payload.get('event_type')!r} is not {expected_type!r}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise MalformedEvent(f"invalid {expected_type}: {exc.error_count()} error(s): {exc}") from exc


def decode_any(raw: bytes, topic: Topic | str) -> Envelope:
    """Decode a record from any event topic into its model."""
    return decode_event(raw, EVENT_MODELS[Topic(topic)])
