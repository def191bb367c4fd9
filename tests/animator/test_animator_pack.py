"""Machine checks of rendered packs: re-detect the face with MediaPipe and assert what the
animation claims (see animator_probe.check_pack for the rules behind every threshold)."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
from animator_fixtures import SAMPLE_IMAGES
from animator_probe import atlas_cells, check_pack, decode_webm_rgba
from avatarflow_animator.adapters import onnx_renderer as renderer_module
from avatarflow_animator.bootstrap import render_pack
from avatarflow_animator.core import RenderRequest, downscale_cutout, scale_face
from avatarflow_animator.core.poses import REST, VISEME_POSES, FacePose
from avatarflow_contracts.manifest import MANIFEST_VERSION, OVR_VISEMES, AvatarManifest


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_pack_claims_hold_under_mediapipe(rendered, name):
    item = rendered[name]
    assert check_pack(item.cutout, item.pack, item.idle_lossless) == []


def test_pack_files_and_manifest(rendered):
    pack = rendered[SAMPLE_IMAGES[0]].pack
    manifest = AvatarManifest.model_validate(json.loads(pack.files["manifest.json"]))
    assert manifest == pack.manifest
    assert manifest.manifest_version == MANIFEST_VERSION == "1.1"
    assert set(pack.files) == {"manifest.json", *manifest.files()}
    assert [cell.name for cell in manifest.visemes.visemes] == list(OVR_VISEMES)
    assert manifest.canvas.width == manifest.canvas.height == 512
    assert manifest.idle.blinks and manifest.idle.blinks[0].closed_frames
    assert manifest.preview.timeline[0].viseme == "sil"
    assert manifest.preview.frame_count == round(manifest.preview.timeline[-1].end_s * manifest.fps)
    assert manifest.renderer.execution_provider == pack.execution_provider


def test_provider_is_the_session_s_real_provider(renderer, rendered):
    assert renderer.execution_provider == renderer._session.get_providers()[0]
    assert rendered[SAMPLE_IMAGES[0]].pack.execution_provider == renderer.execution_provider


def test_pack_is_deterministic(renderer, rendered, speech):
    item = rendered[SAMPLE_IMAGES[0]]
    again = render_pack(item.cutout.rgba, item.cutout.face, renderer=renderer, speech=speech)
    assert again.files == item.pack.files  # PNGs, manifest and (same libvpx) the WebMs


def test_preview_clip_decodes_with_alpha_and_moves_the_mouth(rendered):
    pack = rendered[SAMPLE_IMAGES[1]].pack
    frames = decode_webm_rgba(pack.files["preview.webm"])
    assert len(frames) == pack.manifest.preview.frame_count
    assert min(int(f[..., 3].min()) for f in frames) == 0
    assert max(int(f[..., 3].max()) for f in frames) == 255


# Brows (upper and lower edge) and the eye opening (upper / lower lid middle), MediaPipe indices.
BROW_POINTS = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
EYE_OPENINGS = ((159, 145), (386, 374))


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_blink_slides_the_lids_over_the_eye_and_never_touches_the_brows(rendered, name):
    item = rendered[name]
    cells = atlas_cells(item.pack.files["visemes.png"], item.pack.manifest)
    rest, closed = cells["sil"].astype(np.int16), cells["eyes_closed"].astype(np.int16)
    scale = rest.shape[0] / item.cutout.face.image_width
    landmarks = np.asarray(item.cutout.face.landmarks)[:, :2] * scale
    for x, y in np.round(landmarks[list(BROW_POINTS)]).astype(int):
        assert np.array_equal(rest[y - 1 : y + 2, x - 1 : x + 2], closed[y - 1 : y + 2, x - 1 : x + 2])
    for upper, lower in EYE_OPENINGS:
        x, y = np.round(0.5 * (landmarks[upper] + landmarks[lower])).astype(int)
        assert np.abs(rest[y, x, :3] - closed[y, x, :3]).max() > 0  # the eye is covered
    # The lids are the person's own skin: the closed eye's colours are the rest frame's colours
    # from around the eye (no painted patch): every closed-eye pixel is within a few levels of
    # some rest pixel of the eye region.
    for upper, lower in EYE_OPENINGS:
        x, y = np.round(0.5 * (landmarks[upper] + landmarks[lower])).astype(int)
        near = rest[y - 12 : y + 13, x - 16 : x + 17, :3].reshape(-1, 1, 3)
        patch = closed[y - 2 : y + 3, x - 6 : x + 7, :3].reshape(1, -1, 3)
        assert np.abs(near - patch).max(axis=-1).min(axis=0).max() <= 24


@pytest.mark.parametrize("frames_per_run", [2, 3, 8])
def test_frames_do_not_depend_on_the_runs_and_repeated_poses_are_copies(
    renderer, rendered, monkeypatch, frames_per_run
):
    cutout = rendered[SAMPLE_IMAGES[0]].cutout
    source = downscale_cutout(cutout.rgba)
    face = scale_face(cutout.face, source.shape[0])
    moving = [FacePose(blink=0.5, head_roll_deg=1.0), FacePose(jaw_open=0.8, head_dx=1.5)]
    poses = [REST, *(VISEME_POSES[v] for v in OVR_VISEMES[:6]), *moving, REST, moving[1]]  # 9 distinct
    expected = renderer.render(RenderRequest(source, face, poses)).frames
    monkeypatch.setattr(renderer_module, "FRAMES_PER_RUN", frames_per_run)
    frames = renderer.render(RenderRequest(source, face, poses)).frames
    assert np.array_equal(frames, expected)
    assert np.array_equal(frames[-2], frames[0]) and np.array_equal(frames[-1], frames[-3])


def decode_mp4_rgb(data: bytes) -> tuple[np.ndarray, list[str]]:
    with av.open(io.BytesIO(data)) as container:
        kinds = [f"{s.type}:{s.codec_context.name}" for s in container.streams]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])
    return frames, kinds


def test_safari_alternate_carries_the_idle_loop_with_its_alpha_stacked(rendered):
    item = rendered[SAMPLE_IMAGES[0]]
    manifest = item.pack.manifest
    stacked = manifest.alternates[0]
    assert (stacked.file, stacked.codec, stacked.alpha_layout, stacked.has_alpha) == (
        "idle-alpha.mp4", "h264", "stacked", True,
    )  # fmt: skip
    assert stacked.content_type == "video/mp4" and stacked.loop and stacked.frame_count == manifest.idle.frame_count
    frames, kinds = decode_mp4_rgb(item.pack.files[stacked.file])
    assert kinds == ["video:h264"] and frames.shape == (manifest.idle.frame_count, 1024, 512, 3)
    # Recombined as the player does (top: colour, bottom: alpha as grey), it is the idle loop.
    colour, alpha = frames[:, :512].astype(np.int16), frames[:, 512:, :, 1].astype(np.int16)
    truth = item.idle_lossless.astype(np.int16)
    assert np.abs(alpha - truth[..., 3]).mean() < 1.5  # alpha levels, mean over every pixel
    solid = truth[..., 3] == 255
    assert np.abs(colour - truth[..., :3])[solid].mean() < 4.0  # colour where the avatar is opaque
    # Transparent stays transparent; opaque stays opaque (H.264 rings a little next to the edge).
    opaque = alpha[solid]
    assert alpha[:, 0, 0].max() <= 2 and opaque.min() >= 200 and (opaque >= 245).mean() >= 0.99


def test_share_mp4_is_the_spoken_preview_over_the_chosen_background(rendered):
    item = rendered[SAMPLE_IMAGES[0]]
    manifest = item.pack.manifest
    share = manifest.alternates[1]
    assert (share.file, share.has_alpha, share.background, share.has_audio) == ("share.mp4", False, "#e9edf2", True)
    frames, kinds = decode_mp4_rgb(item.pack.files[share.file])
    assert kinds == ["video:h264", "audio:aac"] and len(frames) == manifest.preview.frame_count == share.frame_count
    corner = frames[:, :16, :16].reshape(-1, 3).astype(np.int16)  # empty canvas: the background
    assert np.abs(corner - np.array([0xE9, 0xED, 0xF2])).max() <= 4
    # The same frames as the WebM preview, composited over the background.
    webm = decode_webm_rgba(item.pack.files["preview.webm"])[10].astype(np.float64)
    alpha = webm[..., 3:4] / 255.0
    expected = webm[..., :3] * alpha + np.array([0xE9, 0xED, 0xF2]) * (1 - alpha)
    assert np.abs(frames[10].astype(np.float64) - expected).mean() < 3.0
