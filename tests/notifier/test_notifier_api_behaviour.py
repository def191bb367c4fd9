"""API behaviour over real HTTP: public privacy, live SSE updates, assets, logs and metrics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import timedelta

import httpx
import pytest
from avatarflow_notifier.adapters.store import StatusStore
from avatarflow_notifier.handlers import apply_event
from avatarflow_runtime.auth import mint_token
from notifier_factories import T0, Run
from notifier_fixtures import BUCKET, JWT_SECRET


def editor(space: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, subject='alice', space_id=space)}"}


def new_space(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def replica_store(server) -> StatusStore:
    """Another notifier replica writing to the same database (its changes reach SSE by polling)."""
    return StatusStore.from_url(server.settings.database_url, support_url="x")


async def public_view(client: httpx.AsyncClient, space: str) -> tuple:
    avatar = await client.get(f"/v1/public/spaces/{space}/avatar")
    assets = [
        (a, (await client.get(f"/v1/public/assets/spaces/{space}/{a}")).status_code)
        for a in ("poster", "idle_loop", "manifest")
    ]
    headers = {k: v for k, v in avatar.headers.items() if k not in ("date",)}
    return avatar.status_code, avatar.text, headers, assets


async def test_public_avatar_is_identical_for_rejected_and_no_upload(live_server):
    rejected, empty = new_space("rejected"), new_space("empty")
    store = await replica_store(live_server)
    run = Run(rejected, T0)
    await apply_event(store, run.uploaded())
    await apply_event(store, run.rejected())
    await store.close()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        a, b = await public_view(client, rejected), await public_view(client, empty)
    assert a == b
    body = json.loads(a[1])
    assert body["kind"] == "default" and body["poster"]["url"].startswith("/v1/public/assets/catalogue/aurora/")


async def test_public_avatar_streams_the_ready_pack_from_s3(live_server, s3):
    space = new_space("ready")
    run = Run(space, T0)
    rendered = run.rendered()
    video = bytes(range(256)) * 40
    s3.client.put_object(Bucket=BUCKET, Key=rendered.idle_loop.key, Body=video, ContentType="video/webm")
    s3.client.put_object(Bucket=BUCKET, Key=rendered.poster.key, Body=b"\x89PNG-poster", ContentType="image/png")
    store = await replica_store(live_server)
    await apply_event(store, run.uploaded())
    await apply_event(store, rendered)
    await store.close()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        avatar = (await client.get(f"/v1/public/spaces/{space}/avatar")).json()
        assert avatar["kind"] == "custom"
        assert rendered.idle_loop.key not in json.dumps(avatar)  # keys stay internal
        idle = await client.get(avatar["idle_loop"]["url"])
        assert idle.status_code == 200 and idle.content == video
        assert idle.headers["content-type"] == "video/webm"
        partial = await client.get(avatar["idle_loop"]["url"], headers={"Range": "bytes=10-19"})
        assert partial.status_code == 206 and partial.content == video[10:20]
        assert (await client.get(avatar["poster"]["url"])).content == b"\x89PNG-poster"
        # Only the current avatar's named assets are served: never an arbitrary key or the original.
        assert (await client.get(f"/v1/public/assets/spaces/{space}/original")).status_code == 404
        assert (await client.get(f"/v1/public/assets/spaces/{space}/original.png")).status_code == 404


PACK_FILES = ("manifest.json", "idle.webm", "visemes.png", "preview.webm", "poster.png", "idle-alpha.mp4")


async def ready_space_with_files(s3, prefix: str) -> tuple[str, Run, dict[str, bytes]]:
    """A space whose current avatar is a ready pack with an alternate; every file is in S3."""
    space = new_space(prefix)
    run = Run(space, T0)
    rendered = run.rendered(alternates=("idle-alpha.mp4",))
    objects = [rendered.manifest, rendered.idle_loop, rendered.viseme_atlas, rendered.preview_clip, rendered.poster]
    refs = {r.key.rsplit("/", 1)[-1]: r for r in [*objects, *rendered.alternates]}
    blobs = {name: name.encode() * 200 + uuid.uuid4().bytes for name in PACK_FILES}
    for name, data in blobs.items():
        s3.client.put_object(Bucket=BUCKET, Key=refs[name].key, Body=data, ContentType=refs[name].content_type)
    return space, run, blobs


async def test_public_route_serves_every_file_the_manifest_names(live_server, s3):
    space, run, blobs = await ready_space_with_files(s3, "files")
    store = await replica_store(live_server)
    await apply_event(store, run.uploaded())
    await apply_event(store, run.rendered(alternates=("idle-alpha.mp4",)))
    await store.close()  # the pack (alternates included) comes back from the database
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        avatar = (await client.get(f"/v1/public/spaces/{space}/avatar")).json()
        assert sorted(avatar["files"]) == sorted(PACK_FILES)
        assert [a["url"] for a in avatar["alternates"]] == [avatar["files"]["idle-alpha.mp4"]["url"]]
        assert avatar["alternates"][0]["content_type"] == "video/mp4"
        assert f"avatars/{space}" not in json.dumps(avatar)  # object keys stay internal
        for name, data in blobs.items():
            answer = await client.get(avatar["files"][name]["url"])
            assert answer.status_code == 200 and answer.content == data, name
            assert answer.headers["cache-control"] == "public, max-age=60"
            assert answer.headers["x-content-type-options"] == "nosniff"
        for logical, name in (("viseme_atlas", "visemes.png"), ("preview_clip", "preview.webm")):
            answer = await client.get(avatar[logical]["url"])
            assert answer.status_code == 200 and answer.content == blobs[name]
        ranged = await client.get(avatar["files"]["preview.webm"]["url"], headers={"Range": "bytes=5-9"})
        assert ranged.status_code == 206 and ranged.content == blobs["preview.webm"][5:10]
        for other in ("alternate:idle-alpha.mp4", "original.png", "image.uploaded", "..%2Fposter.png"):
            assert (await client.get(f"/v1/public/assets/spaces/{space}/{other}")).status_code == 404, other
        # A space with no custom avatar serves no pack file, whatever it is called.
        assert (await client.get(f"/v1/public/assets/spaces/{new_space('none')}/visemes.png")).status_code == 404


async def test_editor_route_serves_a_ready_uploads_files_to_its_editors_only(live_server, s3):
    space, run, blobs = await ready_space_with_files(s3, "editor-files")
    other_space, other_run, _ = await ready_space_with_files(s3, "editor-other")
    rejected = Run(space, T0 + timedelta(minutes=1))
    store = await replica_store(live_server)
    alternates = ("idle-alpha.mp4",)
    events = [run.uploaded(), run.rendered(alternates), other_run.uploaded(), other_run.rendered(alternates)]
    for event in [*events, rejected.uploaded(), rejected.rejected()]:
        await apply_event(store, event)
    await store.close()
    base = f"/v1/spaces/{space}/uploads/{run.upload_id}/assets"
    viewer = {"Authorization": f"Bearer {mint_token(JWT_SECRET, subject='v', space_id=space, role='viewer')}"}
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        for name, data in blobs.items():
            answer = await client.get(f"{base}/{name}", headers=editor(space))
            assert answer.status_code == 200 and answer.content == data, name
            assert answer.headers["cache-control"] == "private, max-age=60"
        atlas = await client.get(f"{base}/viseme_atlas", headers=editor(space))
        assert atlas.content == blobs["visemes.png"]
        assert (await client.get(f"{base}/visemes.png")).status_code == 401
        assert (await client.get(f"{base}/visemes.png", headers=viewer)).status_code == 403
        assert (await client.get(f"{base}/visemes.png", headers=editor(other_space))).status_code == 403
        # Another space's upload, a rejected upload, an unknown file: 404 for this space's editor.
        missing = [
            f"/v1/spaces/{space}/uploads/{other_run.upload_id}/assets/visemes.png",
            f"/v1/spaces/{space}/uploads/{rejected.upload_id}/assets/poster.png",
            f"/v1/spaces/{space}/uploads/{uuid.uuid4()}/assets/poster.png",
            f"{base}/original.png",
        ]
        for path in missing:
            assert (await client.get(path, headers=editor(space))).status_code == 404, path


async def test_end_user_page_config_names_no_other_service(live_server):
    space = new_space("page")
    ingest = live_server.settings.notifier_ingest_public_url
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        viewer_page = await client.get(f"/spaces/{space}")
        editor_page = await client.get(f"/editor/{space}")
    config = json.loads(viewer_page.text.split('id="avatarflow-config"', 1)[1].split(">", 1)[1].split("<", 1)[0])
    assert config == {"spaceId": space}
    assert ingest not in viewer_page.text and ingest not in viewer_page.headers["content-security-policy"]
    assert "connect-src 'self';" in viewer_page.headers["content-security-policy"]
    # The editor page uploads to ingest, so it (alone) knows ingest's public URL.
    assert ingest in editor_page.text and ingest in editor_page.headers["content-security-policy"]


async def test_catalogue_listing_and_choosing_an_avatar(live_server):
    space = new_space("choose")
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15, headers=editor(space)) as client:
        catalogue = (await client.get(f"/v1/spaces/{space}/pregenerated-avatars")).json()
        ids = [item["avatar_id"] for item in catalogue["items"]]
        assert ids == ["aurora", "basil", "coral", "dune"]
        poster = await client.get(catalogue["items"][1]["poster"]["url"])
        assert poster.status_code == 200 and poster.content.startswith(b"\x89PNG")
        missing = await client.post(f"/v1/spaces/{space}/avatar/choose-pregenerated", json={"avatar_id": "nope"})
        assert missing.status_code == 404
        chosen = await client.post(f"/v1/spaces/{space}/avatar/choose-pregenerated", json={"avatar_id": "basil"})
        assert chosen.status_code == 200
        assert chosen.json()["avatar"]["kind"] == "pregenerated" and chosen.json()["avatar"]["avatar_id"] == "basil"
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        public = (await client.get(f"/v1/public/spaces/{space}/avatar")).json()
    assert public["kind"] == "pregenerated" and "/catalogue/basil/" in public["poster"]["url"]


async def test_uploads_history_paginates(live_server):
    space = new_space("history")
    store = await replica_store(live_server)
    runs = [Run(space, T0 + timedelta(minutes=i)) for i in range(3)]
    for run in runs:
        await apply_event(store, run.uploaded())
    await store.close()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15, headers=editor(space)) as client:
        first = (await client.get(f"/v1/spaces/{space}/uploads", params={"limit": 2})).json()
        second = (
            await client.get(f"/v1/spaces/{space}/uploads", params={"limit": 2, "cursor": first["next_cursor"]})
        ).json()
        bad = await client.get(f"/v1/spaces/{space}/uploads", params={"cursor": "!!"})
    got = [u["upload_id"] for u in first["items"] + second["items"]]
    assert got == [str(r.upload_id) for r in reversed(runs)] and second["next_cursor"] is None
    assert bad.status_code == 400


async def next_status(lines, predicate, timeout_s: float = 10.0) -> dict:
    async def scan() -> dict:
        async for line in lines:
            if line.startswith("data:"):
                snapshot = json.loads(line[5:])
                if predicate(snapshot):
                    return snapshot
        raise AssertionError("stream ended")

    return await asyncio.wait_for(scan(), timeout_s)


@pytest.mark.parametrize("server_fixture", ["live_server", "sqlite_live_server"])
async def test_sse_streams_changes_from_this_process_and_from_other_replicas(request, server_fixture):
    live_server = request.getfixturevalue(server_fixture)
    space = new_space("live")
    first, second = Run(space, T0), Run(space, T0 + timedelta(minutes=1))
    other_replica = await replica_store(live_server)
    async with (
        httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client,
        client.stream("GET", f"/v1/spaces/{space}/events", headers=editor(space)) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        initial = await next_status(lines, lambda s: True)
        assert initial["status"] == "none" and initial["prompt"] is None
        # Written by another replica: found by the periodic version re-read.
        await apply_event(other_replica, first.uploaded())
        await apply_event(other_replica, first.rejected())
        rejected = await next_status(lines, lambda s: s["prompt"] is not None)
        assert rejected["status"] == "rejected" and rejected["prompt"]["reasons"][0]["code"] == "blurry"
        # Written by this process (the in-process consumer path): pushed by the broadcaster.
        live_server.run_on_server(apply_event(live_server.store, second.uploaded()))
        processing = await next_status(lines, lambda s: s["status"] == "processing")
        assert processing["prompt"] is None and processing["version"] > rejected["version"]
    await other_replica.close()


async def test_sse_stream_ends_when_its_token_expires(live_server):
    space = new_space("expiry")
    token = mint_token(JWT_SECRET, subject="alice", space_id=space, ttl_s=2)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:

        async def read_until_closed() -> list[str]:
            async with client.stream("GET", f"/v1/spaces/{space}/events", headers=headers) as response:
                assert response.status_code == 200
                # The loop ends only when the server closes the stream.
                return [line[6:].strip() async for line in response.aiter_lines() if line.startswith("event:")]

        events = await asyncio.wait_for(read_until_closed(), timeout=30)
        assert events[0] == "status" and events[-1] == "token_expired"
        # EventSource reconnects with the same URL: the expired token is refused.
        assert (await client.get(f"/v1/spaces/{space}/events", headers=headers)).status_code == 401


ACCESS_LOG_SCRIPT = r"""
import logging, sys
from avatarflow_runtime.logging import configure_logging

