"""Upload over HTTP -> object in real S3 with matching sha256 -> image.uploaded on the real broker."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest
from avatarflow_contracts import ImageUploaded, Topic, decode_event
from avatarflow_runtime.auth import mint_token
from avatarflow_runtime.keys import idempotency_record_key
from avatarflow_runtime.tracing import parse_traceparent

from avatarflow.devstack import DevStack, StackEndpoints
from avatarflow.devstack.processes import ServiceProcess
from avatarflow.devstack.topics import read_topic

pytestmark = pytest.mark.integration
# The key these tests' services verify with (services refuse to start without a strong one).
SECRET = secrets.token_urlsafe(32)


def token(space: str, role: str = "editor", sub: str = "editor-1") -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(SECRET, subject=sub, space_id=space, role=role)}"}  # type: ignore[arg-type]


def env_for(endpoints: StackEndpoints) -> dict[str, str]:
    return {**endpoints.service_env(), "AVATARFLOW_JWT_SECRET": SECRET}


@pytest.fixture(scope="module")
def ingest(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = {**env_for(stack), "AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE": "1000"}
    proc = ServiceProcess("ingest", env, tmp_path_factory.mktemp("ingest") / "ingest.log").start()
    yield proc
    proc.stop()


def s3(stack: StackEndpoints):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name="us-east-1",
    )


def find_event(stack: StackEndpoints, upload_id: str) -> tuple[ImageUploaded, dict[str, bytes], bytes | None]:
    def has_it(records: list) -> bool:  # type: ignore[type-arg]
        return any(upload_id.encode() in r.value for r in records)

    records = asyncio.run(read_topic(stack.kafka_bootstrap, Topic.IMAGE_UPLOADED.value, until=has_it, timeout_s=30))
    for record in records:
        if upload_id.encode() in record.value:
            return decode_event(record.value, ImageUploaded), record.headers, record.key
    raise AssertionError(f"no image.uploaded event for {upload_id}")


def test_upload_stores_object_and_publishes_event(
    stack: StackEndpoints, ingest: ServiceProcess, shared_dir: Path
) -> None:
    image = (shared_dir / "avatar-images" / "accept_photo__man-suit-plain-bg.jpg").read_bytes()
    response = httpx.post(
        f"{ingest.base_url}/v1/spaces/space-a/uploads",
        headers=token("space-a"),
        files={"file": ("../../etc/passwd.jpg", image, "image/jpeg")},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    event, headers, key = find_event(stack, body["upload_id"])

    assert event.space_id == "space-a" and event.editor_id == "editor-1" and event.source == "ingest"
    assert key == b"space-a"  # partition key keeps one space's events in order
    assert parse_traceparent(headers["traceparent"]) == event.trace_id
    assert event.original.sha256 == hashlib.sha256(image).hexdigest() == body["sha256"]
    assert "passwd" not in event.original.key and event.original.key.startswith(f"originals/{event.upload_id}/")
    stored = s3(stack).get_object(Bucket=event.original.bucket, Key=event.original.key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == event.original.sha256
    assert event.original.content_type == "image/jpeg"


def test_bad_inputs_get_clear_answers_at_ingest(ingest: ServiceProcess, shared_dir: Path) -> None:
    bad = shared_dir / "bad-inputs"
    with (bad / "expected.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for row in rows:
        data = (bad / row["file"]).read_bytes()
        response = httpx.post(
            f"{ingest.base_url}/v1/spaces/space-b/uploads",
            headers=token("space-b"),
            files={"file": (row["file"], data, "application/octet-stream")},
            timeout=60,
        )
        assert response.status_code < 500, (row["file"], response.text)
        if row["ingest"] == "4xx":
            assert 400 <= response.status_code < 500, (row["file"], response.status_code)
            detail = response.json()
            assert detail["error"] and len(detail["detail"]) > 10, row["file"]
        elif row["ingest"] == "accept":
            assert response.status_code == 202, (row["file"], response.text)
        else:
            assert response.status_code in (202, 413, 415, 422), (row["file"], response.status_code)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer not-a-jwt"}, 401),
        ("other-space", 403),
        ("viewer", 403),
    ],
)
def test_upload_requires_editor_of_the_space(ingest: ServiceProcess, headers: object, status: int) -> None:
    if headers == "other-space":
        headers = token("space-z")
    elif headers == "viewer":
        headers = token("space-a", role="viewer")
    response = httpx.post(
        f"{ingest.base_url}/v1/spaces/space-a/uploads",
        headers=headers,  # type: ignore[arg-type]
        files={"file": ("x.jpg", b"\xff\xd8\xff", "image/jpeg")},
    )
    assert response.status_code == status


def test_presigned_upload_flow(stack: StackEndpoints, ingest: ServiceProcess, shared_dir: Path) -> None:
    image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    start = httpx.post(
        f"{ingest.base_url}/v1/spaces/space-p/uploads/presigned",
        headers=token("space-p"),
        json={"content_type": "image/jpeg", "size": len(image)},
    )
    assert start.status_code == 200, start.text
    grant = start.json()
    assert "X-Amz-Expires" in grant["put_url"] or "Expires" in grant["put_url"]
    put = httpx.put(grant["put_url"], content=image, headers={"content-type": "image/jpeg"})
    assert put.status_code == 200, put.text
    confirm = httpx.post(
        f"{ingest.base_url}{grant['confirm_url']}",
        headers=token("space-p"),
        json={"upload_ticket": grant["upload_ticket"]},
    )
    assert confirm.status_code == 202, confirm.text
    event, _, _ = find_event(stack, grant["upload_id"])
    assert event.source == "presigned" and event.original.sha256 == hashlib.sha256(image).hexdigest()
    # A ticket for one space cannot confirm into another.
    other = httpx.post(
        f"{ingest.base_url}/v1/spaces/space-q/uploads/{grant['upload_id']}/confirm",
        headers=token("space-q"),
        json={"upload_ticket": grant["upload_ticket"]},
    )
    assert other.status_code == 401


def presign_and_put(base_url: str, space: str, body: bytes, declared_size: int) -> dict:
    start = httpx.post(
        f"{base_url}/v1/spaces/{space}/uploads/presigned",
        headers=token(space),
        json={"content_type": "image/jpeg", "size": declared_size},
    )
    assert start.status_code == 200, start.text
    grant = start.json()
    if body:
        put = httpx.put(grant["put_url"], content=body, headers={"content-type": "image/jpeg"})
        assert put.status_code == 200, put.text
    return grant


def confirm(base_url: str, space: str, grant: dict) -> httpx.Response:
    return httpx.post(
        f"{base_url}{grant['confirm_url']}",
        headers=token(space),
        json={"upload_ticket": grant["upload_ticket"]},
        timeout=120,
    )


def test_a_grant_is_single_use_and_a_later_put_changes_nothing(
    stack: StackEndpoints, ingest: ServiceProcess, shared_dir: Path
) -> None:
    """Issue 19 item 1: after confirm, a second PUT of another image to the still-valid URL plus a second
    confirm must neither start another run nor change the bytes the pipeline reads."""
    images = shared_dir / "avatar-images"
    first = (images / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    second = (images / "accept_photo__man-suit-plain-bg.jpg").read_bytes()
    grant = presign_and_put(ingest.base_url, "space-once", first, declared_size=len(first))
    assert confirm(ingest.base_url, "space-once", grant).status_code == 202
    put = httpx.put(grant["put_url"], content=second, headers={"content-type": "image/jpeg"})
    assert put.status_code == 200, put.text  # the URL lives until it expires; the ticket does not
    again = confirm(ingest.base_url, "space-once", grant)
    assert again.status_code == 409 and again.json()["error"] == "upload_already_confirmed", again.text
    events = events_for(stack, grant["upload_id"])
    assert len(events) == 1, events
    original = events[0].original
    stored = s3(stack).get_object(Bucket=original.bucket, Key=original.key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == original.sha256 == hashlib.sha256(first).hexdigest()


def test_concurrent_confirms_of_one_ticket_publish_one_event(
    stack: StackEndpoints, ingest: ServiceProcess, shared_dir: Path
) -> None:
    """Issue 19 item 2: 35 confirms of one ticket gave 35 x 202 and 38 pipeline runs."""
    image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    grant = presign_and_put(ingest.base_url, "space-many", image, declared_size=len(image))
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(pool.map(lambda _: confirm(ingest.base_url, "space-many", grant).status_code, range(8)))
    assert codes == [202] + [409] * 7, codes
    assert len(events_for(stack, grant["upload_id"])) == 1


def test_confirm_counts_against_the_editors_rate_limit(stack: StackEndpoints, shared_dir: Path, tmp_path: Path) -> None:
    env = {**env_for(stack), "AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE": "2"}
    proc = ServiceProcess("ingest", env, tmp_path / "ingest.log").start()
    try:
        image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
        grant = presign_and_put(proc.base_url, "space-rl", image, declared_size=len(image))  # 1 of 2
        assert confirm(proc.base_url, "space-rl", grant).status_code == 202  # 2 of 2
        limited = confirm(proc.base_url, "space-rl", grant)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    finally:
        proc.stop()


def test_confirm_without_the_file_answers_404(stack: StackEndpoints, ingest: ServiceProcess) -> None:
    grant = presign_and_put(ingest.base_url, "space-m", b"", declared_size=50_000)
    response = confirm(ingest.base_url, "space-m", grant)
    assert response.status_code == 404 and response.json()["error"] == "object_missing"


def test_confirm_of_a_file_larger_than_declared_and_allowed_answers_413(
    stack: StackEndpoints, shared_dir: Path, tmp_path: Path
) -> None:
    # The presigned PUT does not bind the size: the confirm step is where the cap is enforced.
    limit = 16 * 1024
    env = {**env_for(stack), "AVATARFLOW_INGEST_MAX_UPLOAD_BYTES": str(limit)}
    proc = ServiceProcess("ingest", env, tmp_path / "ingest.log").start()
    try:
        image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
        assert len(image) > limit
        grant = presign_and_put(proc.base_url, "space-big", image, declared_size=limit)
        response = confirm(proc.base_url, "space-big", grant)
        assert response.status_code == 413 and response.json()["error"] == "object_too_large"
        # The refused file is not kept: its key belongs to this upload ticket alone.
        listed = s3(stack).list_objects_v2(Bucket=stack.bucket, Prefix=f"originals/{grant['upload_id']}")
        assert listed.get("KeyCount", 0) == 0
    finally:
        proc.stop()


def test_rate_limit_answers_429(stack: StackEndpoints, tmp_path: Path) -> None:
    env = {**env_for(stack), "AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE": "2"}
    proc = ServiceProcess("ingest", env, tmp_path / "ingest.log").start()
    try:
        codes = [
            httpx.post(
                f"{proc.base_url}/v1/spaces/space-r/uploads",
                headers=token("space-r", sub="busy-editor"),
                files={"file": ("x.txt", b"hello", "text/plain")},
            ).status_code
            for _ in range(3)
        ]
        assert codes[:2] == [415, 415] and codes[2] == 429
    finally:
        proc.stop()


def post_keyed(base_url: str, space: str, data: bytes, key: str, sub: str = "editor-1") -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/spaces/{space}/uploads",
        headers={**token(space, sub=sub), "Idempotency-Key": key},
        files={"file": ("a.jpg", data, "image/jpeg")},
        timeout=60,
    )


def events_for(stack: StackEndpoints, upload_id: str) -> list[ImageUploaded]:
    records = asyncio.run(read_topic(stack.kafka_bootstrap, Topic.IMAGE_UPLOADED.value, timeout_s=30))
    return [decode_event(r.value, ImageUploaded) for r in records if upload_id.encode() in r.value]


def originals(stack: StackEndpoints, prefix: str = "originals/") -> set[str]:
    pages = s3(stack).get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def test_retry_with_the_same_idempotency_key_gets_the_same_upload(
    stack: StackEndpoints, ingest: ServiceProcess, shared_dir: Path
) -> None:
    image = (shared_dir / "avatar-images" / "accept_photo__man-suit-plain-bg.jpg").read_bytes()
    first = post_keyed(ingest.base_url, "space-i", image, "retry-key-1")
    again = post_keyed(ingest.base_url, "space-i", image, "retry-key-1")
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert again.json() == first.json()
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    upload_id = first.json()["upload_id"]
    # The first request's publish was confirmed, so the retry publishes nothing: one event, one file.
    assert len(events_for(stack, upload_id)) == 1
    assert len(originals(stack, f"originals/{upload_id}/")) == 1

    other_file = post_keyed(ingest.base_url, "space-i", image + b"\0", "retry-key-1")
    assert other_file.status_code == 422 and other_file.json()["error"] == "idempotency_key_reused"
    # Keys belong to one editor in one space: another editor's identical key is a new upload.
    other_editor = post_keyed(ingest.base_url, "space-i", image, "retry-key-1", sub="editor-2")
    assert other_editor.status_code == 202 and other_editor.json()["upload_id"] != upload_id
    assert post_keyed(ingest.base_url, "space-i", image, "has space").status_code == 400


def test_concurrent_requests_with_one_idempotency_key_make_one_upload(
    stack: StackEndpoints, ingest: ServiceProcess, shared_dir: Path
) -> None:
    image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    before = originals(stack)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post_keyed(ingest.base_url, "space-c", image, "race-key"), range(4)))
    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    upload_ids = {a.json()["upload_id"] for a in answers}
    assert len(upload_ids) == 1
    # The requests that lost the race deleted their copies: exactly one new original, and it is the
    # one the event names.
    new = originals(stack) - before
    events = events_for(stack, upload_ids.pop())
    # A loser that replays before the winner's publish is confirmed publishes too: the same event
    # (one event id), which the stages deduplicate.
    assert events and len({e.model_dump_json() for e in events}) == 1
    assert new == {events[0].original.key}


def post_plain(base_url: str, space: str, data: bytes, timeout: float = 120) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/spaces/{space}/uploads",
        headers=token(space),
        files={"file": ("a.jpg", data, "image/jpeg")},
        timeout=timeout,
    )


def test_publish_failure_keeps_every_original_and_a_retry_resumes(shared_dir: Path, tmp_path: Path) -> None:
    """Broker down after the file is stored: both requests get 503 and both keep their file and record
    (the broker may have stored the event: issue 19 item 4). A retry after the broker is back, with the
    client's key or with none (the key is then derived from the file), publishes that same upload
    (same upload_id, same event id) instead of making a new one."""
    image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    with DevStack(workdir=tmp_path / "stack", broker_storage="s3") as local:
        assert local.endpoints is not None
        # One publish try per request (each waits the 15 s request timeout); the stages' retry budget
        # (AVATARFLOW_MAX_ATTEMPTS, 6 by default) must not hold an HTTP request open.
        env = {**env_for(local.endpoints), "AVATARFLOW_INGEST_PUBLISH_ATTEMPTS": "1"}
        proc = ServiceProcess("ingest", env, tmp_path / "ingest.log").start()
        try:
            grant = presign_and_put(proc.base_url, "space-c", image, declared_size=len(image))
            local.stop_component("tansu", kill=True)
            # Concurrently: each waits out the producer's timeouts against the dead broker.
            with ThreadPoolExecutor(max_workers=3) as pool:
                plain = pool.submit(post_plain, proc.base_url, "space-x", image)
                keyed = pool.submit(post_keyed, proc.base_url, "space-k", image, "resume-key")
                confirmed = pool.submit(confirm, proc.base_url, "space-c", grant)
            for answer in (plain, keyed, confirmed):
                assert answer.result().status_code == 503, answer.result().text
            assert '"event": "publish_retry"' not in proc.log_tail(100_000)
            kept = originals(local.endpoints)
            assert len(kept) == 3 and len(originals(local.endpoints, "idempotency/")) == 3
            local.start_component("tansu")
            resumed = post_keyed(proc.base_url, "space-k", image, "resume-key")
            assert resumed.status_code == 202, resumed.text
            assert resumed.headers["idempotent-replayed"] == "true"
            retried = post_plain(proc.base_url, "space-x", image)
            assert retried.status_code == 202, retried.text
            # A confirm whose publish answered 503 publishes that event once more; then the ticket is spent.
            reconfirmed = confirm(proc.base_url, "space-c", grant)
            assert reconfirmed.status_code == 202 and reconfirmed.headers["idempotent-replayed"] == "true"
            assert confirm(proc.base_url, "space-c", grant).status_code == 409
            events = [events_for(local.endpoints, r.json()["upload_id"]) for r in (resumed, retried, reconfirmed)]
            assert all(len(e) == 1 for e in events), events
            assert {e[0].original.key for e in events} == kept == originals(local.endpoints)
            assert all(e[0].event_id == uuid.uuid5(e[0].upload_id, "image.uploaded") for e in events)
            # Settled (published): the same file uploaded again without a key is a new upload.
            again = post_plain(proc.base_url, "space-x", image)
            assert again.status_code == 202 and again.json()["upload_id"] != retried.json()["upload_id"]
        finally:
            proc.stop(timeout_s=20)


def test_a_503_during_a_broker_stall_never_leaves_an_event_without_its_original(
    shared_dir: Path, tmp_path: Path
) -> None:
    """Issue 19 item 4: with the broker paused, an upload without Idempotency-Key got 503 and its
    original was deleted, yet the broker had stored image.uploaded: the validator then failed on the
    missing object and the editor saw `failed` for an image the client was told was never accepted."""
    image = (shared_dir / "avatar-images" / "accept_photo__man-suit-plain-bg.jpg").read_bytes()
    with DevStack(workdir=tmp_path / "stack", broker_storage="s3") as local:
        assert local.endpoints is not None
        env = {**env_for(local.endpoints), "AVATARFLOW_INGEST_PUBLISH_ATTEMPTS": "1"}
        proc = ServiceProcess("ingest", env, tmp_path / "ingest.log").start()
        try:
            # A first upload fetches the topic's metadata, so the stalled one's produce request is sent.
            other = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
            assert post_plain(proc.base_url, "space-warm", other).status_code == 202
            local.pause_component("tansu")
            try:
                stalled = post_plain(proc.base_url, "space-stall", image)
            finally:
                local.resume_component("tansu")
            assert stalled.status_code == 503, stalled.text
            retried = post_plain(proc.base_url, "space-stall", image)
            assert retried.status_code == 202, retried.text
            upload_id = retried.json()["upload_id"]
            records = asyncio.run(read_topic(local.endpoints.kafka_bootstrap, Topic.IMAGE_UPLOADED.value))
            events = [decode_event(r.value, ImageUploaded) for r in records if b"space-stall" in r.value]
            # Whatever the stalled broker stored (here it did store the 503'd publish: two records of one
            # event id) is this same upload, and its file is there.
            assert events and {str(e.upload_id) for e in events} == {upload_id}, events
            assert {e.event_id for e in events} == {uuid.uuid5(uuid.UUID(upload_id), "image.uploaded")}
            stored = s3(local.endpoints).get_object(Bucket=local.endpoints.bucket, Key=events[0].original.key)
            assert hashlib.sha256(stored["Body"].read()).hexdigest() == events[0].original.sha256
            assert len(originals(local.endpoints)) == 2  # the warm-up's and this one's: no second upload
        finally:
            proc.stop(timeout_s=20)


def test_an_unreadable_idempotency_record_is_replaced_not_raced(
    stack: StackEndpoints, ingest: ServiceProcess, shared_dir: Path
) -> None:
    """A record this version cannot read (damaged, or written by a future version) binds nothing: the
    request makes the upload and replaces it, instead of losing a race against it forever."""
    image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    record_key = idempotency_record_key("space-u", "editor-1", "garbled-key")
    s3(stack).put_object(Bucket=stack.bucket, Key=record_key, Body=b'{"version": 99}')
    first = post_keyed(ingest.base_url, "space-u", image, "garbled-key")
    assert first.status_code == 202, first.text
    again = post_keyed(ingest.base_url, "space-u", image, "garbled-key")
    assert again.status_code == 202 and again.json()["upload_id"] == first.json()["upload_id"]
