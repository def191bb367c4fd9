"""The stage template on the real broker: DLQ for poison records, redelivery after a crash.

Dead letters (issue 16): the value is the original bytes (an S3 copy's ObjectRef when they would not
fit), the context is in ``dlt-*`` headers, and no failure, not even one inside the failure path,
lets the commit move past a record.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import boto3
import pytest
from aiokafka import AIOKafkaProducer
from avatarflow_contracts import (
    DLQ_REPLAYS_TOPIC,
    AvatarFailed,
    DeadLetter,
    DlqReplay,
    ImageUploaded,
    ObjectRef,
    Topic,
    dead_letter_topic,
    encode_event,
    retry_topic,
)

from avatarflow.cli import main as avatarctl
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


Headers = list[tuple[str, bytes | None]]
# Header values FastStream cannot decode as UTF-8 (and a null one): the record must still be settled.
ODD_HEADERS: Headers = [("x-latin1", "café".encode("latin-1")), ("x-null", None)]


async def produce(
    bootstrap: str,
    values: list[bytes],
    key: bytes = b"space-t",
    headers: dict[int, Headers] | None = None,
    topic: str = Topic.IMAGE_UPLOADED.value,
) -> None:
    """Send ``values`` in order; ``headers`` maps a value's index to the headers it is sent with."""
    # Room for the oversized source records of the dead-letter size tests.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for index, value in enumerate(values):
            extra = (headers or {}).get(index)
            await producer.send_and_wait(topic, value, key=key, headers=extra)
    finally:
        await producer.stop()


