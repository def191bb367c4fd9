"""Authorization matrix over real HTTP: every token kind against every endpoint."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import jwt
import pytest
from avatarflow_notifier.adapters.store import StatusStore
from avatarflow_notifier.handlers import apply_event
from avatarflow_runtime.auth import mint_token
from notifier_factories import T0, Run
from notifier_fixtures import JWT_SECRET

SPACE_A = f"authz-a-{uuid.uuid4().hex[:8]}"
SPACE_B = f"authz-b-{uuid.uuid4().hex[:8]}"
SPACE_UNKNOWN = f"authz-none-{uuid.uuid4().hex[:8]}"


def tokens() -> dict[str, str | None]:
    now = time.time()
    claims = {
        "sub": "mallory", "space_id": SPACE_A, "role": "editor", "iat": int(now), "exp": int(now) + 600,
        "iss": "avatarflow", "aud": "avatarflow",
    }  # fmt: skip
    return {
        "editor_a": mint_token(JWT_SECRET, subject="alice", space_id=SPACE_A),
        "editor_b": mint_token(JWT_SECRET, subject="bob", space_id=SPACE_B),
        "viewer_a": mint_token(JWT_SECRET, subject="victor", space_id=SPACE_A, role="viewer"),
        "expired": mint_token(JWT_SECRET, subject="alice", space_id=SPACE_A, ttl_s=60, now=now - 3600),
        "forged": mint_token("some-other-secret-0123456789abcdef", subject="alice", space_id=SPACE_A),
        "alg_none": jwt.encode(claims, key=None, algorithm="none"),
        "malformed": "not-a.jwt",
        "missing": None,
    }


EDITOR_EXPECTED = {
    "editor_a": 200,
    "editor_b": 403,
    "viewer_a": 403,
    "expired": 401,
    "forged": 401,
    "alg_none": 401,
    "malformed": 401,
    "missing": 401,
}

# (method, path template, json body)
EDITOR_ENDPOINTS = [
    ("GET", "/v1/spaces/{space}/avatar-status", None),
    ("GET", "/v1/spaces/{space}/uploads", None),
    ("POST", "/v1/spaces/{space}/prompt/dismiss", None),
    ("GET", "/v1/spaces/{space}/pregenerated-avatars", None),
    ("POST", "/v1/spaces/{space}/avatar/choose-pregenerated", {"avatar_id": "aurora"}),
    ("GET", "/v1/spaces/{space}/events", None),
]
PUBLIC_ENDPOINTS = [
    ("GET", "/v1/public/spaces/{space}/avatar"),
    ("GET", "/v1/public/assets/spaces/{space}/poster"),
    ("GET", "/v1/public/assets/catalogue/aurora/poster"),
    ("GET", "/editor/{space}"),
    ("GET", "/spaces/{space}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
]


@pytest.fixture(scope="module")
async def spaces_with_data(live_server):
    """Space A and B each have a rejected upload (B's data must never reach A's editor)."""
    store = StatusStore.from_url(live_server.settings.database_url, support_url="x")
    for space in (SPACE_A, SPACE_B):
        run = Run(space, T0)
        await apply_event(store, run.uploaded())
        await apply_event(store, run.rejected())
    await store.close()
    return live_server


async def call(client: httpx.AsyncClient, method: str, path: str, token: str | None, body=None, query=False):
    headers = {}
    params = {}
    if token is not None:
        if query:
            params["access_token"] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
    if path.endswith("/events"):
        # A stream: read the status line and the first event only.
        async with client.stream(method, path, headers=headers, params=params) as response:
            first = ""
            if response.status_code == 200:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        first = line[5:].strip()
                        break
            else:
                first = (await response.aread()).decode()
            return response.status_code, first
    response = await client.request(method, path, headers=headers, params=params, json=body)
    return response.status_code, response.text


@pytest.mark.parametrize("cell", list(EDITOR_EXPECTED))
@pytest.mark.parametrize(("method", "template", "body"), EDITOR_ENDPOINTS)
async def test_editor_endpoint_matrix(spaces_with_data, cell, method, template, body):
    token = tokens()[cell]
    async with httpx.AsyncClient(base_url=spaces_with_data.base_url, timeout=15) as client:
        status_code, text = await call(client, method, template.format(space=SPACE_A), token, body)
        assert status_code == EDITOR_EXPECTED[cell], text
        if status_code == 401:
            assert text == '{"error":"unauthorized","detail":"missing or invalid credentials"}'
        if status_code == 403:
            assert text == '{"error":"forbidden","detail":"not an editor of this space"}'
        if status_code == 200:
            assert SPACE_B not in text  # nothing of another space
        # Space B (exists) and an unknown space answer the A editor identically: 403, no leak.
        if cell == "editor_a":
            b = await call(client, method, template.format(space=SPACE_B), token, body)
            unknown = await call(client, method, template.format(space=SPACE_UNKNOWN), token, body)
            assert b == unknown == (403, '{"error":"forbidden","detail":"not an editor of this space"}')


@pytest.mark.parametrize("cell", list(EDITOR_EXPECTED))
async def test_event_stream_accepts_the_token_as_query_parameter(spaces_with_data, cell):
    token = tokens()[cell]
    async with httpx.AsyncClient(base_url=spaces_with_data.base_url, timeout=15) as client:
        status_code, text = await call(client, "GET", f"/v1/spaces/{SPACE_A}/events", token, query=True)
    assert status_code == EDITOR_EXPECTED[cell]
    if status_code == 200:
        assert f'"space_id":"{SPACE_A}"' in text


async def test_query_token_is_ignored_outside_the_event_stream(spaces_with_data):
    async with httpx.AsyncClient(base_url=spaces_with_data.base_url, timeout=15) as client:
        status_code, _ = await call(
            client, "GET", f"/v1/spaces/{SPACE_A}/avatar-status", tokens()["editor_a"], query=True
        )
    assert status_code == 401


@pytest.mark.parametrize(("method", "template"), PUBLIC_ENDPOINTS)
async def test_public_endpoints_ignore_credentials(spaces_with_data, method, template):
    path = template.format(space=SPACE_A)
    async with httpx.AsyncClient(base_url=spaces_with_data.base_url, timeout=15) as client:
        answers = {}
        for cell, token in tokens().items():
            status_code, text = await call(client, method, path, token)
            answers[cell] = (status_code, text)
    assert {s for s, _ in answers.values()} == {200}
    if template not in ("/readyz", "/healthz"):
        assert len({t for _, t in answers.values()}) == 1  # identical whoever asks


async def test_viewer_sees_no_editor_field_on_the_public_avatar(spaces_with_data):
    async with httpx.AsyncClient(base_url=spaces_with_data.base_url, timeout=15) as client:
        headers = {"Authorization": f"Bearer {tokens()['viewer_a']}"}
        body = (await client.get(f"/v1/public/spaces/{SPACE_A}/avatar", headers=headers)).json()
    pack_fields = {"viseme_atlas", "preview_clip", "alternates", "files"}
    assert set(body) == {"kind", "poster", "idle_loop", "manifest", *pack_fields}
    text = str(body)
    for editor_only in ("reason", "prompt", "status", "upload", "blurry", "rejected"):
        assert editor_only not in text


async def test_concurrent_matrix_requests_do_not_interfere(spaces_with_data):
    token_a = tokens()["editor_a"]
    async with httpx.AsyncClient(base_url=spaces_with_data.base_url, timeout=15) as client:
        results = await asyncio.gather(
            *[call(client, "GET", f"/v1/spaces/{space}/avatar-status", token_a) for space in [SPACE_A, SPACE_B] * 5]
        )
    assert [s for s, _ in results] == [200, 403] * 5
