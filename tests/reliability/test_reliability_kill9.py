"""Fault injection: SIGKILL of each service mid-run loses and duplicates nothing (fault_support.py: the invariants)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fault_support import STAGE_IN_SERVICE, TIMEOUT_S, UPLOADS_PER_TEST, finish, wait_in_flight

from avatarflow.devstack.harness import PipelineHarness, Upload
from avatarflow.devstack.processes import SERVICES

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.mark.parametrize("service", SERVICES)
def test_kill_9_each_service_mid_run(
    harness: PipelineHarness,
    mixed_images: list[Path],
    light_images: list[Path],
    reliability_figures: dict[str, Any],
    service: str,
) -> None:
    # Two avatars in flight where the killed stage makes them; one elsewhere (renders dominate time).
    images = mixed_images if service in ("matting", "animator") else light_images
    uploads: list[Upload] = []
    if service == "ingest":
        # Kill ingest while uploads are being posted; the client retries until accepted.
        thread = threading.Thread(
            target=lambda: uploads.extend(harness.upload_many(images, UPLOADS_PER_TEST, prefix="kill-ingest"))
        )
        thread.start()
        time.sleep(0.5)
        fault_at = time.monotonic()
        harness.restart_service("ingest")
        thread.join(timeout=TIMEOUT_S)
        assert len(uploads) == UPLOADS_PER_TEST
    else:
        uploads = harness.upload_many(images, UPLOADS_PER_TEST, prefix=f"kill-{service}")
        wait_in_flight(harness, uploads, STAGE_IN_SERVICE[service])
        time.sleep(0.5)
        fault_at = time.monotonic()
        harness.restart_service(service)  # SIGKILL, then a fresh process
    finish(harness, uploads, reliability_figures, f"kill_9_{service}", fault_at, faults=1)
