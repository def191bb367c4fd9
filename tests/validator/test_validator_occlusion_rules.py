"""Synthetic checks for the lens-over-the-eyes, face-covering and head-like-graphic rules."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from avatarflow_contracts import ReasonCode
from avatarflow_imaging import decode_image
from avatarflow_validator.core import Validator, ValidatorThresholds, checks, measures
from avatarflow_validator.core import landmarks as lm
from PIL import Image

T = ValidatorThresholds()


@pytest.fixture(scope="module")
def portrait(validator: Validator, shared_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    data = (shared_dir / "avatar-images" / "accept_photo__man-comedian-blue-bg.jpg").read_bytes()
    image = decode_image(data, max_long_side=T.working_long_side)
    outcome = validator.validate_image(image)
    assert outcome.accepted and outcome.face is not None
    return np.array(image.rgb), np.array(outcome.face.landmarks)


def _results(results: list) -> dict[str, bool]:
    return {r.name: r.passed for r in results}


def _lenses(rgb: np.ndarray, mesh: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Paint a lens per eye: an ellipse from brow to cheekbone, past the outer corner."""
    out = rgb.copy()
    iod = lm.inter_ocular(mesh)
    for eye in (lm.EYE_IMAGE_LEFT, lm.EYE_IMAGE_RIGHT):
        centre = lm.points(mesh, eye).mean(axis=0)
        axes = (round(0.45 * iod), round(0.3 * iod))
        cv2.ellipse(out, (round(centre[0]), round(centre[1])), axes, 0, 0, 360, colour, -1)
    return out


def test_uncovered_eyes_have_skin_around_them(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = portrait
    assert measures.eye_surround_difference(rgb, mesh) < T.max_eye_surround_delta_e
    assert all(_results(checks.check_eyes(rgb, mesh, T)).values())


def test_mirror_lens_with_reflections_fails_the_surround_rule(
    portrait: tuple[np.ndarray, np.ndarray],
) -> None:
    """A bright, bluish mirror lens whose reflections give the eye openings plenty of contrast."""
    rgb, mesh = portrait
    mirrored = _lenses(rgb, mesh, (150, 185, 225))
    x0, y0, w, h = (round(v) for v in lm.face_box(mesh))
    for stripe in range(y0, y0 + h, 4):  # reflected scene: dark and bright bands across the lens
        band = mirrored[stripe : stripe + 2, x0 : x0 + w]
        is_lens = np.all(band == (150, 185, 225), axis=-1)
        band[is_lens] = (40, 50, 70)
    passed = _results(checks.check_eyes(mirrored, mesh, T))
    assert passed["eye_contrast"], "the reflections alone fake eye contrast"
    assert not passed["eye_surround_delta_e"]


def test_one_covered_eye_is_not_a_pair_of_sunglasses(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = portrait
    patched = rgb.copy()
    iod = lm.inter_ocular(mesh)
    centre = lm.points(mesh, lm.EYE_IMAGE_LEFT).mean(axis=0)
    axes = (round(0.45 * iod), round(0.3 * iod))
    cv2.ellipse(patched, (round(centre[0]), round(centre[1])), axes, 0, 0, 360, (150, 185, 225), -1)
    assert measures.eye_surround_difference(patched, mesh) < T.max_eye_surround_delta_e


def test_one_fabric_over_forehead_and_lower_face_is_a_face_covering(
    portrait: tuple[np.ndarray, np.ndarray],
) -> None:
    """Niqab: the same fabric above the brows and over nose, mouth and chin; only the eyes show."""
    rgb, mesh = portrait
    fabric = (35, 32, 40)
    covered = rgb.copy()
    iod = lm.inter_ocular(mesh)
    lower = lm.points(mesh, lm.LOWER_FACE).astype(np.int32)
    cv2.fillPoly(covered, [cv2.convexHull(lower)], fabric)
    oval = lm.polygon_mask(rgb.shape[:2], lm.points(mesh, lm.FACE_OVAL))
    brow_line = min(mesh[lm.BROW_MIDDLE_IMAGE_LEFT, 1], mesh[lm.BROW_MIDDLE_IMAGE_RIGHT, 1])
    row = np.arange(rgb.shape[0])[:, None]
    above_brows = row < brow_line - 0.05 * iod
    # The fabric covers the forehead inside the face oval and the head around it (hood).
    covered[(oval & above_brows) | (above_brows & (row > brow_line - 1.2 * iod))] = fabric
    mouth = checks.check_mouth(covered, mesh, T)
    assert not mouth.passed and mouth.code == ReasonCode.FACE_COVERING
    # The eyes stay visible through the opening: this is not reported as hidden eyes.
    assert all(_results(checks.check_eyes(covered, mesh, T)).values())


def test_a_medical_mask_leaves_the_forehead_bare(portrait: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = portrait
    masked = rgb.copy()
    cv2.fillPoly(masked, [cv2.convexHull(lm.points(mesh, lm.LOWER_FACE).astype(np.int32))], (35, 32, 40))
    mouth = checks.check_mouth(masked, mesh, T)
    assert not mouth.passed and mouth.code == ReasonCode.MOUTH_OCCLUDED


def _canvas() -> np.ndarray:
    return np.full((400, 400, 3), 255, dtype=np.uint8)


def _silhouette() -> np.ndarray:
    image = _canvas()
    # Head and shoulders like the bust emoji: one shape with a margin of plain background around it.
    cv2.ellipse(image, (200, 160), (75, 105), 0, 0, 360, (30, 120, 210), -1)
    cv2.ellipse(image, (200, 370), (150, 110), 0, 180, 360, (30, 120, 210), -1)
    return image


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_head_silhouette_icon_is_a_head_like_graphic() -> None:
    assert checks.is_head_like_graphic(measures.graphic_shape(_silhouette()), T)


@pytest.mark.parametrize(
    "name",
    ["text", "banner", "photo", "off_centre"],
)
def test_text_banners_photos_and_corner_marks_are_not_head_like(name: str) -> None:
    image = _canvas()
    if name == "text":  # many separate glyph-like marks
        for row in range(60, 340, 50):
            for col in range(40, 360, 35):
                cv2.rectangle(image, (col, row), (col + 20, row + 30), (0, 0, 0), -1)
    elif name == "banner":
        cv2.rectangle(image, (20, 150), (380, 250), (30, 120, 210), -1)
    elif name == "photo":  # same silhouette, but with a photograph's noise and shading
        rng = np.random.default_rng(3)
        shading = np.linspace(0.6, 1.2, 400)[None, :, None]
        noisy = _silhouette().astype(np.float32) * shading + rng.normal(0, 12, (400, 400, 3))
        image = np.clip(noisy, 0, 255).astype(np.uint8)
    else:
        cv2.circle(image, (330, 330), 60, (30, 120, 210), -1)
    assert not checks.is_head_like_graphic(measures.graphic_shape(image), T)


def test_icon_gets_features_missing_beside_no_face_and_text_only_no_face(validator: Validator) -> None:
    icon = validator.validate_bytes(_png(_silhouette()))
    assert icon.reasons == [ReasonCode.NO_FACE, ReasonCode.FEATURES_MISSING]
    blank = validator.validate_bytes(_png(_canvas()))
    assert blank.reasons == [ReasonCode.NO_FACE]
