"""Each check on synthetic inputs: a blurred copy is blurrier, a darkened copy fails lighting, etc."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from avatarflow_contracts import ReasonCode
from avatarflow_imaging import decode_image
from avatarflow_validator.core import Validator, ValidatorThresholds, checks, measures, suggested_crop
from avatarflow_validator.core.face_analysis import Detection, FaceAnalysis, merge_detections

T = ValidatorThresholds()


@pytest.fixture(scope="module")
def portrait(validator: Validator, shared_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    data = (shared_dir / "avatar-images" / "accept_photo__man-comedian-blue-bg.jpg").read_bytes()
    image = decode_image(data, max_long_side=T.working_long_side)
    outcome = validator.validate_image(image)
    assert outcome.accepted and outcome.face is not None
    return np.array(image.rgb), np.array(outcome.face.landmarks)


def _failed(results: list) -> set[str]:
    return {r.name for r in results if not r.passed}


def test_edge_width_grows_with_blur() -> None:
    rng = np.random.default_rng(1)
    sharp = (rng.random((128, 128)) > 0.5).astype(np.float32) * 200
    sharp = cv2.resize(sharp, (128, 128), interpolation=cv2.INTER_NEAREST)
    widths = [measures.edge_width(cv2.GaussianBlur(sharp, (0, 0), s)) for s in (0.5, 1.5, 3.0)]
    assert widths[0] < widths[1] < widths[2]


def test_blockiness_detects_pixel_repetition() -> None:
    rng = np.random.default_rng(2)
    natural = cv2.GaussianBlur(rng.random((200, 200)).astype(np.float32) * 255, (0, 0), 1.0)
    blocky = cv2.resize(natural[::10, ::10], (200, 200), interpolation=cv2.INTER_NEAREST)
    assert measures.blockiness(natural) < T.max_blockiness < measures.blockiness(blocky)


def test_sharp_portrait_passes_and_blurred_copy_fails(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = portrait
    assert not _failed(checks.check_sharpness(rgb, mesh, T))
    blurred = cv2.GaussianBlur(rgb, (0, 0), 6)
    assert "face_edge_width" in _failed(checks.check_sharpness(blurred, mesh, T))


def test_pixelated_copy_fails_blockiness(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = portrait
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (w // 12, h // 12), interpolation=cv2.INTER_AREA)
    blocky = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    assert "face_blockiness" in _failed(checks.check_sharpness(blocky, mesh, T))


def test_lighting_dark_bright_and_side_shadow(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = portrait
    assert not _failed(checks.check_lighting(rgb, mesh, T))
    dark = (rgb.astype(np.float32) * 0.12).astype(np.uint8)
    assert "face_highlights_lstar" in _failed(checks.check_lighting(dark, mesh, T))
    bright = np.clip(rgb.astype(np.float32) * 3.0, 0, 255).astype(np.uint8)
    assert _failed(checks.check_lighting(bright, mesh, T)) & {"face_shadows_lstar", "face_clipped"}
    shadow = rgb.copy()
    nose_x = int(mesh[1, 0])
    shadow[:, :nose_x] = (shadow[:, :nose_x] * 0.1).astype(np.uint8)
    assert "face_side_balance" in _failed(checks.check_lighting(shadow, mesh, T))


def test_covered_eyes_and_mouth_fail(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = portrait
    assert not _failed(checks.check_eyes(rgb, mesh, T))
    assert checks.check_mouth(rgb, mesh, T).passed
    from avatarflow_validator.core import landmarks as lm

    shades = rgb.copy()
    for eye in (lm.EYE_IMAGE_LEFT, lm.EYE_IMAGE_RIGHT):
        centre = lm.points(mesh, eye).mean(axis=0)
        cv2.circle(shades, (int(centre[0]), int(centre[1])), int(0.35 * lm.inter_ocular(mesh)), (15, 15, 18), -1)
    assert _failed(checks.check_eyes(shades, mesh, T))
    masked = rgb.copy()
    lower = lm.points(mesh, lm.LOWER_FACE).astype(np.int32)
    cv2.fillPoly(masked, [cv2.convexHull(lower)], (120, 170, 220))
    mouth = checks.check_mouth(masked, mesh, T)
    assert not mouth.passed and mouth.code == ReasonCode.MOUTH_OCCLUDED


def _det(x: float, size: float, score: float = 0.9, model: str = "short_range") -> Detection:
    return Detection(x, 10.0, size, size, score, model, ())


def test_second_face_rule_ignores_small_background_faces() -> None:
    poster = FaceAnalysis(800, 600, merge_detections([_det(100, 200), _det(600, 40)]), None, None)
    assert checks.check_single_face(poster, T).passed
    couple = FaceAnalysis(800, 600, merge_detections([_det(100, 200), _det(450, 170)]), None, None)
    assert not checks.check_single_face(couple, T).passed


def test_duplicate_detections_of_one_face_merge() -> None:
    merged = merge_detections([_det(100, 200, 0.95), _det(105, 190, 0.8, "full_range")])
    assert len(merged) == 1


def test_suggested_crop_stays_inside_the_image() -> None:
    crop = suggested_crop((10.0, 5.0, 300.0, 380.0), 400, 500)
    assert crop.x >= 0 and crop.y >= 0
    assert crop.x + crop.width <= 400 + 1e-6 and crop.y + crop.height <= 500 + 1e-6


def test_profile_pose_fails_frontal_passes(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    from avatarflow_validator.core.face_analysis import HeadPoseDegrees

    frontal = FaceAnalysis(1, 1, (), None, HeadPoseDegrees(10, 8, 3))
    profile = FaceAnalysis(1, 1, (), None, HeadPoseDegrees(70, 5, 0))
    assert not _failed(checks.check_pose(frontal, T))
    assert _failed(checks.check_pose(profile, T)) == {"head_yaw"}
