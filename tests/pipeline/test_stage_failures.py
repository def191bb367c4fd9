"""A stage that cannot produce its output ends the upload with avatar.failed (and a dead letter)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aiokafka import AIOKafkaProducer
from avatarflow_contracts import (
    AvatarFailed,
    AvatarMatted,
    Box,
    ConsumerGroup,
    DeadLetter,
    Envelope,
    FaceGeometry,
    FaceValidated,
    HeadPose,
    MattingQuality,
    ObjectRef,
    Point,
    Topic,
    dead_letter_topic,
    encode_event,
)

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.processes import ServiceProcess
from avatarflow.devstack.topics import read_topic

pytestmark = pytest.mark.integration
FAST = {
    "AVATARFLOW_MAX_ATTEMPTS": "2",
    "AVATARFLOW_RETRY_BACKOFF_INITIAL_S": "0.2",
    "AVATARFLOW_KAFKA_SESSION_TIMEOUT_MS": "6000",
    "AVATARFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "AVATARFLOW_KAFKA_MAX_POLL_INTERVAL_MS": "60000",
}


def geometry(size: int) -> FaceGeometry:
    landmarks = [(size * 0.5 + (i % 20) - 10, size * 0.45 + (i // 20) - 12, 0.0) for i in range(478)]
    return FaceGeometry(
        image_width=size,
        image_height=size,
        box=Box(x=size * 0.35, y=size * 0.3, width=size * 0.3, height=size * 0.35),
        landmarks=landmarks,
        left_eye=Point(x=size * 0.44, y=size * 0.42),
        right_eye=Point(x=size * 0.56, y=size * 0.42),
        mouth_center=Point(x=size * 0.5, y=size * 0.56),
        head_pose=HeadPose(yaw=0, pitch=0, roll=0),
        suggested_crop=Box(x=0, y=0, width=size, height=size),
        detection_score=0.95,
    )


def ref(key: str, data: bytes, content_type: str, sha: str | None = None) -> ObjectRef:
    return ObjectRef(
        bucket="avatarflow",
        key=key,
        size=len(data),
        sha256=sha or hashlib.sha256(data).hexdigest(),
        content_type=content_type,
    )


async def publish(stack: StackEndpoints, event: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(event.TOPIC.value, encode_event(event), key=event.space_id.encode())
    finally:
        await producer.stop()


def wait_failed(stack: StackEndpoints, upload_id: uuid.UUID, group: str) -> tuple[AvatarFailed, list[DeadLetter]]:
    marker = str(upload_id).encode()
    failed = asyncio.run(
        read_topic(
            stack.kafka_bootstrap,
            Topic.AVATAR_FAILED.value,
            timeout_s=120,
            until=lambda rs: any(marker in r.value for r in rs),
        )
    )
    events = [AvatarFailed.model_validate_json(r.value) for r in failed if marker in r.value]
    assert events, f"no avatar.failed for {upload_id}"
    records = asyncio.run(read_topic(stack.kafka_bootstrap, dead_letter_topic(group), idle_s=1))
    # Dead letters keep the original bytes as their value, the context in dlt-* headers.
    ours = [DeadLetter.from_headers(r.headers) for r in records if marker in r.value]
    return events[0], ours


@pytest.fixture(scope="module")
def stages(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    workdir = tmp_path_factory.mktemp("stages")
    procs = {
        n: ServiceProcess(n, {**stack.service_env(), **FAST}, workdir / f"{n}.log") for n in ("matting", "animator")
    }
    try:
        for p in procs.values():
            p.start(wait_ready=False)
        for p in procs.values():
            p.wait_ready(300)
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def test_matting_missing_original_ends_in_avatar_failed(
    stack: StackEndpoints, stages: dict[str, ServiceProcess]
) -> None:
    event = FaceValidated(
        upload_id=uuid.uuid4(),
        space_id="s-fail-m",
        editor_id="e",
        original=ref(f"originals/{uuid.uuid4()}/gone.jpg", b"never stored", "image/jpeg"),
        face=geometry(512),
        checks=[],
    )
    asyncio.run(publish(stack, event))
    failed, letters = wait_failed(stack, event.upload_id, ConsumerGroup.MATTING.value)
    assert failed.stage == "matting" and failed.error_code == "object_missing" and failed.attempts == 1
    assert failed.editor_message and failed.retry_advice == "retry_upload"
    assert letters and letters[0].service == "matting" and letters[0].topic == Topic.FACE_VALIDATED.value
    assert stages["matting"].popen is not None and stages["matting"].popen.poll() is None


def test_animator_corrupt_cutout_ends_in_avatar_failed(
    stack: StackEndpoints, stages: dict[str, ServiceProcess], tmp_path: Path
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name="us-east-1",
    )
    data = b"\x89PNG\r\n\x1a\n not really a png"
    key = f"avatars/{uuid.uuid4()}/matting/cutout.png"
    s3.put_object(Bucket=stack.bucket, Key=key, Body=data)
    tampered = ref(key, data, "image/png", sha="f" * 64)  # the stored bytes do not match the event
    event = AvatarMatted(
        upload_id=uuid.uuid4(),
        space_id="s-fail-a",
        editor_id="e",
        original=tampered,
        cutout=tampered,
        preview_on_white=tampered,
        preview_on_dark=tampered,
        canvas_width=1024,
        canvas_height=1024,
        face=geometry(1024),
        method="person_model",
        quality=MattingQuality(alpha_coverage=0.4, edge_band_px=3, residual_background=0.01, confidence=0.9),
    )
    asyncio.run(publish(stack, event))
    failed, letters = wait_failed(stack, event.upload_id, ConsumerGroup.ANIMATOR.value)
    assert failed.stage == "animator" and failed.error_code == "corrupt_object"
    assert letters and letters[0].error_type == "avatarflow_runtime.errors.CorruptObject"
    assert stages["animator"].popen is not None and stages["animator"].popen.poll() is None
