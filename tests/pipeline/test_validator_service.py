"""Validator service on the real broker and storage: both outcomes, the pre-check, scale-out."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from avatarflow_contracts import (
    FaceRejected,
    FaceValidated,
    ImageUploaded,
    ObjectRef,
    ReasonCode,
    Topic,
    decode_event,
    encode_event,
)
from avatarflow_runtime.auth import mint_token

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.processes import ServiceProcess
from avatarflow.devstack.topics import read_topic

pytestmark = pytest.mark.integration
# The key these tests' services verify with (services refuse to start without a strong one).
SECRET = secrets.token_urlsafe(32)
FAST_GROUP_ENV = {
    "AVATARFLOW_KAFKA_SESSION_TIMEOUT_MS": "6000",
    "AVATARFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "AVATARFLOW_KAFKA_MAX_POLL_INTERVAL_MS": "30000",
}


def put_original(stack: StackEndpoints, data: bytes, content_type: str = "image/jpeg") -> ObjectRef:
    key = f"platform-uploads/{uuid.uuid4()}"
    boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name="us-east-1",
    ).put_object(Bucket=stack.bucket, Key=key, Body=data, ContentType=content_type)
    return ObjectRef(
        bucket=stack.bucket,
        key=key,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=content_type,
    )


async def publish_uploads(stack: StackEndpoints, events: list[ImageUploaded]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(Topic.IMAGE_UPLOADED.value, encode_event(event), key=event.space_id.encode())
    finally:
        await producer.stop()


def platform_event(ref: ObjectRef, space: str) -> ImageUploaded:
    """An image.uploaded produced by the platform's own upload flow (object already in S3)."""
    return ImageUploaded(
        upload_id=uuid.uuid4(), space_id=space, editor_id="platform-editor", original=ref, source="platform"
    )


def outcomes(stack: StackEndpoints, upload_ids: set[str], timeout_s: float = 180) -> dict[str, object]:
    found: dict[str, object] = {}

    def collect(records: list) -> bool:  # type: ignore[type-arg]
        for r in records:
            for uid in upload_ids:
                if uid.encode() in r.value:
                    model = FaceValidated if r.topic == Topic.FACE_VALIDATED.value else FaceRejected
                    found[uid] = decode_event(r.value, model)
        return set(found) >= upload_ids

    async def both() -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline and not set(found) >= upload_ids:
            for topic in (Topic.FACE_VALIDATED, Topic.FACE_REJECTED):
                collect(await read_topic(stack.kafka_bootstrap, topic.value, idle_s=1, timeout_s=10))
            await asyncio.sleep(1)

    asyncio.run(both())
    return found


@pytest.fixture(scope="module")
def validator(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(
        "validator",
        {**stack.service_env(), "AVATARFLOW_JWT_SECRET": SECRET, **FAST_GROUP_ENV},
        tmp_path_factory.mktemp("validator") / "validator.log",
    ).start()
    yield proc
    proc.stop()


def test_platform_events_are_validated_or_rejected(
    stack: StackEndpoints, validator: ServiceProcess, shared_dir: Path
) -> None:
    images = shared_dir / "avatar-images"
    good = platform_event(put_original(stack, (images / "accept_photo__man-suit-plain-bg.jpg").read_bytes()), "s-v1")
    landscape = platform_event(
        put_original(stack, (images / "no_face__golden-gate-landscape.jpg").read_bytes()), "s-v1"
    )
    tiff = platform_event(
        put_original(stack, (shared_dir / "bad-inputs" / "portrait.tif").read_bytes(), "image/tiff"), "s-v1"
    )
    asyncio.run(publish_uploads(stack, [good, landscape, tiff]))
    found = outcomes(stack, {str(good.upload_id), str(landscape.upload_id), str(tiff.upload_id)})

    accepted = found[str(good.upload_id)]
    assert isinstance(accepted, FaceValidated)
    assert len(accepted.face.landmarks) == 478 and accepted.face.suggested_crop.width > 0
    assert accepted.trace_id == good.trace_id and accepted.original == good.original
    rejected = found[str(landscape.upload_id)]
    assert isinstance(rejected, FaceRejected) and rejected.reasons[0] == ReasonCode.NO_FACE
    assert rejected.editor_messages and all(c.threshold is not None for c in rejected.checks)
    unreadable = found[str(tiff.upload_id)]
    assert isinstance(unreadable, FaceRejected) and unreadable.reasons == [ReasonCode.UNREADABLE_IMAGE]


def test_precheck_gives_the_same_decision(validator: ServiceProcess, shared_dir: Path) -> None:
    headers = {"authorization": f"Bearer {mint_token(SECRET, subject='e', space_id='s-pre')}"}
    image = (shared_dir / "avatar-images" / "eyes_occluded__man-dark-aviators.jpg").read_bytes()
    response = httpx.post(
        f"{validator.base_url}/v1/spaces/s-pre/precheck",
        headers=headers,
        files={"file": ("a.jpg", image, "image/jpeg")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "reject" and "eyes_occluded" in body["reasons"]
    assert body["editor_messages"] and body["scores"]
    refused = httpx.post(
        f"{validator.base_url}/v1/spaces/s-pre/precheck",
        headers=headers,
        files={"file": ("a.pdf", b"%PDF-1.4 hello", "application/pdf")},
    )
    assert refused.status_code == 415
    other = httpx.post(
        f"{validator.base_url}/v1/spaces/other/precheck",
        headers=headers,
        files={"file": ("a.jpg", image, "image/jpeg")},
    )
    assert other.status_code == 403


def test_two_validators_split_the_partitions(
    stack: StackEndpoints, validator: ServiceProcess, tmp_path: Path, shared_dir: Path
) -> None:
    first_log_before = len(validator.log_tail(10**9))
    second = ServiceProcess(
        "validator", {**stack.service_env(), "AVATARFLOW_JWT_SECRET": SECRET, **FAST_GROUP_ENV}, tmp_path / "v2.log"
    ).start()
    try:
        image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
        ref = put_original(stack, image)
        # Many spaces, so the keys spread over all partitions.
        events = [platform_event(ref, f"space-{i}") for i in range(16)]
        asyncio.run(publish_uploads(stack, events))
        found = outcomes(stack, {str(e.upload_id) for e in events})
        assert len(found) == len(events)
        new_work = {
            "first": validator.log_tail(10**9)[first_log_before:].count('"processed"'),
            "second": second.log_tail(10**9).count('"processed"'),
        }
        assert new_work["first"] > 0 and new_work["second"] > 0, new_work
        assert new_work["first"] + new_work["second"] >= len(events), new_work
    finally:
        second.stop()