class EchoStage:
    def __init__(
        self,
        stack: StackEndpoints,
        tmp: Path,
        group: str,
        crash_on: str | None = None,
        fail_on: str | None = None,
        fail_while: Path | None = None,
    ) -> None:
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
        if fail_on:
            env["ECHO_FAIL_ON"] = fail_on
        if fail_while:
            env["ECHO_FAIL_WHILE_FILE"] = str(fail_while)
        self.log = (tmp / f"echo-{uuid.uuid4().hex}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, str(ECHO)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        crash_file = tmp / f"crash-{group}"
        while not self.ready.exists():
            # A crashing stage may take the record and die while broker.start() is still running, before
            # it writes the ready file: that is the crash under test, not a failed start.
            if crash_on and self.proc.poll() is not None and crash_file.exists():
                break
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


def dead_letters(
    stack: StackEndpoints, group: str, until: Callable[[list[tuple[DeadLetter, Record]]], bool] | None = None
) -> list[tuple[DeadLetter, Record]]:
    """``group``'s dead letters, until ``until`` holds (without it: everything there so far)."""

    def parsed(records: list[Record]) -> list[tuple[DeadLetter, Record]]:
        return [(DeadLetter.from_headers(r.headers), r) for r in records]

    records = asyncio.run(
        read_topic(
            stack.kafka_bootstrap,
            dead_letter_topic(group),
            timeout_s=90,
            until=None if until is None else (lambda rs: until(parsed(rs))),
        )
    )
    return parsed(records)


def wait_output(stack: StackEndpoints, upload_id: uuid.UUID) -> list[Record]:
    outputs = asyncio.run(
        read_topic(
            stack.kafka_bootstrap,
            Topic.AVATAR_FAILED.value,
            timeout_s=90,
            until=lambda rs: bool(records_for(rs, upload_id)),
        )
    )
    return records_for(outputs, upload_id)


def test_poison_records_go_to_dead_letter_and_stream_keeps_flowing(
    stack: StackEndpoints, tmp_path: Path, group: str
) -> None:
    before, odd, after = uploaded(), uploaded(), uploaded()
    future_major = json.loads(encode_event(uploaded()))
    future_major["schema_version"] = "2.0"
    wrong_types = json.loads(encode_event(uploaded()))
    wrong_types["original"]["size"] = "huge"
    naive_time = json.loads(encode_event(uploaded()))
    naive_time["occurred_at"] = "2026-11-02T10:00:00"  # no timezone (issue 16, defect 3)
    marker = uuid.uuid4().hex
    poison = [
        b"{not json" + marker.encode(),
        json.dumps({**future_major, "marker": marker}).encode(),
        json.dumps({**wrong_types, "marker": marker}).encode(),
        b'{"marker":"' + marker.encode() + b'","pad":"' + b"x" * 600_000 + b'"}',
        json.dumps({**naive_time, "marker": marker}).encode(),
        b'{"marker":"' + marker.encode() + b'","x":' + b"[" * 100_000,  # deeper than the JSON parser goes
        b"\xff\xfe not utf-8 either " + marker.encode(),  # sent with ODD_HEADERS too (the last poison)
    ]
    # An upstream trace context on the first record (tracing is off here, as by default).
    traceparent = f"00-{before.trace_id}-{uuid.uuid4().hex[:16]}-01".encode()
    values = [encode_event(before), *poison, encode_event(odd), encode_event(after)]
    # Odd header values on a poison record and on a valid one: neither may be skipped (FastStream's own
    # parser raises on them, before any handler runs).
    odd_headers = {len(poison): ODD_HEADERS, len(poison) + 1: ODD_HEADERS}
    headers: dict[int, Headers] = {0: [("traceparent", traceparent)], **odd_headers}
    asyncio.run(produce(stack.kafka_bootstrap, values, headers=headers))
    stage = EchoStage(stack, tmp_path, group)
    try:
        assert wait_output(stack, before.upload_id) and wait_output(stack, after.upload_id)
        assert wait_output(stack, odd.upload_id), "a valid event with odd header values is processed"
        (output,) = wait_output(stack, before.upload_id)
        # With tracing off the consumer still continues the record's W3C context, and the producer
        # forwards it unchanged (trace and parent span), not a fresh random one (issue 16, item 8).
        assert output.headers["traceparent"] == traceparent
        # Every event carries the CloudEvents Kafka-binding headers (issue 16).
        failed = AvatarFailed.model_validate_json(output.value)
        assert output.headers["ce_specversion"] == b"1.0" and output.headers["ce_source"] == b"/avatarflow/echo"
        assert output.headers["ce_id"] == str(failed.event_id).encode()
        assert output.headers["ce_type"] == b"avatar.failed"
        assert datetime.fromisoformat(output.headers["ce_time"].decode()) == failed.occurred_at
        letters = dead_letters(
            stack,
            group,
            lambda ls: sum(1 for d, r in ls if d.consumer_group == group and marker.encode() in r.value) >= 7,
        )
        ours = [(d, r) for d, r in letters if d.consumer_group == group and marker.encode() in r.value]
        assert sorted(d.error_type.rsplit(".", 1)[-1] for d, _ in ours) == sorted(
            ["UnknownSchemaVersion", "EventTooLarge"] + ["MalformedEvent"] * 5
        )
        # The value is the original record byte for byte; the context is in the headers.
        assert sorted(r.value for _, r in ours) == sorted(poison)
        assert all(d.value_location == "inline" and d.attempts == 1 for d, _ in ours)
        assert all(d.service == "echo" and d.topic == Topic.IMAGE_UPLOADED.value for d, _ in ours)
        assert all(r.key == b"space-t" and d.error_type.startswith("avatarflow_contracts.") for d, r in ours)
        offsets = sorted(d.offset for d, _ in ours)
        assert len(set(offsets)) == 7 and offsets[-1] - offsets[0] == 6  # seven consecutive source records
        # The dead letter keeps the odd header, its undecodable byte escaped (as every dead letter does).
        (odd_letter,) = [r for _, r in ours if r.value.startswith(b"\xff\xfe")]
        assert odd_letter.headers["x-latin1"] == b"caf\\xe9" and odd_letter.headers["x-null"] == b""
        naive = [d for d, r in ours if b"2026-11-02T10:00:00" in r.value]
        assert naive and "timezone" in naive[0].error.lower()
        assert stage.proc.poll() is None, "a poison record must never crash the consumer"
    finally:
        stage.stop()


def test_records_near_and_above_the_producer_limit_are_dead_lettered_without_blocking(
    stack: StackEndpoints, tmp_path: Path, group: str
) -> None:
    """Before issue 16 a ~800 KiB record became a >1 MiB base64 dead letter and blocked its partition."""
    marker = uuid.uuid4().hex.encode()
    near = b'{"marker":"' + marker + b'","pad":"' + os.urandom(400_000).hex().encode() + b'"}'  # ~800 KB
    above = b'{"marker":"' + marker + b'","pad":"' + os.urandom(650_000).hex().encode() + b'"}'  # ~1.3 MB
    after = uploaded()
    asyncio.run(produce(stack.kafka_bootstrap, [near, above, encode_event(after)]))
    stage = EchoStage(stack, tmp_path, group)
    try:
        assert wait_output(stack, after.upload_id), "the record after the large ones was never processed"
        letters = dead_letters(
            stack,
            group,
            lambda ls: (
                sum(1 for d, r in ls if d.consumer_group == group and marker in r.value[:100]) >= 1
                and any(d.consumer_group == group and d.value_location == "s3" for d, _ in ls)
            ),
        )
        # The group starts at the topic's beginning: pick this test's records by their marker.
        inline = [(d, r) for d, r in letters if d.consumer_group == group and marker in r.value[:100]]
        copied = [(d, r) for d, r in letters if d.consumer_group == group and d.value_location == "s3"]
        assert len(inline) == 1 and inline[0][1].value == near
        assert len(copied) == 1, "exactly one dead letter for the oversized record (no endless retry)"
        letter, record = copied[0]
        assert len(record.value) < 2_000 and letter.error_type.endswith("EventTooLarge")
        assert (letter.topic, letter.offset) == (Topic.IMAGE_UPLOADED.value, inline[0][0].offset + 1)
        ref = ObjectRef.model_validate_json(record.value)
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.s3_endpoint,
            aws_access_key_id=stack.s3_access_key,
            aws_secret_access_key=stack.s3_secret_key,
            region_name="us-east-1",
        )
        copy = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        assert copy == above and ref.size == len(above) and ref.key.startswith(f"dead-letters/{group}/")
    finally:
        stage.stop()


