"""The Idempotency-Key rules (pure): which request replays, which conflicts, what a record holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from avatarflow_contracts import ImageUploaded, ObjectRef
from avatarflow_ingest.core.idempotency import KEY_PATTERN, Decision, IdempotencyRecord, confirm_may_republish, decide
from avatarflow_runtime.keys import idempotency_record_key

WINDOW = timedelta(hours=24)


def event() -> ImageUploaded:
    upload_id = uuid.uuid4()
    original = ObjectRef(
        bucket="avatarflow", key=f"originals/{upload_id}/x.jpg", size=3, sha256="a" * 64, content_type="image/jpeg"
    )
    return ImageUploaded(
        upload_id=upload_id,
        space_id="s",
        editor_id="e",
        original=original,
        source="ingest",
        event_id=uuid.uuid5(upload_id, "image.uploaded"),
    )


def test_decisions_follow_the_key_the_file_and_the_window() -> None:
    now = datetime.now(UTC)
    record = IdempotencyRecord.for_event(event(), "f" * 64, now)
    assert decide(None, "f" * 64, now, WINDOW) is Decision.NEW
    assert decide(record, "f" * 64, now + timedelta(hours=23), WINDOW) is Decision.REPLAY
    assert decide(record, "0" * 64, now, WINDOW) is Decision.CONFLICT
    # Past the window the key is free again, for any file.
    assert decide(record, "0" * 64, now + WINDOW, WINDOW) is Decision.NEW


def test_a_record_replays_its_event_byte_for_byte() -> None:
    original = event()
    record = IdempotencyRecord.for_event(original, "f" * 64, datetime.now(UTC))
    loaded = IdempotencyRecord.from_bytes(record.to_bytes())
    assert loaded is not None and not loaded.published
    assert loaded.image_uploaded() == original


def test_unreadable_records_do_not_bind_the_key() -> None:
    assert IdempotencyRecord.from_bytes(b"not json") is None
    assert IdempotencyRecord.from_bytes(b'{"version": 2}') is None
    broken = IdempotencyRecord.for_event(event(), "f" * 64, datetime.now(UTC)).model_copy(update={"event": '{"x": 1}'})
    assert IdempotencyRecord.from_bytes(broken.to_bytes()) is None


def test_record_keys_hide_who_and_which_key_and_never_collide_across_editors() -> None:
    key = idempotency_record_key("space-1", "alice@example.com", "k-1")
    assert key.startswith("idempotency/") and "alice" not in key and "k-1" not in key
    assert key == idempotency_record_key("space-1", "alice@example.com", "k-1")
    assert key != idempotency_record_key("space-1", "bob", "k-1")
    assert key != idempotency_record_key("space-2", "alice@example.com", "k-1")


def test_key_syntax() -> None:
    assert KEY_PATTERN.fullmatch(str(uuid.uuid4()))
    for bad in ("", "has space", "tab\t", "é", "x" * 256, "line\nbreak"):
        assert not KEY_PATTERN.fullmatch(bad), bad


def test_a_confirm_record_is_published_again_only_when_its_outcome_is_unknown() -> None:
    now = datetime.now(UTC)
    in_flight = timedelta(seconds=40)
    record = IdempotencyRecord.for_event(event(), "f" * 64, now)
    # Another confirm created it moments ago and is publishing: a second confirm must not.
    assert not confirm_may_republish(record, now + timedelta(seconds=1), in_flight)
    # That publish answered 503: the retry publishes the same event.
    assert confirm_may_republish(record.model_copy(update={"publish_failed": True}), now, in_flight)
    # The confirm that created it died mid-publish: after the bound a retry publishes.
    assert confirm_may_republish(record, now + in_flight, in_flight)
    # Published: never again, however old or marked.
    done = record.model_copy(update={"published": True, "publish_failed": True})
    assert not confirm_may_republish(done, now + timedelta(days=1), in_flight)
    # Records written before publish_failed existed still load.
    legacy = record.to_bytes().replace(b',"publish_failed":false', b"")
    assert b"publish_failed" not in legacy
    loaded = IdempotencyRecord.from_bytes(legacy)
    assert loaded is not None and not loaded.publish_failed
