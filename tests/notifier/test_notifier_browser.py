"""Headless Chromium: the editor sees a rejection's prompt appear live; end users never see it.

Events are applied through ``handlers.apply_event`` on the server's own store, the code path the
Kafka consumer uses. (The lead adds the full-pipeline variant with a real upload.)
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from avatarflow_contracts import ReasonCode
from avatarflow_notifier.handlers import apply_event
from avatarflow_runtime.auth import mint_token
from browser_support import chromium
from notifier_factories import T0, Run
from notifier_fixtures import JWT_SECRET

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


async def apply_on_server(server, event) -> None:
    future = asyncio.run_coroutine_threadsafe(apply_event(server.store, event), server.loop)
    await asyncio.wrap_future(future)


async def test_editor_sees_prompt_live_and_end_user_never_does(live_server):
    from playwright.async_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    space = f"browser-{uuid.uuid4().hex[:10]}"
    token = mint_token(JWT_SECRET, subject="alice", space_id=space)
    run = Run(space, T0)
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1000, "height": 800})
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url))
        editor = await context.new_page()
        await editor.goto(f"{live_server.base_url}/editor/{space}#token={token}")
        await expect(editor.locator("#status-text")).to_have_text("no upload yet")
        # The token left the address bar for sessionStorage and never travelled in a URL.
        assert "#token" not in editor.url
        assert await editor.evaluate(f"sessionStorage.getItem('avatarflow.editorToken.{space}')") == token
        await expect(editor.locator("#prompt")).to_be_hidden()

        viewer = await context.new_page()
        await viewer.goto(f"{live_server.base_url}/spaces/{space}")
        await expect(viewer.locator("body")).to_have_attribute("data-loaded", "1")
        before_html = await viewer.locator("main").inner_html()

        # The rejection arrives while both pages are open: no reload.
        await apply_on_server(live_server, run.uploaded())
        await apply_on_server(live_server, run.rejected((ReasonCode.POOR_LIGHTING, ReasonCode.BLURRY)))
        prompt = editor.locator("#prompt")
        await expect(prompt).to_be_visible(timeout=10_000)
        await expect(editor.locator("#prompt-message")).to_contain_text(
            "Your avatar image couldn't be used: The face in this image is blurry"
        )
        await expect(editor.locator("#prompt-message")).to_contain_text(
            "Upload a different image or choose one of the pre-generated avatars."
        )
        await expect(editor.locator("#prompt-reasons li")).to_have_count(1)  # poor_lighting, listed
        await expect(editor.locator("#status-text")).to_have_text("rejected")
        await editor.screenshot(path=str(ARTIFACTS / "notifier-editor-prompt.png"), full_page=True)

        # The end-user view shows nothing of it, before or after a reload.
        await viewer.reload()
        await expect(viewer.locator("body")).to_have_attribute("data-loaded", "1")
        assert await viewer.locator("main").inner_html() == before_html
        text = (await viewer.content()).lower()
        for leaked in ("couldn't be used", "rejected", "blurry", "prompt"):
            assert leaked not in text
        assert await viewer.locator("body").get_attribute("data-avatar-kind") == "default"
        await viewer.screenshot(path=str(ARTIFACTS / "notifier-end-user-default.png"))

        # The editor picks a pre-generated avatar: the prompt goes away.
        await editor.locator("#action-choose").click()
        await expect(editor.locator("#catalogue-items button")).to_have_count(4)
        await editor.locator("#catalogue-items button[data-avatar-id='coral']").click()
        await expect(prompt).to_be_hidden(timeout=10_000)
        await expect(editor.locator("body")).to_have_attribute("data-avatar-kind", "pregenerated")
        await expect(editor.locator("#preview-poster")).to_be_visible()
        await editor.screenshot(path=str(ARTIFACTS / "notifier-editor-after-pick.png"), full_page=True)

        await viewer.reload()
        await expect(viewer.locator("body")).to_have_attribute("data-avatar-kind", "pregenerated")
        await expect(viewer.locator("#avatar-poster")).to_be_visible()
        await viewer.screenshot(path=str(ARTIFACTS / "notifier-end-user-pregenerated.png"))

        assert not any("token" in url for url in requests), "a token travelled in a URL"


async def test_rejection_shows_the_editors_image_beside_the_first_reason(live_server, tmp_path: Path):
    """The page keeps a copy of the file it uploaded and shows it beside the rejection, across a reload.

    The upload POST goes to ingest, which this notifier-only test does not run: the browser's
    request is answered at the network layer with ingest's 202 body for the run's upload_id.
    """
    from PIL import Image, ImageDraw
    from playwright.async_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    space = f"browser-{uuid.uuid4().hex[:10]}"
    token = mint_token(JWT_SECRET, subject="alice", space_id=space)
    run = Run(space, T0)
    photo = tmp_path / "profile.jpg"
    picture = Image.new("RGB", (240, 300), (40, 120, 200))
    ImageDraw.Draw(picture).ellipse((60, 60, 180, 220), fill=(230, 180, 150))
    picture.save(photo, quality=90)
    uploads: list[str] = []

    async def answer_upload(route) -> None:
        uploads.append(route.request.method)
        await route.fulfill(status=202, json={"upload_id": str(run.upload_id), "status": "processing"})

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1000, "height": 800})
        await context.route("http://127.0.0.1:9/**", answer_upload)
        editor = await context.new_page()
        await editor.goto(f"{live_server.base_url}/editor/{space}#token={token}")
        await expect(editor.locator("#status-text")).to_have_text("no upload yet")
        await editor.locator("#file-input").set_input_files(str(photo))
        await expect(editor.locator("#upload-result")).to_have_text("Uploaded: checking your image…")
        assert uploads == ["POST"]

        await apply_on_server(live_server, run.uploaded())
        # A small profile photo: the first thing to change is the pose, not the size.
        await apply_on_server(live_server, run.rejected((ReasonCode.LOW_RESOLUTION, ReasonCode.NOT_FRONTAL)))
        await expect(editor.locator("#prompt")).to_be_visible(timeout=10_000)
        await expect(editor.locator("#prompt-message")).to_contain_text("The face is turned away from the camera")
        await expect(editor.locator("#prompt-reasons li")).to_have_attribute("data-code", "low_resolution")
        image = editor.locator("#prompt-image")
        await expect(image).to_be_visible()
        size = await image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == [240, 300]  # the uploaded picture itself (under the preview's 320 px cap)
        # Beside the message, not above or below it.
        image_box = await image.bounding_box()
        message_box = await editor.locator("#prompt-message").bounding_box()
        assert image_box and message_box
        assert image_box["x"] + image_box["width"] <= message_box["x"]
        assert image_box["y"] < message_box["y"] + message_box["height"]
        await editor.screenshot(path=str(ARTIFACTS / "notifier-editor-rejected-image.png"), full_page=True)

        await editor.reload()
        await expect(editor.locator("#prompt")).to_be_visible(timeout=10_000)
        await expect(editor.locator("#prompt-image")).to_be_visible()

        # A rejection of an upload this tab did not send shows the message without a picture.
        other = Run(space, T0.replace(minute=T0.minute + 1))
        await apply_on_server(live_server, other.uploaded())
        await apply_on_server(live_server, other.rejected((ReasonCode.BLURRY,)))
        await expect(editor.locator("#prompt")).to_have_attribute("data-upload-id", str(other.upload_id))
        await expect(editor.locator("#prompt-figure")).to_be_hidden()
