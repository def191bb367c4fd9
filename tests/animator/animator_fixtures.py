"""Fixtures for the animator tests: real cut-outs built from accepted portraits (MediaPipe face
mesh + selfie segmentation, no matting service) and the packs rendered from them, once."""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np
import pytest
from animator_probe import IMAGES_DIR, Cutout, make_cutout
from avatarflow_animator.adapters.espeak import EspeakNg
from avatarflow_animator.adapters.onnx_renderer import OnnxWarpRenderer
from avatarflow_animator.bootstrap import render_pack
from avatarflow_animator.core import (
    FPS,
    IDLE_SECONDS,
    AvatarPack,
    RenderRequest,
    downscale_cutout,
    scale_face,
)
from avatarflow_animator.core.timeline import idle_poses

# Photos AND illustrations; a few only, to keep the suite short (the benchmark script runs all).
SAMPLE_IMAGES = (
    "accept_photo__man-suit-plain-bg.jpg",
    "accept_photo__woman-white-blouse-gray-bg.png",
    "accept_illustration__3d-cartoon-boy.jpg",
)


@dataclass(frozen=True)
class Rendered:
    cutout: Cutout
    pack: AvatarPack
    idle_lossless: np.ndarray  # the idle loop's frames straight from the renderer


@pytest.fixture(scope="session")
def renderer() -> OnnxWarpRenderer:
    return OnnxWarpRenderer(intra_op_threads=1)


@pytest.fixture(scope="session")
def speech() -> EspeakNg:
    """The offline default synthesizer (Debian espeak-ng; ./dev installs it)."""
    return EspeakNg()


@pytest.fixture(scope="session")
def rendered(renderer: OnnxWarpRenderer, speech: EspeakNg) -> dict[str, Rendered]:
    if not IMAGES_DIR.is_dir():
        pytest.skip(f"test images not found at {IMAGES_DIR}")
    out = {}
    for name in SAMPLE_IMAGES:
        cutout = make_cutout(IMAGES_DIR / name)
        assert cutout is not None, f"MediaPipe found no face in {name}"
        pack = render_pack(cutout.rgba, cutout.face, renderer=renderer, speech=speech)
        poses, _ = idle_poses(FPS, IDLE_SECONDS)
        request = RenderRequest(downscale_cutout(cutout.rgba), scale_face(cutout.face, 512), poses)
        out[name] = Rendered(cutout, pack, renderer.render(request).frames)
    return out
