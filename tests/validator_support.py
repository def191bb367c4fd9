"""Driving the validator service the way the platform does: an original in S3, an image.uploaded on the
broker, and the outcome read back from face.validated / face.rejected."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import boto3
from aiokafka import AIOKafkaProducer
from avatarflow_contracts import (
    FaceRejected,
    FaceValidated,
    ImageUploaded,
    ObjectRef,
    Topic,
    decode_event,
    encode_event,
)

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.topics import read_topic


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
