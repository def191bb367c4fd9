"""Fault injection: S3 and database outages, within and far beyond the stages' retry budget, end every upload
ready or rejected as its label says (fault_support.py: the invariants)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fault_support import UPLOADS_PER_TEST, finish, retry_lines, wait_busy
from tcp_proxy import TcpProxy

from avatarflow.devstack.harness import PipelineHarness

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_s3_unavailable_for_ten_seconds(
    harness: PipelineHarness, mixed_images: list[Path], reliability_figures: dict[str, Any]
) -> None:
    retries_before = retry_lines(harness)
    uploads = harness.upload_many(mixed_images, UPLOADS_PER_TEST, prefix="s3")
    # Once the animator holds an avatar it renders for seconds and then writes the pack, so that write
    # meets the outage (the retry budget, 0.5+1+2+4+8 s, outlasts 10 s). Going in at any earlier
    # point races the broker: Tansu keeps its log in the same S3, so an outage that starts before the
    # animator has fetched its event only holds the event back, and no stage sees S3 fail.
    wait_busy(harness, "animator")
    fault_at = time.monotonic()
    harness.stack.stop_component("seaweedfs")
    try:
        # Ten seconds from the moment a stage meets the outage (its render may outlast a fixed window
        # on a loaded machine, and then the fault would test nothing).
        deadline = time.monotonic() + 90
        while retry_lines(harness) == retries_before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(10)
    finally:
        harness.stack.start_component("seaweedfs")
    finish(harness, uploads, reliability_figures, "s3_down_10s", fault_at, faults=1)
    retries = retry_lines(harness) - retries_before
    reliability_figures["s3_down_10s"]["retries_logged"] = retries
    assert retries > 0, "no stage met the outage: the fault did not hit work in flight"


# Issue 16 defect 4's fault test: outages far beyond the stages' in-process retry budget
# (0.5+1+2+4+8 s), which before issue 16 dead-lettered the record in flight and published
# avatar.failed (or, in the notifier, left the upload in processing until someone replayed).
S3_OUTAGE_S = 120
DATABASE_OUTAGE_S = 60


def _pauses_by_service(harness: PipelineHarness) -> dict[str, int]:
    return {name: text.count('"event": "waiting_for_dependency"') for name, text in harness.logs().items()}


def test_s3_down_120s_and_the_database_down_60s_under_load_end_ready_or_rejected(
    harness: PipelineHarness,
    database_proxy: TcpProxy,
    s3_proxy: TcpProxy,
    mixed_images: list[Path],
    reliability_figures: dict[str, Any],
) -> None:
    """Infrastructure faults pause and retry for as long as the dependency is down; only data faults are
    terminal. The database goes first, while rejections stream to the notifier; S3 goes once the animator
    holds an avatar, so its pack write meets the outage. Both are cut between the services and the server
    (tcp_proxy.py): the broker keeps its own log storage, as a production Kafka would; the broker's own
    outages are test_broker_restart_mid_run_with_durable_storage and test_s3_unavailable_for_ten_seconds."""
    pauses_before = _pauses_by_service(harness)
    uploads = harness.upload_many(mixed_images, UPLOADS_PER_TEST, prefix="outage")
    fault_at = time.monotonic()
    database_proxy.cut()
    try:
        wait_busy(harness, "animator")
        s3_down_at = time.monotonic()
        s3_proxy.cut()
        try:
            time.sleep(max(0.0, fault_at + DATABASE_OUTAGE_S - time.monotonic()))
        finally:
            database_proxy.restore()
        time.sleep(max(0.0, s3_down_at + S3_OUTAGE_S - time.monotonic()))
    finally:
        database_proxy.restore()
        s3_proxy.restore()
    name = f"s3_down_{S3_OUTAGE_S}s_database_down_{DATABASE_OUTAGE_S}s"
    # Every upload ends ready or rejected as its image's label says: none failed, lost or duplicated.
    finish(harness, uploads, reliability_figures, name, fault_at, faults=2)
    figures = reliability_figures[name]
    assert figures["outcomes"]["failed"] == 0 and figures["lost"] == 0
    assert figures["conflicting_terminal_events"] == 0
    pauses = {k: v - pauses_before.get(k, 0) for k, v in _pauses_by_service(harness).items()}
    figures["partition_pauses_logged"] = pauses
    assert pauses.get("notifier", 0) > 0, f"the notifier never waited for its database: {pauses}"
    assert sum(v for k, v in pauses.items() if k != "notifier") > 0, f"no stage waited for S3: {pauses}"
    ids = {u.upload_id.encode() for u in uploads}
    failed = [r for r in harness.read_all(("avatar.failed",))["avatar.failed"] if any(i in r.value for i in ids)]
    assert failed == [], "an outage produced avatar.failed"
