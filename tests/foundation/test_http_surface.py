"""What every HTTP service shows a careless or hostile client (issue 19, "also"), against real ingest
processes: one error shape (FastAPI's 422 included, never echoing the input), /docs and /openapi.json
switchable off, security events as structured log lines, HTTP statuses counted on /metrics."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from avatarflow_runtime.auth import mint_token

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.processes import ServiceProcess

pytestmark = pytest.mark.integration
SECRET = secrets.token_urlsafe(32)


def start(stack: StackEndpoints, tmp: Path, **env: str) -> ServiceProcess:
    full = {**stack.service_env(), "AVATARFLOW_JWT_SECRET": SECRET, **env}
    return ServiceProcess("ingest", full, tmp / "ingest.log").start()


@pytest.fixture(scope="module")
def ingest(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    proc = start(
        stack,
        tmp_path_factory.mktemp("surface"),
        AVATARFLOW_HTTP_API_DOCS="false",
        AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE="3",
    )
    yield proc
    proc.stop()


def auth(space: str, sub: str = "surface-editor", role: str = "editor") -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(SECRET, subject=sub, space_id=space, role=role)}"}  # type: ignore[arg-type]


def test_every_error_has_one_shape_and_422_never_echoes_the_input(ingest: ServiceProcess) -> None:
    hostile = "<script>alert(1)</script>"
    answers = {
        "422 body": httpx.post(
            f"{ingest.base_url}/v1/spaces/s1/uploads/presigned",
            headers=auth("s1", sub="shape-editor"),
            json={"content_type": hostile, "size": -5},
        ),
        "422 json": httpx.post(
            f"{ingest.base_url}/v1/spaces/s1/uploads/presigned",
            headers={**auth("s1", sub="shape-editor"), "content-type": "application/json"},
            content=b'{"content_type": "' + hostile.encode() + b'", ',
        ),
        "422 path": httpx.post(
            f"{ingest.base_url}/v1/spaces/s1/uploads/not-a-uuid/confirm",
            headers=auth("s1", sub="shape-editor"),
            json={"upload_ticket": hostile},
        ),
        "404": httpx.get(f"{ingest.base_url}/v1/nothing-here"),
        "405": httpx.delete(f"{ingest.base_url}/healthz"),
        "401": httpx.post(f"{ingest.base_url}/v1/spaces/s1/uploads/presigned", json={}),
    }
    for what, response in answers.items():
        assert response.status_code == int(what[:3]), (what, response.status_code, response.text)
        body = response.json()
        assert set(body) == {"error", "detail"}, (what, body)
        assert body["error"] and len(body["detail"]) > 5, (what, body)
        assert hostile not in response.text and "input" not in body, (what, response.text)
    assert "content_type" in answers["422 body"].json()["detail"]  # says where the problem is


def test_api_docs_can_be_switched_off(stack: StackEndpoints, ingest: ServiceProcess, tmp_path: Path) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = httpx.get(f"{ingest.base_url}{path}")
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    default = start(stack, tmp_path)  # the default (development) still serves them
    try:
        assert httpx.get(f"{default.base_url}/openapi.json").json()["info"]["title"] == "avatarflow ingest"
        assert httpx.get(f"{default.base_url}/docs").status_code == 200
    finally:
        default.stop()


def security_lines(proc: ServiceProcess) -> list[dict[str, object]]:
    lines = []
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if '"security_event"' in line:
            lines.append(json.loads(line))
    return lines


def test_security_events_are_logged_and_statuses_counted(ingest: ServiceProcess) -> None:
    base = ingest.base_url
    forged = mint_token("forged-" + secrets.token_urlsafe(32), subject="x", space_id="s2")
    assert httpx.post(f"{base}/v1/spaces/s2/uploads/presigned", headers={"authorization": f"Bearer {forged}"},
                      json={"content_type": "image/jpeg", "size": 10}).status_code == 401  # fmt: skip
    viewer = auth("s2", sub="sec-viewer", role="viewer")
    assert httpx.post(f"{base}/v1/spaces/s2/uploads/presigned", headers=viewer,
                      json={"content_type": "image/jpeg", "size": 10}).status_code == 403  # fmt: skip
    editor = auth("s2", sub="sec-editor")
    grants = [
        httpx.post(f"{base}/v1/spaces/s2/uploads/presigned", headers=editor, json={"content_type": "image/jpeg",
                   "size": 10}) for _ in range(4)
    ]  # fmt: skip
    assert [g.status_code for g in grants] == [200, 200, 200, 429]
    confirm = httpx.post(
        f"{base}{grants[0].json()['confirm_url']}", headers=auth("s2", sub="other-editor"),
        json={"upload_ticket": grants[0].json()["upload_ticket"]},
    )  # fmt: skip
    assert confirm.status_code == 401  # another editor's ticket

    lines = security_lines(ingest)
    kinds = [line["kind"] for line in lines]
    assert {"unauthorized", "forbidden", "presign_granted", "rate_limited"} <= set(kinds), kinds
    assert kinds.count("presign_granted") >= 3
    by_kind = {line["kind"]: line for line in lines}
    routes = {line["route"] for line in lines if line["kind"] == "unauthorized"}
    assert routes == {"/v1/spaces/{space_id}/uploads/presigned", "/v1/spaces/{space_id}/uploads/{upload_id}/confirm"}
    assert by_kind["rate_limited"]["subject"] == "sec-editor" and by_kind["rate_limited"]["status"] == 429
    assert any(line.get("reason") == "upload ticket does not match this upload" for line in lines)
    log_text = ingest.log_path.read_text(errors="replace")
    for secret_value in (forged.split(".")[2], grants[0].json()["upload_ticket"].split(".")[2], SECRET):
        assert secret_value not in log_text

    metrics = httpx.get(f"{base}/metrics").text
    for status in ("200", "401", "403", "429"):
        pattern = (
            r'avatarflow_http_responses_total\{method="POST",route="/v1/spaces/\{space_id\}/uploads/presigned",'
            rf'service="ingest",status="{status}"\}} ([0-9.]+)'
        )
        found = re.search(pattern, metrics)
        assert found and float(found.group(1)) >= 1, (status, [m for m in metrics.splitlines() if "http_resp" in m])
    assert "s2" not in re.sub(r"#.*", "", metrics)  # labels carry templates, not space ids