def test_a_failing_on_failure_still_dead_letters_and_never_skips_the_record(
    stack: StackEndpoints, tmp_path: Path, group: str
) -> None:
    """Before issue 16 an exception in on_failure left the record unacked and the next commit skipped it."""
    doomed, after = uploaded(), uploaded()
    asyncio.run(produce(stack.kafka_bootstrap, [encode_event(doomed), encode_event(after)]))
    stage = EchoStage(stack, tmp_path, group, fail_on=str(doomed.upload_id))
    try:
        assert wait_output(stack, after.upload_id)
        mark = str(doomed.upload_id).encode()
        letters = dead_letters(stack, group, lambda ls: any(mark in r.value for _, r in ls))
        ours = [d for d, r in letters if d.consumer_group == group and str(doomed.upload_id).encode() in r.value]
        assert len(ours) == 1
        assert ours[0].error_type.endswith("PermanentError") and ours[0].note
        assert "on_failure raised" in ours[0].note and "RuntimeError" in ours[0].note
        assert stage.proc.poll() is None
    finally:
        stage.stop()


def outputs_by_group(
    stack: StackEndpoints, upload_id: uuid.UUID, until: Callable[[list[str]], bool] | None = None
) -> list[str]:
    """The group name in each echo output for ``upload_id`` (echo_stage writes it into ``error``);
    without ``until``, everything on the topic so far."""

    def groups(records: list[Record]) -> list[str]:
        return [
            AvatarFailed.model_validate_json(r.value).error.split(" ", 1)[1] for r in records_for(records, upload_id)
        ]

    records = asyncio.run(
        read_topic(
            stack.kafka_bootstrap,
            Topic.AVATAR_FAILED.value,
            timeout_s=90,
            until=None if until is None else (lambda rs: until(groups(rs))),
        )
    )
    return groups(records)


