"""Validator service on the real broker and storage: both outcomes, the pre-check, scale-out."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from avatarflow_contracts import (
    FaceRejected,
    FaceValidated,
    ReasonCode,
)
from avatarflow_runtime.auth import mint_token
from validator_support import outcomes, platform_event, publish_uploads, put_original

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.processes import ServiceProcess

pytestmark = pytest.mark.integration
# The key these tests' services verify with (services refuse to start without a strong one).
SECRET = secrets.token_urlsafe(32)
FAST_GROUP_ENV = {
    "AVATARFLOW_KAFKA_SESSION_TIMEOUT_MS": "6000",
    "AVATARFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "AVATARFLOW_KAFKA_MAX_POLL_INTERVAL_MS": "30000",
}


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
