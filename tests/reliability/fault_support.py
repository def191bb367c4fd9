"""What the fault tests share: the load they put on the pipeline and how they wait and record.

Each fault test uploads a small mix of images (2 avatars to make, 4 rejections), injects its fault while
they are in flight, waits until every upload is terminal and checks the harness invariants:
(a) one terminal status per upload in the notifier's database, (b) every output object present and
matching its sha256, (c) no conflicting terminal events, (d) every consumer group's lag back to 0.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from avatarflow.devstack.harness import PipelineHarness, Upload

UPLOADS_PER_TEST = 6
TIMEOUT_S = 300


def expected_status(image_name: str) -> str:
    """The outcome the image's label names (avatar-images/labels.csv: accept_* or a reason)."""
    return "ready" if image_name.startswith("accept_") else "rejected"


def wait_in_flight(
    harness: PipelineHarness, uploads: list[Upload], stage: str | None = None, timeout_s: float = 60
) -> None:
    """Wait until the notifier shows an upload in ``stage`` (its next service is working on it), or
    until any upload of the batch has a row when no stage is named."""
    deadline = time.monotonic() + timeout_s
    ids = [u.upload_id for u in uploads]
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            rows = harness.db_rows(ids)
            if rows and (stage is None or any(r["stage"] == stage for r in rows.values())):
                return
        time.sleep(0.1)
    raise TimeoutError(f"no upload reached stage {stage} in {timeout_s}s")


def wait_busy(harness: PipelineHarness, service: str, timeout_s: float = 60) -> None:
    """Wait until ``service`` is processing an event (its ``avatarflow_in_flight`` gauge is above 0).

    The notifier's stage is no proof: it reads the same topic as the next service, which may not have
    fetched the event yet, and a broker outage can hold that fetch back.
    """
    url = f"{harness.procs[service].base_url}/metrics"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            families = text_string_to_metric_families(httpx.get(url, timeout=5).text)
            busy = [
                sample.value
                for family in families
                if family.name == "avatarflow_in_flight"
                for sample in family.samples
                if sample.labels.get("service") == service
            ]
            if any(value > 0 for value in busy):
                return
        time.sleep(0.05)
    raise TimeoutError(f"{service} started no work in {timeout_s}s")


def retry_lines(harness: PipelineHarness) -> int:
    """Retry log lines (handler retries and publish retries) in every service's log so far."""
    return sum(
        text.count('"event": "retrying"') + text.count('"event": "publish_retry"') for text in harness.logs().values()
    )


# The notifier's stage while the service in question works on the upload (docs/architecture.md).
STAGE_IN_SERVICE = {"validator": "uploaded", "matting": "validated", "animator": "matted", "notifier": None}


def finish(
    harness: PipelineHarness,
    uploads: list[Upload],
    figures: dict[str, Any],
    name: str,
    fault_at: float,
    faults: int,
) -> None:
    ids = [u.upload_id for u in uploads]
    statuses = harness.wait_terminal(ids, TIMEOUT_S)
    recovered_s = time.monotonic() - fault_at
    report = harness.assert_invariants(ids)
    expected = {u.upload_id: expected_status(u.source_name) for u in uploads}
    assert statuses == expected, (statuses, expected)
    figures[name] = {
        "uploads": len(ids),
        "faults": faults,
        "lost": sum(1 for u in ids if statuses.get(u) not in ("ready", "rejected", "failed")),
        "conflicting_terminal_events": report.conflicting_terminal_events,
        "redelivered_terminal_events": report.duplicate_terminal_events,
        "objects_verified": report.objects_checked,
        "seconds_from_fault_to_all_terminal": round(recovered_s, 1),
        "outcomes": {s: list(statuses.values()).count(s) for s in ("ready", "rejected", "failed")},
    }
