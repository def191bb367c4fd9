"""Headless Chromium: the web player lip-syncs audio from the pack's viseme atlas in real time.

The pack is built for the test: every atlas cell is a solid colour of its own, so the pixel on
the player's canvas says which cell is shown; the preview clip is a real VP9 + Opus WebM
(the animator's encoder) whose audio the player plays. Served by the notifier from SeaweedFS.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from avatarflow_animator.adapters.pyav_encoder import encode_png, encode_webm
from avatarflow_animator.core.frames import tile_atlas
from avatarflow_contracts.manifest import OVR_VISEMES, AvatarManifest
from avatarflow_notifier.handlers import apply_event
from avatarflow_runtime.auth import mint_token
from browser_support import chromium
from notifier_factories import T0, Run
from notifier_fixtures import BUCKET, JWT_SECRET

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SIZE = 64
FPS = 25
STEP_S = 0.16  # each viseme of the test timeline lasts 4 frames
# Samples this close to a viseme boundary may show either neighbour (the drawing and the
# sampling happen in different animation-frame callbacks while the audio clock runs on).
BOUNDARY_SLACK_S = 0.05

pytestmark = pytest.mark.browser


def cell_colour(index: int) -> tuple[int, int, int]:
    return (30 + 14 * index, 240 - 13 * index, (90 + 67 * index) % 256)


def build_pack() -> tuple[dict[str, bytes], AvatarManifest]:
    names = [*OVR_VISEMES, "eyes_half", "eyes_closed"]
    cells = np.zeros((len(names), SIZE, SIZE, 4), np.uint8)
    for index in range(len(names)):
        cells[index, ..., :3] = cell_colour(index)
        cells[index, ..., 3] = 255
    atlas = encode_png(tile_atlas(cells, 6))
    order = [v for v in OVR_VISEMES if v != "sil"] * 2
    timeline = [{"viseme": "sil", "start_s": 0.0, "end_s": 0.2}]
    for viseme in order[:14]:
        start = timeline[-1]["end_s"]
        timeline.append({"viseme": viseme, "start_s": start, "end_s": round(start + STEP_S, 3)})
    duration = round(timeline[-1]["end_s"] + 0.2, 3)
    timeline.append({"viseme": "sil", "start_s": timeline[-1]["end_s"], "end_s": duration})
    frames_n = round(duration * FPS)
    grey = np.full((frames_n, SIZE, SIZE, 4), 128, np.uint8)
    rate = 22050
    t = np.arange(round(duration * rate)) / rate
    tone = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    files = {
        "visemes.png": atlas,
        "poster.png": encode_png(cells[0]),
        "idle.webm": encode_webm(grey[:25], FPS, loop=True),
        "preview.webm": encode_webm(grey, FPS, loop=False, audio=(tone, rate)),
    }
    cell = [
        {"name": n, "column": i % 6, "row": i // 6, "x": (i % 6) * SIZE, "y": (i // 6) * SIZE, "width": SIZE,
         "height": SIZE}
        for i, n in enumerate(names)
    ]  # fmt: skip
    video = {"content_type": "video/webm", "codec": "vp9", "pixel_format": "yuva420p", "fps": FPS}
    manifest = AvatarManifest.model_validate(
        {
            "canvas": {"width": SIZE, "height": SIZE},
            "fps": FPS,
            "anchors": {
                "left_eye": {"x": 20, "y": 20},
                "right_eye": {"x": 44, "y": 20},
                "mouth_center": {"x": 32, "y": 48},
                "face_box": [8, 8, 48, 48],
            },
            "poster": {"file": "poster.png", "width": SIZE, "height": SIZE},
            "idle": {"file": "idle.webm", "frame_count": 25, "duration_s": 1.0, **video},
            "visemes": {
                "file": "visemes.png",
                "width": 6 * SIZE,
                "height": 3 * SIZE,
                "columns": 6,
                "rows": 3,
                "cell_width": SIZE,
                "cell_height": SIZE,
                "visemes": [{**c, "ovr_index": i} for i, c in enumerate(cell[: len(OVR_VISEMES)])],
                "extra_cells": cell[len(OVR_VISEMES) :],
            },
            "preview": {
                "file": "preview.webm",
                "frame_count": frames_n,
                "duration_s": frames_n / FPS,
                "text": "test line",
                "timeline": timeline,
                **video,
            },
            "renderer": {"name": "test", "version": "0", "execution_provider": "none"},
        }
    )
    files["manifest.json"] = manifest.model_dump_json().encode()
    return files, manifest


async def apply_on_server(server, event) -> None:
    future = asyncio.run_coroutine_threadsafe(apply_event(server.store, event), server.loop)
    await asyncio.wrap_future(future)


# Runs in the page: every animation frame for `seconds`, the audio clock, the cell the player
# says it shows and the pixel at the canvas centre.
SAMPLE_JS = """async (seconds) => {
  const player = window.avatarflowPlayer;
  const ctx = player.canvas.getContext("2d");
  const out = [];
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    await new Promise((r) => requestAnimationFrame(r));
    const px = ctx.getImageData(player.canvas.width / 2, player.canvas.height / 2, 1, 1).data;
    out.push({t: player.audio ? player.audio.currentTime : -1, mode: player.canvas.dataset.mode,
              shown: player.canvas.dataset.viseme, rgb: [px[0], px[1], px[2]]});
  }
  return out;
}"""


async def test_player_shows_the_viseme_of_the_audio_time(live_server, s3):
    from playwright.async_api import expect

    files, manifest = build_pack()
    space = f"player-{uuid.uuid4().hex[:10]}"
    run = Run(space, T0)
    rendered = run.rendered()
    for ref in (rendered.manifest, rendered.idle_loop, rendered.viseme_atlas, rendered.preview_clip, rendered.poster):
        name = ref.key.rsplit("/", 1)[-1]
        s3.client.put_object(Bucket=BUCKET, Key=ref.key, Body=files[name], ContentType=ref.content_type)
    await apply_on_server(live_server, run.uploaded())
    await apply_on_server(live_server, rendered)

    colours = {tuple(cell_colour(i)): name for i, name in enumerate(OVR_VISEMES)}
    timeline = manifest.preview.timeline

    def expected(t: float) -> str:
        return next((e.viseme for e in timeline if e.start_s <= t < e.end_s), "sil")

    def near_boundary(t: float) -> bool:
        return min(abs(t - e.start_s) for e in timeline) <= BOUNDARY_SLACK_S

    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium("--autoplay-policy=no-user-gesture-required") as browser:
        page = await browser.new_page(viewport={"width": 600, "height": 500})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{live_server.base_url}/spaces/{space}")
        await expect(page.locator("body")).to_have_attribute("data-player", "ready", timeout=15_000)
        await expect(page.locator("#avatar-canvas")).to_have_attribute("data-mode", "idle")
        await page.locator("#talk").click()
        samples = await page.evaluate(SAMPLE_JS, manifest.preview.duration_s)
        await page.screenshot(path=str(ARTIFACTS / "player-space.png"))
        # The audio ends and the player goes back to the idle loop.
        await expect(page.locator("#avatar-canvas")).to_have_attribute("data-mode", "idle", timeout=5_000)

        editor = await browser.new_page(viewport={"width": 1000, "height": 800})
        token = mint_token(JWT_SECRET, subject="alice", space_id=space)
        await editor.goto(f"{live_server.base_url}/editor/{space}#token={token}")
        await expect(editor.locator("body")).to_have_attribute("data-player", "ready", timeout=15_000)
        await expect(editor.locator("#hear-avatar")).to_be_visible()
        await editor.locator("#hear-avatar").click()
        await expect(editor.locator("#preview-canvas")).to_have_attribute("data-mode", "speaking")
        await editor.screenshot(path=str(ARTIFACTS / "player-editor.png"))

    assert errors == []
    speaking = [s for s in samples if s["mode"] == "speaking" and 0 < s["t"] < manifest.preview.duration_s]
    assert len(speaking) >= 30, json.dumps(samples[:5])
    # The pixel on the canvas is the cell the player says it shows: the atlas cell is drawn.
    assert all(colours.get(tuple(s["rgb"])) == s["shown"] for s in speaking), speaking[:3]
    # ... and it is the viseme of the audio's current time, away from the boundaries.
    clear = [s for s in speaking if not near_boundary(s["t"])]
    wrong = [s for s in clear if s["shown"] != expected(s["t"])]
    assert len(clear) >= 20 and wrong == [], wrong[:5]
    assert len({s["shown"] for s in speaking}) >= 10  # it moved through the timeline
