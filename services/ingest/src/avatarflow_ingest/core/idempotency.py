"""Idempotency-Key on uploads: a client's retry of the same request gets the same upload.

Without it, a retry after a lost answer (a timeout, a 503 from a broker hiccup whose record was in
fact stored) becomes a second upload, and the first one may end ``failed``. With it, ingest keeps a
record per (space, editor, key) in S3 (``keys.idempotency_record_key``) that holds the
``image.uploaded`` event it built. A retry with the same file replays that event: published again
only if publishing was never confirmed (the event id is the same, so the stages deduplicate it),
and answered with the same ``upload_id``. The same key with a different file is a client bug: 422.

The record is written with a conditional put (``If-None-Match: *``), so of two concurrent requests
with one key exactly one creates the upload; the other discards its copy of the file and replays.
An upload without the header is keyed too, by the file's sha256 (``derived sha256 ...``, which no
client key can spell): a failed publish then never deletes the original (the broker may have stored
the event anyway), and the client's plain retry publishes that same event. A derived key binds only
until the broker confirms its event; after that the same file uploaded again is a new upload.

Records older than the window no longer bind the key (a bucket lifecycle rule on ``idempotency/``
deletes them; see docs/operations.md).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from avatarflow_contracts import ImageUploaded, PoisonEvent, decode_event, encode_event
from pydantic import BaseModel, ValidationError

# Printable ASCII without spaces, as the IETF draft's examples and Stripe-style clients send (UUIDs,
# random tokens); long enough for any of them, short enough to bound what we hash.
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyRecord(BaseModel):
    version: Literal[1] = 1
    request_sha256: str  # of the uploaded file: the same key with another file is refused
    created_at: datetime
    published: bool = False  # image.uploaded confirmed by the broker at least once
    publish_failed: bool = False  # a publish of it answered 503: its outcome is unknown, a retry may publish
    event: str  # the encoded image.uploaded event (contracts codec), replayed byte for byte

    @classmethod
    def for_event(cls, event: ImageUploaded, request_sha256: str, now: datetime) -> IdempotencyRecord:
        return cls(request_sha256=request_sha256, created_at=now, event=encode_event(event).decode())

    def image_uploaded(self) -> ImageUploaded:
        return decode_event(self.event.encode(), ImageUploaded)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> IdempotencyRecord | None:
        """None for a record this version cannot read (it then no longer binds the key)."""
        try:
            record = cls.model_validate_json(raw)
            record.image_uploaded()
        except (ValidationError, PoisonEvent):
            return None
        return record


class Decision(Enum):
    NEW = "new"  # no live record: make the upload
    REPLAY = "replay"  # same key, same file: answer with the recorded upload
    CONFLICT = "conflict"  # same key, another file: refuse


def confirm_may_republish(record: IdempotencyRecord, now: datetime, in_flight: timedelta) -> bool:
    """Whether a presigned confirm that finds this confirm record publishes its event again.

    Only when an earlier publish answered 503, or the confirm that created it has been silent longer
    than a publish can take (it crashed). Otherwise that confirm is still publishing, or it was
    published: a second confirm must not run the pipeline again (issue 19: each re-run re-renders)."""
    if record.published:
        return False
    return record.publish_failed or now - record.created_at >= in_flight


def decide(record: IdempotencyRecord | None, request_sha256: str, now: datetime, window: timedelta) -> Decision:
    if record is None or now - record.created_at >= window:
        return Decision.NEW
    return Decision.REPLAY if record.request_sha256 == request_sha256 else Decision.CONFLICT
