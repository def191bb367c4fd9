"""Group photos whose faces are too small for the detectors at the whole image's scale: the tiled
third pass finds them, so the editor hears "several faces" instead of "no face"."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
from avatarflow_contracts import ReasonCode
from avatarflow_imaging import decode_image
from avatarflow_validator.adapters.mediapipe import MediaPipeFaceAnalyzer, tile_grid
from avatarflow_validator.core import Validator

PORTRAIT = "accept_photo__man-comedian-blue-bg.jpg"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[MediaPipeFaceAnalyzer]:
    instance = MediaPipeFaceAnalyzer()
    yield instance
    instance.close()


def _scene(shared_dir: Path, copies: int, width: int = 50) -> np.ndarray:
    """A 768x576 textured grey scene with ``copies`` small copies of an accepted portrait in two
    rows, like a class photo seen from far away."""
    data = (shared_dir / "avatar-images" / PORTRAIT).read_bytes()
    face = np.asarray(decode_image(data, max_long_side=768).rgb)
    small = cv2.resize(face, (width, round(width * face.shape[0] / face.shape[1])), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(60, 200, (576, 768, 3)).astype(np.uint8), (0, 0), 3)
    per_row = max(1, (copies + 1) // 2)
    for i in range(copies):
        x = 10 + (i % per_row) * (748 // per_row)
        y = 150 + (i // per_row) * (small.shape[0] + 10)
        scene[y : y + small.shape[0], x : x + small.shape[1]] = small
    return scene


def _png(rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize(("height", "width"), [(768, 768), (500, 768), (768, 300), (100, 768)])
def test_tiles_cover_the_image_and_overlap_by_half(height: int, width: int) -> None:
    tiles = tile_grid(height, width, 0.5)
    covered = np.zeros((height, width), bool)
    for y0, x0, side in tiles:
        assert side == 384
        covered[y0 : y0 + side, x0 : x0 + side] = True
    assert covered.all()
    lefts = sorted({x0 for _, x0, _ in tiles})
    assert all(b - a <= 192 for a, b in pairwise(lefts))


def test_a_group_too_small_for_the_whole_image_is_found_on_tiles(
    analyzer: MediaPipeFaceAnalyzer, validator: Validator, shared_dir: Path
) -> None:
    scene = _scene(shared_dir, copies=12)
    # Precondition: neither detector sees any of these faces at the whole image's scale.
    assert analyzer._detect_both(scene) == []
    analysis = analyzer.analyse(scene)
    assert len(analysis.detections) >= 2
    assert analysis.landmarks is not None
    outcome = validator.validate_bytes(_png(scene))
    assert not outcome.accepted
    assert outcome.reasons[0] == ReasonCode.MULTIPLE_FACES


def test_one_small_face_in_a_scene_stays_no_face(
    analyzer: MediaPipeFaceAnalyzer, validator: Validator, shared_dir: Path
) -> None:
    scene = _scene(shared_dir, copies=1)
    assert analyzer._detect_both(scene) == []
    assert analyzer.analyse(scene).detections == ()
    outcome = validator.validate_bytes(_png(scene))
    assert not outcome.accepted
    assert ReasonCode.MULTIPLE_FACES not in outcome.reasons
    assert ReasonCode.NO_FACE in outcome.reasons
