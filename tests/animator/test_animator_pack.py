"""Machine checks of rendered packs: re-detect the face with MediaPipe and assert what the
animation claims (see animator_probe.check_pack for the rules behind every threshold)."""

from __future__ import annotations

import json

import pytest
from animator_probe import check_pack, decode_webm_rgba
from avatarflow_animator.core import render_pack
from avatarflow_contracts.manifest import OVR_VISEMES, AvatarManifest
from conftest import SAMPLE_IMAGES


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_pack_claims_hold_under_mediapipe(rendered, name):
    item = rendered[name]
    assert check_pack(item.cutout, item.pack, item.idle_lossless) == []


def test_pack_files_and_manifest(rendered):
    pack = rendered[SAMPLE_IMAGES[0]].pack
    manifest = AvatarManifest.model_validate(json.loads(pack.files["manifest.json"]))
    assert manifest == pack.manifest
    assert manifest.manifest_version == "1.0"
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


def test_pack_is_deterministic(renderer, rendered):
    item = rendered[SAMPLE_IMAGES[0]]
    again = render_pack(item.cutout.rgba, item.cutout.face, renderer=renderer)
    assert again.files == item.pack.files  # PNGs, manifest and (same libvpx) the WebMs


def test_preview_clip_decodes_with_alpha_and_moves_the_mouth(rendered):
    pack = rendered[SAMPLE_IMAGES[1]].pack
    frames = decode_webm_rgba(pack.files["preview.webm"])
    assert len(frames) == pack.manifest.preview.frame_count
    assert min(int(f[..., 3].min()) for f in frames) == 0
    assert max(int(f[..., 3].max()) for f in frames) == 255
