"""Security checks on the running pipeline: authorisation, data exposure, keys, presigning, limits, logs.

The notifier has its own authorisation matrix (tests/notifier); here every authenticated endpoint
of ingest (upload, presigned, confirm) and the validator's pre-check get the same matrix.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from avatarflow_ingest.settings import IngestSettings
from avatarflow_runtime.auth import mint_token
from reliability_support import ACCEPT_IMAGES, RATE_LIMIT_PER_MINUTE

from avatarflow.devstack.harness import PipelineHarness, Upload

pytestmark = pytest.mark.integration
SPACE_A = "sec-space-a"
SPACE_B = "sec-space-b"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
ORIGINAL_KEY = re.compile(rf"^originals/({UUID_RE})/([A-Za-z0-9_-]{{22,}})\.(jpg|png|webp|heic|bin)$")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _credentials(harness: PipelineHarness) -> dict[str, tuple[str | None, set[int]]]:
    """Case -> (Authorization header value or None, allowed status codes)."""
    secret = harness.secret
    now = time.time()

    def editor(space: str, **kw: object) -> str:
        # A fresh subject per request keeps the per-editor rate limit out of the matrix.
        return mint_token(secret, subject=f"sec-{uuid.uuid4().hex[:8]}", space_id=space, **kw)  # type: ignore[arg-type]

    valid = editor(SPACE_A)
    header, payload, _ = valid.split(".")
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + payload + "."
    claims = jwt.decode(valid, options={"verify_signature": False})
    tampered = f"{header}.{_b64({**claims, 'space_id': SPACE_B})}.{valid.split('.')[2]}"
    denied = {401}
    return {
        "editor_of_space": (f"Bearer {editor(SPACE_A)}", set()),  # anything but 401/403
        "editor_of_other_space": (f"Bearer {editor(SPACE_B)}", {403}),
        "viewer": (f"Bearer {editor(SPACE_A, role='viewer')}", {403}),
        "expired": (f"Bearer {editor(SPACE_A, ttl_s=60, now=now - 3600)}", denied),
        "forged_signature": (
            f"Bearer {mint_token('another-secret-0123456789abcdef-forged', subject='x', space_id=SPACE_A)}",
            denied,
        ),
        "alg_none": (f"Bearer {unsigned}", denied),
        "tampered_claims": (f"Bearer {tampered}", denied),
        "missing": (None, denied),
        "malformed": ("Bearer not.a.jwt", denied),
        "wrong_scheme": (f"Basic {valid}", denied),
    }


def _endpoints(harness: PipelineHarness, image: bytes) -> dict[str, Callable[[dict[str, str]], httpx.Response]]:
    ingest = harness.procs["ingest"].base_url
    validator = harness.procs["validator"].base_url

    def confirm(headers: dict[str, str]) -> httpx.Response:
        # A real ticket from a real presign by an editor of A with the same subject as the credentials
        # under test, so only the credentials' validity and grants vary.
        try:
            subject = jwt.decode(headers["authorization"].split(" ", 1)[1], options={"verify_signature": False})["sub"]
        except (KeyError, IndexError, jwt.PyJWTError):
            subject = f"sec-confirm-{uuid.uuid4().hex[:8]}"
        owner = mint_token(harness.secret, subject=subject, space_id=SPACE_A)
        started = httpx.post(
            f"{ingest}/v1/spaces/{SPACE_A}/uploads/presigned",
            json={"content_type": "image/jpeg", "size": len(image)},
            headers={"authorization": f"Bearer {owner}"},
            timeout=30,
        ).json()
        return httpx.post(
            f"{ingest}{started['confirm_url']}",
            json={"upload_ticket": started["upload_ticket"]},
            headers=headers,
            timeout=30,
        )

    return {
        "ingest upload": lambda h: httpx.post(
            f"{ingest}/v1/spaces/{SPACE_A}/uploads",
            files={"file": ("x.jpg", b"", "image/jpeg")},
            headers=h,
            timeout=30,
        ),
        "ingest presigned": lambda h: httpx.post(
            f"{ingest}/v1/spaces/{SPACE_A}/uploads/presigned",
            json={"content_type": "image/jpeg", "size": 1000},
            headers=h,
            timeout=30,
        ),
        "ingest confirm": confirm,
        "validator precheck": lambda h: httpx.post(
            f"{validator}/v1/spaces/{SPACE_A}/precheck",
            files={"file": ("x.jpg", image, "image/jpeg")},
            headers=h,
            timeout=60,
        ),
    }


def test_authorization_matrix_on_every_authenticated_endpoint(harness: PipelineHarness, shared_dir: Path) -> None:
    image = (shared_dir / "avatar-images" / ACCEPT_IMAGES[0]).read_bytes()
    wrong = []
    for endpoint, call in _endpoints(harness, image).items():
        for case, (authorization, allowed) in _credentials(harness).items():
            headers = {"authorization": authorization} if authorization else {}
            response = call(headers)
            ok = response.status_code in allowed if allowed else response.status_code not in (401, 403, 500)
            if response.status_code >= 500 or not ok:
                wrong.append(f"{endpoint} / {case}: {response.status_code} {response.text[:160]}")
            if response.status_code == 401 and response.headers.get("www-authenticate") != "Bearer":
                wrong.append(f"{endpoint} / {case}: 401 without WWW-Authenticate: Bearer")
            if authorization and authorization.split(" ", 1)[-1] in response.text:
                wrong.append(f"{endpoint} / {case}: the token is echoed in the response")
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="module")
def processed(harness: PipelineHarness, shared_dir: Path) -> list[Upload]:
    """Two uploads processed end to end (one with a telling file name) before the exposure checks."""
    folder = shared_dir / "avatar-images"
    telling = folder.parent / "avatar-images" / ACCEPT_IMAGES[1]
    uploads = [
        harness.upload(folder / ACCEPT_IMAGES[0], f"sec-exposure-{uuid.uuid4().hex[:6]}", "sec-exposure-editor"),
    ]
    space = f"sec-exposure-{uuid.uuid4().hex[:6]}"
    response = harness.post_upload(
        space, telling.read_bytes(), "jane-doe-passport-photo.jpg", harness.token(space, "sec-jane-doe")
    )
    assert response.status_code == 202, response.text
    uploads.append(Upload(response.json()["upload_id"], space, "sec-jane-doe", "", "jane-doe-passport-photo.jpg"))
    harness.wait_terminal([u.upload_id for u in uploads], timeout_s=300)
    return uploads


def test_operational_endpoints_expose_no_personal_data(harness: PipelineHarness, processed: list[Upload]) -> None:
    rows = harness.db_rows()
    with harness.db.connect() as conn:
        editors = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT editor_id FROM notifier_uploads")}
    personal = {*rows, *(r["space_id"] for r in rows.values()), *editors}
    personal |= {u.token for u in processed if u.token} | {"jane-doe-passport-photo", *ACCEPT_IMAGES}
    assert len(rows) >= len(processed)
    leaks = []
    for name, proc in harness.procs.items():
        for path in ("/metrics", "/healthz", "/readyz"):
            body = httpx.get(f"{proc.base_url}{path}", timeout=10).text
            leaks += [f"{name}{path}: {value}" for value in personal if value and value in body]
    assert not leaks, leaks


def test_object_keys_are_random_and_never_the_file_name(harness: PipelineHarness, processed: list[Upload]) -> None:
    keys = [
        obj["Key"]
        for page in harness.s3.get_paginator("list_objects_v2").paginate(
            Bucket=harness.endpoints.bucket, Prefix="originals/"
        )
        for obj in page.get("Contents", [])
    ]
    assert keys
    randoms = []
    for key in keys:
        match = ORIGINAL_KEY.match(key)
        assert match, f"original key not in the documented random scheme: {key}"
        randoms.append(match.group(2))
        assert "jane" not in key.lower() and "passport" not in key.lower() and "accept_photo" not in key
    assert len(set(randoms)) == len(randoms), "random key parts repeat"
    for upload in processed:
        assert any(f"originals/{upload.upload_id}/" in k for k in keys)


def test_presigned_urls_expire_within_the_configured_bound(harness: PipelineHarness) -> None:
    bound = IngestSettings().ingest_presigned_expiry_s
    token = mint_token(harness.secret, subject=f"sec-presign-{uuid.uuid4().hex[:6]}", space_id=SPACE_A)
    response = httpx.post(
        f"{harness.procs['ingest'].base_url}/v1/spaces/{SPACE_A}/uploads/presigned",
        json={"content_type": "image/png", "size": 5000},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    query = parse_qs(urlparse(body["put_url"]).query)
    expires = int(query["X-Amz-Expires"][0])
    assert 0 < expires <= bound and expires == body["expires_in"]
    assert query.get("X-Amz-Signature") and query.get("X-Amz-Date")
    assert urlparse(body["put_url"]).path.split("/", 2)[2].startswith("originals/")
    # The ticket that confirms the upload expires with the URL.
    ticket = jwt.decode(body["upload_ticket"], harness.secret, algorithms=["HS256"])
    assert ticket["exp"] - time.time() <= bound + 5


def test_uploads_are_rate_limited_per_editor(harness: PipelineHarness) -> None:
    space = f"sec-rate-{uuid.uuid4().hex[:6]}"
    token = harness.token(space, f"sec-rate-editor-{uuid.uuid4().hex[:6]}")
    codes = [harness.post_upload(space, b"", "empty.jpg", token).status_code for _ in range(RATE_LIMIT_PER_MINUTE + 2)]
    assert all(400 <= c < 500 and c != 429 for c in codes[:RATE_LIMIT_PER_MINUTE]), codes
    assert codes[RATE_LIMIT_PER_MINUTE:] == [429, 429], codes
    limited = harness.post_upload(space, b"", "empty.jpg", token)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # Another editor is not affected.
    other = harness.post_upload(space, b"", "empty.jpg", harness.token(space, f"sec-other-{uuid.uuid4().hex[:6]}"))
    assert other.status_code != 429


def test_no_token_reaches_any_log(harness: PipelineHarness, shared_dir: Path) -> None:
    space = f"sec-logs-{uuid.uuid4().hex[:6]}"
    upload = harness.upload(shared_dir / "avatar-images" / ACCEPT_IMAGES[2], space, "sec-logs-editor")
    notifier = harness.procs["notifier"].base_url
    query_token = harness.token(space, "sec-logs-editor")
    with httpx.stream("GET", f"{notifier}/v1/spaces/{space}/events?access_token={query_token}", timeout=10) as stream:
        assert stream.status_code == 200
        next(stream.iter_bytes())
    header_token = harness.token(space, "sec-logs-editor")
    status = httpx.get(
        f"{notifier}/v1/spaces/{space}/avatar-status",
        headers={"authorization": f"Bearer {header_token}"},
        timeout=10,
    )
    assert status.status_code == 200
    bad_token = mint_token("another-secret-0123456789abcdef-forged", subject="x", space_id=space)
    for base in (harness.procs["ingest"].base_url, notifier):
        httpx.get(f"{base}/v1/spaces/{space}/avatar-status?access_token={bad_token}", timeout=10)
    httpx.get(f"{notifier}/v1/spaces/{space}/events?access_token={bad_token}", timeout=10)
    harness.wait_terminal([upload.upload_id], timeout_s=300)
    time.sleep(1)  # let the services flush their last lines
    secrets = {
        "upload token": upload.token,
        "query token": query_token,
        "header token": header_token,
        "rejected token": bad_token,
        "jwt secret": harness.secret,
        "s3 secret": harness.endpoints.s3_secret_key,
    }
    leaks = [
        f"{service}: {what}"
        for service, text in harness.logs().items()
        for what, value in secrets.items()
        if value in text or value.split(".")[-1] in text
    ]
    assert not leaks, leaks
