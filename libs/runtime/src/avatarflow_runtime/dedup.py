"""Redelivery without recomputation: a stage records its output events and re-publishes them.

Stages are deterministic, so a redelivered input (a crash before the commit, a rebalance, a replay)
would produce the same outputs again, at the cost of a whole cut-out or render. Instead, once a
stage has stored its output objects it records the output events under
``avatars/{upload_id}/outputs/{stage}.json`` (:func:`record_outputs`). Before working, the stage calls
:func:`recorded_outputs`: when the record exists (``head_ref``), was written for this very input
event, and every object its events reference still exists with the recorded size and sha256
(``head_ref`` again), the stage re-publishes those events (same ids, same bytes) and skips the work.
Anything else (no record, another input, a missing or changed object, an unreadable record) means
the work is done again, so the shortcut can never publish a reference to a missing object.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from avatarflow_contracts import Envelope, ObjectRef, PoisonEvent, decode_any
from prometheus_client import Counter
from pydantic import BaseModel

from .errors import PermanentError
from .keys import outputs_key
from .logging import get_logger
from .storage import ObjectStore

log = get_logger("avatarflow.dedup")
REUSED = Counter(
    "avatarflow_outputs_reused_total", "Redelivered inputs answered with recorded outputs (work skipped)", ["stage"]
)


def _refs(model: BaseModel) -> list[ObjectRef]:
    found: list[ObjectRef] = []
    for name in type(model).model_fields:
        value: Any = getattr(model, name)
        if isinstance(value, ObjectRef):
            found.append(value)
        elif isinstance(value, BaseModel):
            found.extend(_refs(value))
    return found


async def recorded_outputs(store: ObjectStore, event: Envelope, stage: str) -> list[Envelope] | None:
    """The outputs recorded for ``event`` by ``stage``, if they and every object they name still exist."""
    key = outputs_key(event.upload_id, stage)
    ref = await store.head_ref(key)
    if ref is None:
        return None
    try:
        record = json.loads(await store.get_bytes(ref, max_bytes=1024 * 1024))
        if uuid.UUID(record["input_event_id"]) != event.event_id:
            return None
        outputs = [decode_any(json.dumps(item["event"]).encode(), item["topic"]) for item in record["outputs"]]
    except (PermanentError, PoisonEvent, ValueError, KeyError, TypeError) as exc:
        log.warning("outputs_record_unusable", key=key, error=f"{type(exc).__name__}: {exc}"[:300])
        return None
    for output in outputs:
        for object_ref in _refs(output):
            current = await store.head_ref(object_ref.key)
            if current is None or (current.sha256, current.size) != (object_ref.sha256, object_ref.size):
                return None
    REUSED.labels(stage).inc()
    log.info("outputs_reused", stage=stage, upload_id=str(event.upload_id), outputs=[o.event_type for o in outputs])
    return outputs


async def record_outputs(store: ObjectStore, event: Envelope, stage: str, outputs: list[Envelope]) -> None:
    """Record ``outputs`` (after their objects are stored, before they are published)."""
    record = {
        "input_event_id": str(event.event_id),
        "outputs": [{"topic": o.TOPIC.value, "event": json.loads(o.model_dump_json())} for o in outputs],
    }
    await store.put_bytes(outputs_key(event.upload_id, stage), json.dumps(record).encode(), "application/json")