configure_logging("notifier")
# Exactly how uvicorn formats its access line; the token's shape does not matter.
logging.getLogger("uvicorn.access").info(
    '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/v1/spaces/s/events?access_token={sys.argv[1]}&x=1",
    "1.1", 200,
)
"""


@pytest.mark.parametrize("shape", ["jwt", "opaque"])
def test_access_tokens_never_reach_the_logs(shape):
    """The runtime's log scrubbing (the notifier keeps no filter of its own) redacts ``?access_token=``."""
    secret_token = mint_token(JWT_SECRET, subject="alice", space_id="s") if shape == "jwt" else "opaque-Secret_123"
    result = subprocess.run(
        [sys.executable, "-c", ACCESS_LOG_SCRIPT, secret_token], capture_output=True, text=True, timeout=60, check=True
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert secret_token not in result.stderr
    assert "access_token=[redacted]&x=1" in line["event"] and line["logger"] == "uvicorn.access"


async def test_health_readiness_and_metrics(live_server):
    space = new_space("metrics")
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        await client.get(f"/v1/spaces/{space}/avatar-status", headers=editor(space))
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {
            "status": "ready",
            "service": "notifier",
            "checks": {"database": "ok"},
        }
        metrics = (await client.get("/metrics")).text
    # The runtime's HTTP metrics (the notifier keeps no middleware of its own): templates, not ids.
    assert 'avatarflow_http_responses_total{method="GET",route="/v1/spaces/{space_id}/avatar-status",' in metrics
    assert 'avatarflow_http_request_seconds_count{route="/v1/spaces/{space_id}/avatar-status",' in metrics
    assert "avatarflow_notifier_events_applied_total" in metrics
    assert space not in metrics and "alice" not in metrics


async def test_readyz_reports_an_unreachable_database(s3):
    from avatarflow_notifier.adapters.catalogue import Catalogue
    from avatarflow_notifier.app import create_app
    from notifier_fixtures import notifier_settings

    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    settings = notifier_settings(url, s3.endpoint)
    store = StatusStore.from_url(url, support_url="x")
    app = create_app(settings, store, Catalogue.from_settings(settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/readyz")
    await store.close()
    assert response.status_code == 503
    assert response.json() == {
        "status": "not_ready",
        "service": "notifier",
        "checks": {"database": "unavailable (OperationalError)"},
    }


async def test_openapi_documents_every_endpoint_with_models(live_server):
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/v1/spaces/{space_id}/avatar-status",
        "/v1/spaces/{space_id}/uploads",
        "/v1/spaces/{space_id}/prompt/dismiss",
        "/v1/spaces/{space_id}/pregenerated-avatars",
        "/v1/spaces/{space_id}/avatar/choose-pregenerated",
        "/v1/public/spaces/{space_id}/avatar",
    ):
        operation = next(iter(paths[path].values()))
        assert "$ref" in json.dumps(operation["responses"]["200"]), path
    assert {"401", "403"} <= set(paths["/v1/spaces/{space_id}/events"]["get"]["responses"])


async def test_readyz_reflects_the_broker_connection(pg_url, s3, stack):
    """Issue 16: the notifier's /readyz checked only its database, so it stayed ready without a broker."""
    from avatarflow_notifier.adapters.catalogue import Catalogue
    from avatarflow_notifier.app import create_app
    from avatarflow_notifier.consumer import build_runtime
    from notifier_fixtures import notifier_settings

    settings = notifier_settings(pg_url, s3.endpoint, kafka_bootstrap_servers=stack.kafka_bootstrap)
    store = StatusStore.from_url(pg_url, support_url="x")
    runtime = build_runtime(settings, store)  # the service's own broker check, as create_service_app wires it
    app = create_app(settings, store, Catalogue.from_settings(settings), readiness=runtime.readiness_checks)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            before = await client.get("/readyz")
            await runtime.broker.start()
            connected = await client.get("/readyz")
            await runtime.broker.stop()
            after = await client.get("/readyz")
    finally:
        await store.close()
    down = {
        "status": "not_ready",
        "service": "notifier",
        "checks": {"database": "ok", "broker": "unavailable (RuntimeError)"},
    }
    assert (before.status_code, before.json()) == (503, down)
    up = {"status": "ready", "service": "notifier", "checks": {"database": "ok", "broker": "ok"}}
    assert (connected.status_code, connected.json()) == (200, up)
    assert (after.status_code, after.json()) == (503, down)
