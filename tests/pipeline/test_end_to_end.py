"""The whole pipeline as separate processes on the real broker, S3 and PostgreSQL.

Upload over HTTP -> validator -> matting -> animator -> notifier, with the editor's view, the
end user's view, the stored avatar pack, every service's /metrics and the analytics consumer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from avatarflow_contracts import AvatarRendered, Topic, decode_event
from avatarflow_contracts.manifest import AvatarManifest
from avatarflow_runtime.auth import mint_token
from browser_support import chromium

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.processes import SERVICES, ServiceProcess, pipeline_env, start_all
from avatarflow.devstack.topics import read_topic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from promtool import check_metrics

pytestmark = pytest.mark.integration
# The key these tests' services verify with (services refuse to start without a strong one).
SECRET = secrets.token_urlsafe(32)
TERMINAL = {"ready", "rejected", "failed"}


class Pipeline:
    def __init__(self, procs: dict[str, ServiceProcess], stack: StackEndpoints) -> None:
        self.procs = procs
        self.stack = stack

    def url(self, service: str) -> str:
        return self.procs[service].base_url

    def upload(self, space: str, image: Path) -> str:
        token = mint_token(SECRET, subject="e2e-editor", space_id=space)
        response = httpx.post(
            f"{self.url('ingest')}/v1/spaces/{space}/uploads",
            headers={"authorization": f"Bearer {token}"},
            files={"file": (image.name, image.read_bytes(), "image/jpeg")},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["upload_id"])

    def editor_status(self, space: str) -> dict:  # type: ignore[type-arg]
        token = mint_token(SECRET, subject="e2e-editor", space_id=space)
        response = httpx.get(
            f"{self.url('notifier')}/v1/spaces/{space}/avatar-status",
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_terminal(self, space: str, upload_id: str, timeout_s: float = 300) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout_s
        status: dict = {}  # type: ignore[type-arg]
        while time.monotonic() < deadline:
            status = self.editor_status(space)
            latest = status.get("latest_upload") or {}
            if latest.get("upload_id") == upload_id and status["status"] in TERMINAL:
                return status
            time.sleep(1)
        logs = "\n".join(f"--- {n}\n{p.log_tail(1500)}" for n, p in self.procs.items())
        raise AssertionError(f"upload {upload_id} not terminal: {status}\n{logs}")


@pytest.fixture(scope="module")
def pipeline(stack: StackEndpoints, postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("pipeline")
    procs = {name: ServiceProcess(name, {}, workdir / f"{name}.log") for name in SERVICES}
    env = pipeline_env(
        stack.service_env(),
        ingest_url=procs["ingest"].base_url,
        notifier_url=procs["notifier"].base_url,
        AVATARFLOW_DATABASE_URL=postgres_url,
        AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE="1000",
        AVATARFLOW_JWT_SECRET=SECRET,
    )
    try:
        start_all(list(procs.values()), env)
        yield Pipeline(procs, stack)
    finally:
        for proc in procs.values():
            proc.stop(timeout_s=30)


def test_accepted_upload_becomes_a_ready_avatar_pack(pipeline: Pipeline, shared_dir: Path) -> None:
    space = f"e2e-{uuid.uuid4().hex[:8]}"
    upload_id = pipeline.upload(space, shared_dir / "avatar-images" / "accept_photo__man-suit-plain-bg.jpg")
    status = pipeline.wait_terminal(space, upload_id)
    assert status["status"] == "ready" and status["prompt"] is None, status

    records = asyncio.run(read_topic(pipeline.stack.kafka_bootstrap, Topic.AVATAR_RENDERED.value, idle_s=1))
    rendered = [decode_event(r.value, AvatarRendered) for r in records if upload_id.encode() in r.value]
    assert rendered, "no avatar.rendered event"
    event = rendered[0]
    s3 = boto3.client(
        "s3", endpoint_url=pipeline.stack.s3_endpoint, aws_access_key_id=pipeline.stack.s3_access_key,
        aws_secret_access_key=pipeline.stack.s3_secret_key, region_name="us-east-1",
    )  # fmt: skip
    objects = [event.manifest, event.idle_loop, event.viseme_atlas, event.preview_clip, event.poster]
    for ref in [*objects, *event.alternates]:
        body = s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == ref.sha256 and len(body) == ref.size, ref.key
    manifest = AvatarManifest.model_validate_json(s3.get_object(Bucket=event.manifest.bucket,
                                                                Key=event.manifest.key)["Body"].read())  # fmt: skip
    assert len(manifest.visemes.visemes) == 15  # the full viseme set, one atlas cell each
    assert event.execution_provider.endswith("ExecutionProvider")
    assert manifest.preview.audio is not None and manifest.preview.audio.engine == "espeak-ng"  # it speaks

    # The end user sees the ready avatar, and nothing about processing.
    public = httpx.get(f"{pipeline.url('notifier')}/v1/public/spaces/{space}/avatar", timeout=10).json()
    assert "status" not in public and "prompt" not in public and "uploads" not in json.dumps(public)
    # Every file the manifest names is served to the public, byte for byte.
    assert sorted(public["files"]) == sorted(["manifest.json", *manifest.files()])
    by_name = {ref.key.rsplit("/", 1)[-1]: ref for ref in [*objects, *event.alternates]}
    for name, asset in public["files"].items():
        body = httpx.get(f"{pipeline.url('notifier')}{asset['url']}", timeout=10).content
        assert hashlib.sha256(body).hexdigest() == by_name[name].sha256, name


def test_rejected_upload_prompts_the_editor_only(pipeline: Pipeline, shared_dir: Path) -> None:
    space = f"e2e-{uuid.uuid4().hex[:8]}"
    before = httpx.get(f"{pipeline.url('notifier')}/v1/public/spaces/{space}/avatar", timeout=10).json()
    upload_id = pipeline.upload(space, shared_dir / "avatar-images" / "no_face__golden-gate-landscape.jpg")
    status = pipeline.wait_terminal(space, upload_id)
    assert status["status"] == "rejected"
    assert status["prompt"]["message"].startswith("Your avatar image couldn't be used: We couldn't find a face")
    assert status["latest_upload"]["reasons"][0]["code"] == "no_face"
    after = httpx.get(f"{pipeline.url('notifier')}/v1/public/spaces/{space}/avatar", timeout=10).json()
    assert after == before  # not even whether a rejected upload exists


def test_every_service_metrics_pass_promtool(pipeline: Pipeline) -> None:
    for name in SERVICES:
        text = httpx.get(f"{pipeline.url(name)}/metrics", timeout=10).text
        assert "avatarflow_" in text or "notifier" in text, name
        assert check_metrics(text) == [], name


def test_analytics_example_consumer_counts_rejections(pipeline: Pipeline, shared_dir: Path) -> None:
    space = f"e2e-{uuid.uuid4().hex[:8]}"
    upload_id = pipeline.upload(space, shared_dir / "avatar-images" / "eyes_occluded__man-dark-aviators.jpg")
    pipeline.wait_terminal(space, upload_id)
    result = subprocess.run(
        [sys.executable, "-m", "avatarflow.cli", "rejections", "--since", "1h", "--json",
         "--bootstrap", pipeline.stack.kafka_bootstrap],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rejected_uploads"] >= 1 and report["by_reason"].get("eyes_occluded", 0) >= 1


@pytest.mark.browser
async def test_editor_uploads_through_the_page_and_sees_the_prompt_live(
    pipeline: Pipeline, shared_dir: Path, artifacts_dir: Path
) -> None:
    from playwright.async_api import expect

    space = f"e2e-browser-{uuid.uuid4().hex[:8]}"
    token = mint_token(SECRET, subject="e2e-editor", space_id=space)
    notifier = pipeline.url("notifier")
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1000, "height": 800})
        editor = await context.new_page()
        await editor.goto(f"{notifier}/editor/{space}#token={token}")
        await expect(editor.locator("#status-text")).to_have_text("no upload yet", timeout=15_000)
        viewer = await context.new_page()
        await viewer.goto(f"{notifier}/spaces/{space}")
        await expect(viewer.locator("body")).to_have_attribute("data-loaded", "1")

        # A real upload through the page, to ingest, through the validator, back over SSE. The
        # page sends an Idempotency-Key (so its retries resume one upload), which ingest's CORS
        # policy must allow, or the browser would never send the POST.
        async with editor.expect_request(lambda r: r.method == "POST" and r.url.endswith("/uploads")) as sent:
            await editor.locator("#file-input").set_input_files(
                str(shared_dir / "avatar-images" / "no_face__golden-gate-landscape.jpg")
            )
        assert uuid.UUID((await (await sent.value).all_headers())["idempotency-key"])
        await expect(editor.locator("#prompt")).to_be_visible(timeout=120_000)
        await expect(editor.locator("#prompt-message")).to_contain_text("We couldn't find a face")
        await expect(editor.locator("#upload-result")).to_have_text("")  # no stale "checking…" line
        await editor.screenshot(path=str(artifacts_dir / "e2e-editor-prompt.png"), full_page=True)

        await viewer.reload()
        await expect(viewer.locator("body")).to_have_attribute("data-loaded", "1")
        text = (await viewer.content()).lower()
        assert "couldn't be used" not in text and "rejected" not in text and "find a face" not in text
        await viewer.screenshot(path=str(artifacts_dir / "e2e-end-user.png"))

        await editor.locator("#action-choose").click()
        await editor.locator("#catalogue-items button").first.click()
        await expect(editor.locator("#prompt")).to_be_hidden(timeout=15_000)
        await editor.screenshot(path=str(artifacts_dir / "e2e-editor-after-pick.png"), full_page=True)
