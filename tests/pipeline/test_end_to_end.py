"""The whole pipeline as separate processes on the real broker, S3 and PostgreSQL.

Upload over HTTP -> validator -> matting -> animator -> notifier, with the editor's view, the
end user's view, the stored avatar pack, every service's /metrics, the analytics consumer, and the
upload's trace (the services export their spans over OTLP/HTTP to a receiver the test runs).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import itertools
import json
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


class OtlpReceiver:
    """A tiny OTLP/HTTP trace receiver on 127.0.0.1: keeps every span it is sent, with its service."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or "json" not in (self.headers.get("content-type") or ""):
                    self.send_response(415)
                    self.end_headers()
                    return
                receiver.add(json.loads(body))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, request: dict[str, Any]) -> None:
        """ExportTraceServiceRequest (OTLP JSON): resourceSpans -> scopeSpans -> spans."""
        for resource_spans in request.get("resourceSpans", []):
            attributes = {a["key"]: a["value"].get("stringValue") for a in resource_spans["resource"]["attributes"]}
            for scope_spans in resource_spans.get("scopeSpans", []):
                with self.lock:
                    self.spans += [{**span, "service": attributes["service.name"]} for span in scope_spans["spans"]]

    def trace(self, trace_id: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {span["spanId"]: span for span in self.spans if span["traceId"] == trace_id}


class Pipeline:
    def __init__(self, procs: dict[str, ServiceProcess], stack: StackEndpoints, otlp: OtlpReceiver) -> None:
        self.procs = procs
        self.stack = stack
        self.otlp = otlp
        # (space, upload_id, avatar.rendered) of the first ready upload, for the tests that inspect one.
        self.ready: tuple[str, str, AvatarRendered] | None = None

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
    otlp = OtlpReceiver()
    env = pipeline_env(
        stack.service_env(),
        ingest_url=procs["ingest"].base_url,
        notifier_url=procs["notifier"].base_url,
        AVATARFLOW_DATABASE_URL=postgres_url,
        AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE="1000",
        AVATARFLOW_JWT_SECRET=SECRET,
        # Tracing on (it is off by default): every service exports its spans to the test's receiver.
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    try:
        start_all(list(procs.values()), env)
        yield Pipeline(procs, stack, otlp)
    finally:
        for proc in procs.values():
            proc.stop(timeout_s=30)
        otlp.server.shutdown()


def test_accepted_upload_becomes_a_ready_avatar_pack(pipeline: Pipeline, shared_dir: Path) -> None:
    space = f"e2e-{uuid.uuid4().hex[:8]}"
    upload_id = pipeline.upload(space, shared_dir / "avatar-images" / "accept_photo__man-suit-plain-bg.jpg")
    status = pipeline.wait_terminal(space, upload_id)
    assert status["status"] == "ready" and status["prompt"] is None, status

    records = asyncio.run(read_topic(pipeline.stack.kafka_bootstrap, Topic.AVATAR_RENDERED.value, idle_s=1))
    rendered = [decode_event(r.value, AvatarRendered) for r in records if upload_id.encode() in r.value]
    assert rendered, "no avatar.rendered event"
    event = rendered[0]
    pipeline.ready = (space, upload_id, event)
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


def test_one_upload_is_one_trace_across_the_five_services(pipeline: Pipeline, shared_dir: Path) -> None:
    """ingest -> validator -> matting -> animator -> notifier: one trace id (the events' trace_id), every
    span's parent in the trace, and the log lines of each service carrying that trace id."""
    if pipeline.ready is None:  # run on its own: make a ready upload first
        test_accepted_upload_becomes_a_ready_avatar_pack(pipeline, shared_dir)
    assert pipeline.ready is not None
    _space, upload_id, rendered = pipeline.ready
    trace_id = rendered.trace_id

    def notifier_took_the_render(spans: dict[str, dict[str, Any]]) -> bool:
        return any(s["service"] == "notifier" and s["name"] == "avatar.rendered process" for s in spans.values())

    deadline = time.monotonic() + 30  # spans are batched (OTEL_BSP_SCHEDULE_DELAY=200 ms)
    spans = pipeline.otlp.trace(trace_id)
    while time.monotonic() < deadline and not (
        notifier_took_the_render(spans) and all(s.get("parentSpanId", "") in ("", *spans) for s in spans.values())
    ):
        time.sleep(0.5)
        spans = pipeline.otlp.trace(trace_id)
    assert {s["service"] for s in spans.values()} >= set(SERVICES), sorted({s["service"] for s in spans.values()})

    # One root: ingest's server span for the upload request; every other span's parent is in the trace.
    roots = [s for s in spans.values() if not s.get("parentSpanId")]
    assert len(roots) == 1, [(s["service"], s["name"]) for s in roots]
    assert roots[0]["service"] == "ingest" and roots[0]["name"] == "POST /v1/spaces/{space_id}/uploads"
    dangling = [
        (s["service"], s["name"]) for s in spans.values() if s.get("parentSpanId") and s["parentSpanId"] not in spans
    ]
    assert not dangling, dangling

    # From the notifier's render record back to the request, the services in pipeline order, each hop
    # a consumer span whose parent is the producer span of the stage before. (At least once: a record
    # redelivered after a rebalance has a second process span, with the same ancestry.)
    renders = [s for s in spans.values() if s["service"] == "notifier" and s["name"] == "avatar.rendered process"]
    assert renders, "the notifier's span for the render never arrived"
    for span in renders:
        path = [span]
        while span.get("parentSpanId"):
            span = spans[span["parentSpanId"]]
            path.append(span)
        services = [s["service"] for s in path]
        assert list(dict.fromkeys(services)) == ["notifier", "animator", "matting", "validator", "ingest"], services
        for child, parent in itertools.pairwise(path):
            if child["name"].endswith(" process"):  # a consumer continues its producer's span
                assert parent["name"].endswith(" create") and parent["service"] != child["service"], (child, parent)
        processed = [s["name"] for s in path if s["name"].endswith(" process")]
        assert processed == ["avatar.rendered process", "avatar.matted process", "face.validated process",
                             "image.uploaded process"], processed  # fmt: skip

    # Each service's log lines for this upload carry the trace id (and the span they were logged in).
    for name in SERVICES:
        lines = [
            json.loads(line)
            for line in pipeline.procs[name].log_path.read_text().splitlines()
            if line.startswith("{") and upload_id in line
        ]
        lines = [line for line in lines if line.get("upload_id") == upload_id]
        assert lines, f"{name} logged nothing about {upload_id}"
        assert {line.get("trace_id") for line in lines} == {trace_id}, (name, lines[:3])
        assert all(spans.get(line.get("span_id", "")) for line in lines), (name, lines[:3])


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
