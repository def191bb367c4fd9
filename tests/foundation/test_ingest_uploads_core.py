"""UploadService without HTTP: the upload rules against an in-memory store and bus (the HTTP and
real-infrastructure side is tests/foundation/test_ingest_integration.py)."""

from __future__ import annotations

import io
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from avatarflow_contracts import Envelope, ImageUploaded, ObjectRef
from avatarflow_imaging.admission import Refusal
from avatarflow_ingest.core.outcomes import Accepted, RateLimited, Unavailable
from avatarflow_ingest.settings import IngestSettings
from avatarflow_ingest.uploads import UploadService
from avatarflow_runtime.auth import AuthError, Principal
from avatarflow_runtime.errors import PermanentError, TransientError
from avatarflow_runtime.storage import sha256_hex
from PIL import Image
from pydantic import SecretStr

SECRET = secrets.token_urlsafe(32)
ALICE = Principal(subject="alice", space_id="space-a", role="editor")
BOB = Principal(subject="bob", space_id="space-a", role="editor")


def png(size: int = 80, colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


class FakeStore:
    """Objects in a dict, with S3's conditional create, size-limited reads and outages."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.down = False

    async def read_untrusted(self, key: str, *, max_bytes: int) -> bytes:
        if self.down:
            raise TransientError("S3 unreachable")
        if key not in self.objects:
            raise PermanentError("object_missing", f"{key}: object not found")
        if len(self.objects[key]) > max_bytes:
            raise PermanentError("object_too_large", f"{key} is over {max_bytes} bytes")
        return self.objects[key]

    async def put_bytes(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> ObjectRef:
        if self.down:
            raise TransientError("S3 unreachable")
        if if_absent and key in self.objects:
            raise PermanentError("object_exists", f"{key}: object already exists")
        self.objects[key] = data
        return ObjectRef(
            bucket="avatarflow", key=key, size=len(data), sha256=sha256_hex(data), content_type=content_type
        )

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def presign_put(self, key: str, content_type: str, expires_s: int) -> str:
        return f"http://s3.test/avatarflow/{key}?expires={expires_s}"

    def originals(self) -> list[str]:
        return sorted(k for k in self.objects if k.startswith("originals/"))


class FakeBus:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.failures = 0  # the next this-many publishes raise (a broker that did not answer)

    async def publish(self, event: Envelope, *, attempts: int | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker did not answer")
        self.published.append(event)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def parts() -> tuple[UploadService, FakeStore, FakeBus, Clock]:
    store, bus, clock = FakeStore(), FakeBus(), Clock()
    settings = IngestSettings(jwt_secret=SecretStr(SECRET), ingest_rate_limit_per_minute=1000)
    return UploadService(store, bus, clock, settings), store, bus, clock


def reader(data: bytes) -> Callable[[int], Awaitable[bytes]]:
    async def read(limit: int) -> bytes:
        return data[:limit]

    return read


async def test_an_upload_stores_the_original_and_publishes_its_event_once(parts) -> None:
    service, store, bus, _ = parts
    image = png()
    accepted = await service.upload("space-a", ALICE, reader(image), "key-1")
    event = accepted.event
    assert isinstance(event, ImageUploaded) and not accepted.replayed
    assert (event.space_id, event.editor_id, event.source) == ("space-a", "alice", "ingest")
    assert store.objects[event.original.key] == image and event.original.sha256 == sha256_hex(image)
    assert bus.published == [event] and event.event_id == uuid.uuid5(event.upload_id, "image.uploaded")


async def test_a_retry_with_the_same_key_and_file_replays_without_publishing_again(parts) -> None:
    service, store, bus, _ = parts
    first = await service.upload("space-a", ALICE, reader(png()), "key-1")
    again = await service.upload("space-a", ALICE, reader(png()), "key-1")
    assert again == Accepted(first.event, replayed=True)
    assert len(bus.published) == 1 and len(store.originals()) == 1


async def test_the_same_key_with_another_file_is_refused(parts) -> None:
    service, store, _, _ = parts
    await service.upload("space-a", ALICE, reader(png()), "key-1")
    with pytest.raises(Refusal) as refused:
        await service.upload("space-a", ALICE, reader(png(colour=(1, 2, 3))), "key-1")
    assert (refused.value.status_code, refused.value.code) == (422, "idempotency_key_reused")
    assert len(store.originals()) == 1  # the refused file was never stored


async def test_a_key_binds_only_within_its_window(parts) -> None:
    service, _, bus, clock = parts
    first = await service.upload("space-a", ALICE, reader(png()), "key-1")
    clock.now += timedelta(seconds=service.settings.ingest_idempotency_window_s + 1)
    later = await service.upload("space-a", ALICE, reader(png()), "key-1")
    assert later.event.upload_id != first.event.upload_id and not later.replayed
    assert len(bus.published) == 2


async def test_a_failed_publish_keeps_the_original_and_the_plain_retry_publishes_the_same_event(parts) -> None:
    service, store, bus, _ = parts
    bus.failures = 1
    with pytest.raises(Unavailable, match="busy"):
        await service.upload("space-a", ALICE, reader(png()), None)
    kept = store.originals()
    assert len(kept) == 1 and bus.published == []  # the broker may hold the event: never delete the original
    retried = await service.upload("space-a", ALICE, reader(png()), None)
    # A derived key announces no replay: the client sent no key.
    assert not retried.replayed and [e.event_id for e in bus.published] == [retried.event.event_id]
    assert store.originals() == kept and retried.event.original.key == kept[0]


async def test_without_a_key_the_same_file_after_a_confirmed_publish_is_a_new_upload(parts) -> None:
    service, _, bus, _ = parts
    first = await service.upload("space-a", ALICE, reader(png()), None)
    second = await service.upload("space-a", ALICE, reader(png()), None)
    assert second.event.upload_id != first.event.upload_id
    assert [e.upload_id for e in bus.published] == [first.event.upload_id, second.event.upload_id]


async def test_an_invalid_key_and_the_rate_limit_refuse_before_the_file_is_read(parts) -> None:
    service, _, _, _ = parts
    reads: list[int] = []

    async def read(limit: int) -> bytes:
        reads.append(limit)
        return png()

    with pytest.raises(Refusal) as refused:
        await service.upload("space-a", ALICE, read, "has space")
    assert (refused.value.status_code, refused.value.code) == (400, "invalid_idempotency_key")
    limited = UploadService(
        FakeStore(), FakeBus(), Clock(), IngestSettings(jwt_secret=SecretStr(SECRET), ingest_rate_limit_per_minute=1)
    )
    await limited.upload("space-a", ALICE, read, None)
    with pytest.raises(RateLimited) as slowed:
        await limited.upload("space-a", ALICE, read, None)
    assert 0 < slowed.value.retry_after_s <= 60
    # Read once (the allowed upload), at most one byte past the limit.
    assert reads == [limited.settings.ingest_max_upload_bytes + 1]


async def test_what_admission_refuses_is_never_stored(parts) -> None:
    service, store, bus, _ = parts
    for data, status in ((b"", 400), (b"%PDF-1.7 not an image", 415)):
        with pytest.raises(Refusal) as refused:
            await service.upload("space-a", ALICE, reader(data), None)
        assert refused.value.status_code == status
    assert store.objects == {} and bus.published == []


async def test_storage_down_is_unavailable(parts) -> None:
    service, store, bus, _ = parts
    store.down = True
    with pytest.raises(Unavailable, match="Storage is unavailable"):
        await service.upload("space-a", ALICE, reader(png()), "key-1")
    assert bus.published == []


# ---- the presigned flow ------------------------------------------------------------------------


def staged_key(ticket: str) -> str:
    return str(jwt.decode(ticket, SECRET, algorithms=["HS256"])["key"])


async def test_presign_then_confirm_publishes_a_checked_copy_once(parts) -> None:
    service, store, bus, _ = parts
    grant = service.presign("space-a", ALICE, "image/heic", 5000)
    claims = jwt.decode(grant.upload_ticket, SECRET, algorithms=["HS256"])
    assert claims["content_type"] == "image/heif" and claims["sub"] == "alice"
    assert grant.put_url.startswith(f"http://s3.test/avatarflow/{claims['key']}")
    image = png()
    store.objects[claims["key"]] = image  # the client's PUT
    accepted = await service.confirm("space-a", grant.upload_id, ALICE, grant.upload_ticket)
    event = accepted.event
    assert (event.upload_id, event.source, accepted.replayed) == (grant.upload_id, "presigned", False)
    # What the pipeline reads is a copy the PUT URL cannot overwrite; the grant's object is gone.
    assert event.original.key != claims["key"] and claims["key"] not in store.objects
    assert store.objects[event.original.key] == image and bus.published == [event]
    with pytest.raises(Refusal) as again:
        await service.confirm("space-a", grant.upload_id, ALICE, grant.upload_ticket)
    assert (again.value.status_code, again.value.code) == (409, "upload_already_confirmed")
    assert len(bus.published) == 1


async def test_a_confirm_whose_publish_failed_is_published_again_with_the_same_event(parts) -> None:
    service, store, bus, _ = parts
    grant = service.presign("space-a", ALICE, "image/png", 5000)
    store.objects[staged_key(grant.upload_ticket)] = png()
    bus.failures = 1
    with pytest.raises(Unavailable):
        await service.confirm("space-a", grant.upload_id, ALICE, grant.upload_ticket)
    retried = await service.confirm("space-a", grant.upload_id, ALICE, grant.upload_ticket)
    assert retried.replayed and bus.published == [retried.event]
    assert retried.event.event_id == uuid.uuid5(grant.upload_id, "image.uploaded")


async def test_a_ticket_only_confirms_its_own_upload_for_its_own_editor(parts) -> None:
    service, store, _, _ = parts
    grant = service.presign("space-a", ALICE, "image/png", 5000)
    store.objects[staged_key(grant.upload_ticket)] = png()
    for space, upload_id, principal, ticket in (
        ("space-a", grant.upload_id, BOB, grant.upload_ticket),
        ("space-b", grant.upload_id, ALICE, grant.upload_ticket),
        ("space-a", uuid.uuid4(), ALICE, grant.upload_ticket),
        ("space-a", grant.upload_id, ALICE, grant.upload_ticket + "x"),
    ):
        with pytest.raises(AuthError):
            await service.confirm(space, upload_id, principal, ticket)
    assert staged_key(grant.upload_ticket) in store.objects  # nothing was touched


async def test_a_confirm_refuses_a_missing_oversized_or_foreign_file(parts) -> None:
    service, store, bus, _ = parts
    missing = service.presign("space-a", ALICE, "image/png", 5000)
    with pytest.raises(Refusal) as refused:
        await service.confirm("space-a", missing.upload_id, ALICE, missing.upload_ticket)
    assert refused.value.status_code == 404
    limit = service.settings.ingest_max_upload_bytes
    for data, status in ((b"\x89PNG" + b"0" * limit, 413), (b"%PDF-1.7 not an image", 415)):
        grant = service.presign("space-a", ALICE, "image/png", 5000)
        store.objects[staged_key(grant.upload_ticket)] = data
        with pytest.raises(Refusal) as refused:
            await service.confirm("space-a", grant.upload_id, ALICE, grant.upload_ticket)
        assert refused.value.status_code == status
        assert staged_key(grant.upload_ticket) not in store.objects  # a refused direct upload is discarded
    assert store.originals() == [] and bus.published == []


def test_presign_refuses_a_file_over_the_limit(parts) -> None:
    service, _, _, _ = parts
    with pytest.raises(Refusal) as refused:
        service.presign("space-a", ALICE, "image/png", service.settings.ingest_max_upload_bytes + 1)
    assert (refused.value.status_code, refused.value.code) == (413, "file_too_large")
