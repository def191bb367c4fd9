"""Issue 19's black-box probes of uploads, on the running durable pipeline (five processes, Tansu on
SeaweedFS, PostgreSQL): each failed before the fix.

1+2. A grant is single use: 35 confirms of one ticket run the pipeline once; a PUT of another image
     to the still-valid URL plus a confirm changes nothing, and the public URL serves the bytes its
     advertised pack names.
4.   An upload refused with 503 during a broker stall never ends `failed`.
6.   A declared 100 GB body is answered 413 at once, slow headers get 408.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from avatarflow_contracts import ImageUploaded, decode_event
from reliability_support import ACCEPT_IMAGES, RATE_LIMIT_PER_MINUTE

from avatarflow.devstack.harness import PipelineHarness

pytestmark = pytest.mark.integration


def presign_and_put(harness: PipelineHarness, space: str, token: str, data: bytes) -> dict[str, str]:
    ingest = harness.procs["ingest"].base_url
    grant = httpx.post(
        f"{ingest}/v1/spaces/{space}/uploads/presigned",
        headers={"authorization": f"Bearer {token}"},
        json={"content_type": "image/jpeg", "size": len(data)},
    )
    assert grant.status_code == 200, grant.text
    body = grant.json()
    assert httpx.put(body["put_url"], content=data, headers={"content-type": "image/jpeg"}).status_code == 200
    return body


def confirm(harness: PipelineHarness, space: str, token: str, grant: dict[str, str]) -> int:
    return httpx.post(
        f"{harness.procs['ingest'].base_url}{grant['confirm_url']}",
        headers={"authorization": f"Bearer {token}"},
        json={"upload_ticket": grant["upload_ticket"]},
        timeout=120,
    ).status_code


def records_for(harness: PipelineHarness, upload_id: str) -> dict[str, int]:
    return {
        topic: sum(1 for r in records if upload_id.encode() in r.value) for topic, records in harness.read_all().items()
    }


def test_a_grant_is_single_use_and_the_public_avatar_serves_its_advertised_bytes(
    harness: PipelineHarness, shared_dir: Path
) -> None:
    images = shared_dir / "avatar-images"
    first, second = (images / ACCEPT_IMAGES[0]).read_bytes(), (images / ACCEPT_IMAGES[1]).read_bytes()
    space, editor = f"probe-grant-{uuid.uuid4().hex[:6]}", f"probe-grant-editor-{uuid.uuid4().hex[:6]}"
    token = harness.token(space, editor)
    grant = presign_and_put(harness, space, token, first)
    # 35 confirms of one ticket (the probe's figure): before, 35 x 202 and 38 full pipeline runs.
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: confirm(harness, space, token, grant), range(35)))
    # Exactly one is accepted; the others are refused as spent (409) or, since confirms count against
    # the editor's rate limit (RATE_LIMIT_PER_MINUTE in this suite), throttled (429).
    assert codes.count(202) == 1 and set(codes) == {202, 409, 429}, codes
    assert codes.count(429) == 35 - (RATE_LIMIT_PER_MINUTE - 1), codes  # the presign took one slot
    # The PUT URL is still valid: another image there plus another confirm must change nothing.
    put = httpx.put(grant["put_url"], content=second, headers={"content-type": "image/jpeg"})
    assert put.status_code == 200
    assert confirm(harness, space, harness.token(space, editor + "-2"), grant) == 401  # not their ticket
    assert confirm(harness, space, token, grant) in (409, 429)

    upload_id = grant["upload_id"]
    assert harness.wait_terminal([upload_id], timeout_s=400) == {upload_id: "ready"}
    counts = records_for(harness, upload_id)
    assert counts["image.uploaded"] == 1 and counts["face.validated"] == 1, counts
    assert counts["avatar.rendered"] == 1, counts
    (uploaded,) = [
        decode_event(r.value, ImageUploaded)
        for r in harness.read_all(("image.uploaded",))["image.uploaded"]
        if upload_id.encode() in r.value
    ]
    assert uploaded.original.sha256 == hashlib.sha256(first).hexdigest()

    notifier = harness.procs["notifier"].base_url
    status = httpx.get(
        f"{notifier}/v1/spaces/{space}/avatar-status", headers={"authorization": f"Bearer {token}"}
    ).json()
    pack = status["latest_upload"]["pack"]
    assert status["status"] == "ready" and status["latest_upload"]["upload_id"] == upload_id
    for asset in ("poster", "manifest", "idle_loop"):
        served = httpx.get(f"{notifier}/v1/public/assets/spaces/{space}/{asset}", timeout=30)
        assert served.status_code == 200, (asset, served.text[:200])
        assert hashlib.sha256(served.content).hexdigest() == pack[asset]["sha256"], asset


def test_a_503_during_a_broker_stall_does_not_end_failed(harness: PipelineHarness, shared_dir: Path) -> None:
    image = (shared_dir / "avatar-images" / ACCEPT_IMAGES[2]).read_bytes()
    space, editor = f"probe-stall-{uuid.uuid4().hex[:6]}", f"probe-stall-editor-{uuid.uuid4().hex[:6]}"
    token = harness.token(space, editor)
    harness.stack.pause_component("tansu")
    try:
        stalled = harness.post_upload(space, image, "stall.jpg", token, "image/jpeg")
    finally:
        harness.stack.resume_component("tansu")
    assert stalled.status_code == 503, stalled.text
    # The client, told 503, retries the same file without a key: the same upload, never a `failed` one.
    deadline = time.monotonic() + 120
    while True:
        retried = harness.post_upload(space, image, "stall.jpg", token, "image/jpeg")
        if retried.status_code == 202 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert retried.status_code == 202, retried.text
    upload_id = retried.json()["upload_id"]
    statuses = harness.wait_terminal([upload_id], timeout_s=400)
    assert statuses == {upload_id: "ready"}, statuses
    everything = harness.read_all()
    in_space = {
        str(decode_event(r.value, ImageUploaded).upload_id)
        for r in everything["image.uploaded"]
        if space.encode() in r.value
    }
    assert in_space == {upload_id}  # whatever the stalled broker stored names this same upload
    assert not any(upload_id.encode() in r.value for r in everything["avatar.failed"])


def raw(port: int, data: bytes, wait_s: float = 30) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


@pytest.mark.parametrize("service", ["ingest", "validator", "notifier"])
def test_a_huge_declared_body_is_refused_at_once_and_slow_headers_time_out(
    harness: PipelineHarness, service: str
) -> None:
    port = harness.procs[service].port
    path = {"ingest": "/v1/spaces/s/uploads", "validator": "/v1/spaces/s/precheck"}.get(service, "/v1/spaces/s/x")
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {100 * 1024**3}\r\n\r\n".encode()
    answer, seconds = raw(port, head)
    assert answer.startswith(b"HTTP/1.1 413") and seconds < 5, (answer[:200], seconds)
    answer, seconds = raw(port, f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 408") and 9 <= seconds < 20, (answer[:200], seconds)
