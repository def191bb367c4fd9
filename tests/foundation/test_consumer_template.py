"""The stage template on the real broker: DLQ for poison records, redelivery after a crash."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from avatarflow_contracts import AvatarFailed, DeadLetter, ImageUploaded, ObjectRef, Topic, encode_event

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.topics import Record, read_topic

pytestmark = pytest.mark.integration
ECHO = Path(__file__).with_name("echo_stage.py")


def uploaded(space: str = "space-t") -> ImageUploaded:
    return ImageUploaded(
        upload_id=uuid.uuid4(),
        space_id=space,
        editor_id="e-1",
        original=ObjectRef(
            bucket="avatarflow", key="originals/x/y.jpg", size=10, sha256="0" * 64, content_type="image/jpeg"
        ),
    )


async def produce(bootstrap: str, values: list[bytes], key: bytes = b"space-t") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(Topic.IMAGE_UPLOADED.value, value, key=key)
    finally:
        await producer.stop()


class EchoStage:
    def __init__(self, stack: StackEndpoints, tmp: Path, group: str, crash_on: str | None = None) -> None:
        self.ready = tmp / f"ready-{uuid.uuid4().hex}"
        env = {
            **os.environ,
            **stack.service_env(),
            "ECHO_GROUP": group,
            "ECHO_READY_FILE": str(self.ready),
            "AVATARFLOW_SERVICE_NAME": "echo",
        }
        if crash_on:
            env["ECHO_CRASH_ONCE_FILE"] = str(tmp / f"crash-{group}")
            env["ECHO_CRASH_ON"] = crash_on
        self.log = (tmp / f"echo-{uuid.uuid4().hex}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, str(ECHO)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            assert self.proc.poll() is None, "echo stage died at start"
            assert time.monotonic() < deadline, "echo stage not ready"
            time.sleep(0.1)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def records_for(records: list[Record], upload_id: uuid.UUID) -> list[Record]:
    return [r for r in records if str(upload_id).encode() in r.value]


@pytest.fixture
def group() -> str:
    return f"test-echo-{uuid.uuid4().hex[:8]}"


def test_poison_records_go_to_dead_letter_and_stream_keeps_flowing(
    stack: StackEndpoints, tmp_path: Path, group: str
) -> None:
    before, after = uploaded(), uploaded()
    future_major = json.loads(encode_event(uploaded()))
    future_major["schema_version"] = "2.0"
    wrong_types = json.loads(encode_event(uploaded()))
    wrong_types["original"]["size"] = "huge"
    marker = uuid.uuid4().hex
    poison = [
        b"{not json" + marker.encode(),
        json.dumps({**future_major, "marker": marker}).encode(),
        json.dumps({**wrong_types, "marker": marker}).encode(),
        b'{"marker":"' + marker.encode() + b'","pad":"' + b"x" * 600_000 + b'"}',
    ]
    asyncio.run(produce(stack.kafka_bootstrap, [encode_event(before), *poison, encode_event(after)]))
    stage = EchoStage(stack, tmp_path, group)
    try:
        outputs = asyncio.run(
            read_topic(
                stack.kafka_bootstrap,
                Topic.AVATAR_FAILED.value,
                timeout_s=60,
                until=lambda rs: bool(records_for(rs, after.upload_id)),
            )
        )
        assert records_for(outputs, before.upload_id) and records_for(outputs, after.upload_id)
        letters = asyncio.run(
            read_topic(
                stack.kafka_bootstrap,
                Topic.DEAD_LETTER.value,
                timeout_s=60,
                until=lambda rs: (
                    sum(
                        marker.encode() in DeadLetter.model_validate_json(r.value).model_dump_json().encode()
                        or marker in _orig(r)
                        for r in rs
                    )
                    >= 4
                ),
            )
        )
        ours = [DeadLetter.model_validate_json(r.value) for r in letters if marker in _orig(r)]
        assert sorted(letter.error_type for letter in ours) == sorted(
            ["MalformedEvent", "UnknownSchemaVersion", "MalformedEvent", "EventTooLarge"]
        )
        assert all(letter.service == "echo" and letter.topic == Topic.IMAGE_UPLOADED.value for letter in ours)
        assert stage.proc.poll() is None, "a poison record must never crash the consumer"
    finally:
        stage.stop()


def _orig(record: Record) -> str:
    import base64

    letter = DeadLetter.model_validate_json(record.value)
    return base64.b64decode(letter.value_b64)[:700_000].decode("utf-8", "replace")


def test_crash_before_commit_redelivers_and_output_is_idempotent(
    stack: StackEndpoints, tmp_path: Path, group: str
) -> None:
    event = uploaded()
    asyncio.run(produce(stack.kafka_bootstrap, [encode_event(event)]))
    crashing = EchoStage(stack, tmp_path, group, crash_on=str(event.upload_id))
    assert crashing.wait_exit(timeout=120) == 17  # published, then died before committing
    crashing.stop()
    restarted = EchoStage(stack, tmp_path, group)
    try:
        outputs = asyncio.run(
            read_topic(
                stack.kafka_bootstrap,
                Topic.AVATAR_FAILED.value,
                timeout_s=60,
                until=lambda rs: len(records_for(rs, event.upload_id)) >= 2,
            )
        )
        ours = [AvatarFailed.model_validate_json(r.value) for r in records_for(outputs, event.upload_id)]
        assert len(ours) == 2, "the record was redelivered after the crash and processed again"
        # Same event id both times: downstream deduplicates, so the outcome is not doubled.
        assert ours[0].event_id == ours[1].event_id
        # After the redelivery was committed, a restart does not process it a third time.
    finally:
        restarted.stop()
    again = EchoStage(stack, tmp_path, group)
    try:
        time.sleep(8)
        outputs = asyncio.run(read_topic(stack.kafka_bootstrap, Topic.AVATAR_FAILED.value, idle_s=2))
        assert len(records_for(outputs, event.upload_id)) == 2
    finally:
        again.stop()