def test_replay_dlq_reruns_only_the_group_that_failed_and_journals_it(
    stack: StackEndpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 defect 5: one shared dead-letter topic and a replay to the source topic re-ran every group."""
    for name, value in stack.service_env().items():  # avatarctl reads S3-held dead letters with this config
        monkeypatch.setenv(name, value)
    healthy, failing = f"test-echo-ok-{uuid.uuid4().hex[:6]}", f"test-echo-bad-{uuid.uuid4().hex[:6]}"
    doomed = uploaded()
    asyncio.run(produce(stack.kafka_bootstrap, [encode_event(doomed)]))
    ok = EchoStage(stack, tmp_path, healthy)
    bug = tmp_path / "bug-present"
    bug.write_text("the stage has a bug")
    bad = EchoStage(stack, tmp_path, failing, fail_on=str(doomed.upload_id), fail_while=bug)
    try:
        assert outputs_by_group(stack, doomed.upload_id, lambda gs: healthy in gs).count(healthy) == 1
        mark = str(doomed.upload_id).encode()
        letters = dead_letters(stack, failing, lambda ls: any(mark in r.value for _, r in ls))
        (letter,) = [d for d, r in letters if mark in r.value]
        assert letter.consumer_group == failing and letter.topic == Topic.IMAGE_UPLOADED.value
        bug.unlink()  # the fix is deployed (no restart: a rebalance on Tansu costs a session timeout)
        capsys.readouterr()
        assert avatarctl(["replay-dlq", "--group", failing, "--bootstrap", stack.kafka_bootstrap]) == 0
        assert f"-> {retry_topic(failing)}" in capsys.readouterr().out
        groups = outputs_by_group(stack, doomed.upload_id, lambda gs: failing in gs)
        assert groups.count(failing) == 1, "the failed group processed the replayed record"
        time.sleep(3)  # the healthy group would have had its chance to see the record again by now
        groups = outputs_by_group(stack, doomed.upload_id)
        assert groups.count(healthy) == 1, "the replay reached a group that had not failed"
        journals = [
            DlqReplay.model_validate_json(r.value)
            for r in asyncio.run(read_topic(stack.kafka_bootstrap, DLQ_REPLAYS_TOPIC, idle_s=1))
        ]
        ours = [j for j in journals if j.consumer_group == failing]
        assert len(ours) == 1 and ours[0].retry_topic == retry_topic(failing)
        replayed = {r.dead_letter_id: r for r in ours[0].records}
        assert replayed[letter.dead_letter_id].offset == letter.offset
        assert replayed[letter.dead_letter_id].topic == Topic.IMAGE_UPLOADED.value
        # The group also met the module's earlier poison records: replayed, they fail again and are
        # dead-lettered anew, still naming their event topic, with the retry record they came back as.
        again = [
            (d, r)
            for d, r in dead_letters(stack, failing)
            if d.note and f"replayed via {retry_topic(failing)}" in d.note
        ]
        assert len(again) == len(replayed) - 1 and not any(mark in r.value for _, r in again)
        assert all(d.topic == Topic.IMAGE_UPLOADED.value for d, _ in again)
        # A second run skips every dead letter the first one replayed; only the new ones go.
        assert avatarctl(["replay-dlq", "--group", failing, "--bootstrap", stack.kafka_bootstrap]) == 0
        out = capsys.readouterr().out
        assert f"{len(again)} record(s) replayed to {retry_topic(failing)}" in out
        assert f"; {len(replayed)} already replayed" in out
        # A retry record naming a topic the group does not consume is poison, not an unsettled record.
        stray = uploaded()
        named: Headers = [("replay-original-topic", Topic.FACE_REJECTED.value.encode())]
        stray_value = [encode_event(stray)]
        asyncio.run(produce(stack.kafka_bootstrap, stray_value, headers={0: named}, topic=retry_topic(failing)))
        stray_mark = str(stray.upload_id).encode()
        letters = dead_letters(stack, failing, lambda ls: any(stray_mark in r.value for _, r in ls))
        (stray_letter,) = [d for d, r in letters if stray_mark in r.value]
        assert stray_letter.error_type.endswith("MalformedEvent") and "'face.rejected'" in stray_letter.error
        assert stray_letter.topic == Topic.FACE_REJECTED.value and not records_for(
            asyncio.run(read_topic(stack.kafka_bootstrap, Topic.AVATAR_FAILED.value, idle_s=1)), stray.upload_id
        )
    finally:
        ok.stop()
        bad.stop()


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
