"""Fault injection on the whole pipeline: nothing lost, nothing duplicated, everything recovers.

Poison records, duplicate delivery, database connections killed, the broker restarted. SIGKILL of each
service: test_reliability_kill9.py; S3 and database outages: test_reliability_outages.py; what they
share (the load, the waits, the invariants): fault_support.py.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from avatarflow_contracts import DeadLetter
from fault_support import TIMEOUT_S, UPLOADS_PER_TEST, finish, retry_lines, wait_in_flight

from avatarflow.devstack.harness import DEAD_LETTER_TOPICS, EVENT_TOPICS, GROUP_TOPICS, PipelineHarness

pytestmark = [pytest.mark.integration, pytest.mark.faults]
POISONS: dict[str, Any] = {
    "bad_json": lambda topic: b'{"event_id": "not json',
    "wrong_types": lambda topic: json.dumps(
        {"event_type": topic, "schema_version": "1.0", "event_id": 12, "upload_id": [], "space_id": {}}
    ).encode(),
    "unknown_major": lambda topic: json.dumps(
        {"event_type": topic, "schema_version": "9.0", "event_id": "5d9a4a3e-6a1b-4d53-9d59-0f4c0a3c2b11"}
    ).encode(),
    "huge": lambda topic: json.dumps({"event_type": topic, "schema_version": "1.0", "pad": "x" * 600_000}).encode(),
}
EXPECTED_ERROR = {
    "bad_json": "MalformedEvent",
    "wrong_types": "MalformedEvent",
    "unknown_major": "UnknownSchemaVersion",
    "huge": "EventTooLarge",
}


def test_poison_event_on_every_topic_is_dead_lettered_and_the_stream_flows_on(
    harness: PipelineHarness, mixed_images: list[Path], reliability_figures: dict[str, Any]
) -> None:
    space = f"poison-{uuid.uuid4().hex[:6]}"
    marker = uuid.uuid4().hex
    records = []
    for topic in EVENT_TOPICS:
        for kind, make in POISONS.items():
            headers = [("poison-marker", f"{marker}:{topic}:{kind}".encode())]
            records.append((topic, space.encode(), make(topic), headers))
    harness.produce_many(records)
    fault_at = time.monotonic()
    # Uploads on the same space (same partition, behind the poison) and elsewhere still complete.
    uploads = [
        harness.upload(mixed_images[i], space if i < 2 else f"{space}-{i}", f"poison-editor-{i}") for i in range(4)
    ]

    expected = {
        (topic, kind, group)
        for topic in EVENT_TOPICS
        for kind in POISONS
        for group, ts in GROUP_TOPICS.items()
        if topic in ts
    }
    found: set[tuple[str, str, str]] = set()
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and found != expected:
        letters = harness.read_all(tuple(DEAD_LETTER_TOPICS.values()), idle_s=1.0)
        for dead_letter_topic, record in ((t, r) for t, rs in letters.items() for r in rs):
            # The original headers travel with the dead letter; its context is in dlt-* headers.
            tag = record.headers.get("poison-marker", b"").decode()
            if not tag.startswith(marker):
                continue
            _, topic, kind = tag.split(":")
            letter = DeadLetter.from_headers(record.headers)
            error_class = letter.error_type.rsplit(".", 1)[-1]
            assert letter.topic == topic and error_class == EXPECTED_ERROR[kind], letter.error_type
            assert letter.error, "dead letter without the error"
            assert record.value == POISONS[kind](topic)  # original bytes kept, as the value
            assert letter.consumer_group == f"avatarflow-{letter.service}"
            assert dead_letter_topic == DEAD_LETTER_TOPICS[letter.consumer_group]  # each group its own topic
            found.add((topic, kind, letter.consumer_group))
        time.sleep(1)
    assert found == expected, f"missing dead letters: {sorted(expected - found)}"
    finish(harness, uploads, reliability_figures, "poison_every_topic", fault_at, faults=len(records))
    reliability_figures["poison_every_topic"]["dead_letters"] = len(found)


def test_duplicate_delivery_of_every_event_changes_nothing(
    harness: PipelineHarness, light_images: list[Path], reliability_figures: dict[str, Any]
) -> None:
    # One avatar to make (a replay re-renders it twice: face.validated and avatar.matted), 5 rejections.
    uploads = harness.upload_many(light_images, UPLOADS_PER_TEST, prefix="dup")
    ids = [u.upload_id for u in uploads]
    harness.wait_terminal(ids, TIMEOUT_S)
    before = harness.db_rows()
    terminal_before = _terminal_event_ids(harness)
    # Replay every event topic from offset 0: produce every record of these uploads again (same key,
    # value, headers). Records of earlier tests' uploads are left alone only to keep the run short.
    wanted = [u.encode() for u in ids]
    replay = []
    for topic, records in harness.read_all().items():
        replay += [
            (topic, r.key, r.value, list(r.headers.items())) for r in records if any(w in r.value for w in wanted)
        ]
    assert {t for t, *_ in replay} >= {
        "image.uploaded",
        "face.validated",
        "avatar.matted",
        "avatar.rendered",
        "face.rejected",
    }
    renders_before = harness.logs()["animator"].count('"event": "rendered"')
    reused_before = {n: harness.logs()[n].count('"event": "outputs_reused"') for n in ("matting", "animator")}
    fault_at = time.monotonic()
    harness.produce_many(replay)
    lag = harness.wait_lag_zero(TIMEOUT_S)
    assert not any(lag.values()), lag
    # Issue 16 defect 6: the redelivered face.validated and avatar.matted were answered with the recorded
    # outputs (head_ref checks), not a second cut-out and render.
    logs = harness.logs()
    assert logs["animator"].count('"event": "rendered"') == renders_before, "a redelivery re-rendered"
    reused = {n: logs[n].count('"event": "outputs_reused"') - reused_before[n] for n in reused_before}
    assert all(count >= 1 for count in reused.values()), reused
    after = harness.db_rows()
    changed = {
        u: (before[u]["status"], after[u]["status"])
        for u in before
        if (before[u]["status"], before[u]["terminal_event_type"])
        != (after[u]["status"], after[u]["terminal_event_type"])
    }
    assert not changed, changed
    assert set(after) == set(before), "a replay created uploads"
    assert _terminal_event_ids(harness) == terminal_before, "a replay produced a new terminal outcome"
    finish(harness, uploads, reliability_figures, "duplicate_delivery_all_topics", fault_at, faults=len(replay))
    reliability_figures["duplicate_delivery_all_topics"]["status_changes"] = len(changed)
    reliability_figures["duplicate_delivery_all_topics"]["outputs_reused"] = reused


def _terminal_event_ids(harness: PipelineHarness) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for _topic, records in harness.read_all(("face.rejected", "avatar.rendered", "avatar.failed")).items():
        for record in records:
            try:
                payload = json.loads(record.value)
                result.setdefault(str(payload["upload_id"]), set()).add(str(payload["event_id"]))
            except (ValueError, KeyError, TypeError):
                continue  # a poison record from the poison test
    return result


def test_notifier_database_connections_terminated_repeatedly(
    harness: PipelineHarness, light_images: list[Path], reliability_figures: dict[str, Any]
) -> None:
    database = sa.engine.make_url(harness.database_url).database
    admin = sa.create_engine(
        sa.engine.make_url(harness.database_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    terminated = 0
    try:
        uploads = harness.upload_many(light_images, UPLOADS_PER_TEST, prefix="pgdrop")
        fault_at = time.monotonic()
        # Only this session's database: the machine's PostgreSQL server is shared and never restarted.
        query = sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
        )
        for _ in range(8):
            with admin.connect() as conn:
                terminated += sum(1 for row in conn.execute(query, {"db": database}) if row[0])
            time.sleep(1.5)
    finally:
        admin.dispose()
    assert terminated > 0, "no notifier connection was terminated: the fault was not injected"
    finish(harness, uploads, reliability_figures, "postgres_backends_terminated", fault_at, faults=terminated)


def test_broker_restart_mid_run_with_durable_storage(
    harness: PipelineHarness, mixed_images: list[Path], reliability_figures: dict[str, Any]
) -> None:
    retries_before = retry_lines(harness)
    uploads = harness.upload_many(mixed_images, UPLOADS_PER_TEST, prefix="broker")
    wait_in_flight(harness, uploads, "validated")
    fault_at = time.monotonic()
    harness.stack.stop_component("tansu", kill=True)
    time.sleep(3)
    harness.stack.start_component("tansu")
    finish(harness, uploads, reliability_figures, "broker_kill_restart", fault_at, faults=1)
    reliability_figures["broker_kill_restart"]["retries_logged"] = retry_lines(harness) - retries_before
    assert all(harness.all_alive_and_ready().values())
