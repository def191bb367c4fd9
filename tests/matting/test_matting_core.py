"""Unit tests of the matting core on synthetic images (plus one real photo for determinism)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from avatarflow_contracts.reasons import WarningCode
from avatarflow_matting.core import (
    CANVAS_SIZE,
    EYE_LINE,
    FACE_HEIGHT,
    cut_out,
    encode_png,
    estimate_alpha_with_trimap,
    estimate_foreground,
)
from matting_fixtures import synthetic_face
from PIL import Image

SUBJECT = np.array([200, 120, 60], np.float32)
BACKGROUND = np.array([30, 200, 70], np.float32)


def soft_disc(size: int = 200, radius: float = 60.0, softness: float = 6.0) -> np.ndarray:
    """Alpha of a disc whose edge ramps from 1 to 0 over ``softness`` pixels (like fine hair)."""
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(xx - size / 2, yy - size / 2)
    return np.clip((radius + softness / 2 - distance) / softness, 0.0, 1.0).astype(np.float32)


def composite(alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return np.round(a * SUBJECT + (1 - a) * BACKGROUND).astype(np.uint8)


def trimap_of(alpha: np.ndarray) -> np.ndarray:
    trimap = np.full(alpha.shape, 128, np.uint8)
    trimap[alpha >= 1.0] = 255
    trimap[alpha <= 0.0] = 0
    return trimap


def test_alpha_from_trimap_recovers_the_soft_edge():
    truth = soft_disc()
    alpha = estimate_alpha_with_trimap(composite(truth), trimap_of(truth))
    assert alpha.dtype == np.float32 and alpha.min() >= 0.0 and alpha.max() <= 1.0
    soft = (truth > 0) & (truth < 1)
    # 8-bit rounding of the composite limits precision to ~1/255 per channel.
    assert np.abs(alpha - truth)[soft].mean() < 0.03


def test_edge_pixels_are_decontaminated_and_straight():
    truth = soft_disc()
    image = composite(truth)
    foreground = estimate_foreground(image, truth) * 255.0
    edge = (truth > 0.1) & (truth < 0.9)
    to_subject = np.linalg.norm(foreground[edge] - SUBJECT, axis=1)
    to_background = np.linalg.norm(foreground[edge] - BACKGROUND, axis=1)
    assert (to_subject < to_background).all()
    # Straight (not premultiplied) colour: a 30 %-opaque pixel still has the full subject colour.
    assert to_subject.mean() < 12.0
    original = np.linalg.norm(image[edge].astype(np.float32) - SUBJECT, axis=1)
    assert to_subject.mean() < 0.2 * original.mean()


def test_encode_png_round_trips_and_is_deterministic():
    rng = np.random.default_rng(7)
    for channels in (3, 4):
        array = rng.integers(0, 256, (33, 47, channels), dtype=np.uint8)
        data = encode_png(array)
        assert data == encode_png(array.copy())
        decoded = np.asarray(Image.open(io.BytesIO(data)))
        assert np.array_equal(decoded, array)


def cartoon(size: tuple[int, int] = (640, 800)) -> tuple[np.ndarray, object]:
    """A flat-shaded drawn character: round head with eyes and mouth, hair cap, shirt, on a plain
    pale background. The photo-trained person model barely responds to it."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (225, 235, 250)
    cx, cy, face_w, face_h = width // 2, int(height * 0.38), 220, 260
    cv2.ellipse(image, (cx, cy + 300), (230, 200), 0, 180, 360, (200, 40, 60), -1)  # shirt
    cv2.rectangle(image, (cx - 230, cy + 300), (cx + 230, height), (200, 40, 60), -1)
    cv2.rectangle(image, (cx - 40, cy + 100), (cx + 40, cy + 170), (250, 205, 170), -1)  # neck
    cv2.ellipse(image, (cx, cy - 40), (125, 120), 0, 180, 360, (90, 50, 20), -1)  # hair
    cv2.ellipse(image, (cx, cy), (face_w // 2, face_h // 2), 0, 0, 360, (250, 205, 170), -1)
    eye_y = int(cy - face_h / 2 + 0.45 * face_h)
    for dx in (-48, 48):
        cv2.circle(image, (cx + dx, eye_y), 14, (255, 255, 255), -1)
        cv2.circle(image, (cx + dx, eye_y), 7, (20, 20, 20), -1)
    cv2.ellipse(image, (cx, int(cy - face_h / 2 + 0.78 * face_h)), (35, 12), 0, 0, 180, (160, 40, 40), -1)
    return image, synthetic_face(cx, cy, face_w, face_h, size)


def mascot(size: tuple[int, int] = (640, 800)) -> tuple[np.ndarray, object]:
    """A drawn blue mascot (round head, big eyes, round body) on a plain cream background: no
    human skin or shape, so the person model gives it almost nothing."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (250, 240, 200)
    cx, cy, face_w, face_h = width // 2, int(height * 0.38), 260, 260
    cv2.ellipse(image, (cx, height), (200, 260), 0, 180, 360, (60, 110, 230), -1)
    cv2.ellipse(image, (cx, cy), (face_w // 2, face_h // 2), 0, 0, 360, (60, 110, 230), -1)
    eye_y = int(cy - face_h / 2 + 0.45 * face_h)
    for dx in (-55, 55):
        cv2.circle(image, (cx + dx, eye_y), 26, (255, 255, 255), -1)
        cv2.circle(image, (cx + dx, eye_y), 12, (20, 20, 20), -1)
    cv2.ellipse(image, (cx, int(cy - face_h / 2 + 0.78 * face_h)), (50, 20), 0, 0, 180, (20, 20, 20), -1)
    return image, synthetic_face(cx, cy, face_w, face_h, size)


def test_drawing_goes_to_grabcut_and_keeps_the_character(matter):
    image, face = mascot()
    result = cut_out(image, face, illustration_hint=True, matter=matter)
    assert result.method == "illustration_grabcut"
    alpha = result.rgba[..., 3]
    eye_x = int((result.face.left_eye.x + result.face.right_eye.x) / 2)
    eye_y = int(result.face.left_eye.y)
    assert alpha[eye_y, eye_x] == 255
    # The shirt below the face is kept, the pale background beside the head is not.
    assert alpha[CANVAS_SIZE - 40, CANVAS_SIZE // 2] == 255
    assert alpha[eye_y, 40] == 0 and alpha[eye_y, CANVAS_SIZE - 40] == 0
    # Even without the validator's hint: the person model missing the face entirely sends a
    # drawing to GrabCut.
    assert cut_out(image, face, matter=matter).method == "illustration_grabcut"


def test_a_drawing_the_person_model_handles_stays_on_it(matter):
    image, face = cartoon()
    assert cut_out(image, face, illustration_hint=True, matter=matter).method == "person_model"


def test_framing_puts_eyes_and_face_where_documented(matter):
    image, face = cartoon()
    result = cut_out(image, face, illustration_hint=True, matter=matter)
    canvas_face = result.face
    assert canvas_face.image_width == canvas_face.image_height == CANVAS_SIZE
    eye_x = (canvas_face.left_eye.x + canvas_face.right_eye.x) / 2
    eye_y = (canvas_face.left_eye.y + canvas_face.right_eye.y) / 2
    assert eye_x == pytest.approx(CANVAS_SIZE / 2, abs=1.0)
    assert eye_y == pytest.approx(EYE_LINE * CANVAS_SIZE, abs=1.0)
    top, chin = canvas_face.landmarks[10], canvas_face.landmarks[152]
    assert chin[1] - top[1] == pytest.approx(FACE_HEIGHT * CANVAS_SIZE, abs=1.0)
    assert result.rgba.shape == (CANVAS_SIZE, CANVAS_SIZE, 4)
    assert result.preview_on_white.shape == result.preview_on_dark.shape == (CANVAS_SIZE, CANVAS_SIZE, 3)


def test_frame_past_the_image_is_transparent(matter):
    image, face = cartoon((640, 800))
    # Shrink the image so the frame reaches well past it on every side.
    small = cv2.resize(image, (320, 400), interpolation=cv2.INTER_AREA)
    result = cut_out(small, face, illustration_hint=True, matter=matter)
    assert result.rgba[:8, :, 3].max() == 0  # above the image top: padding


def test_photo_takes_the_person_path_and_is_deterministic(shared, matter):
    photo = np.asarray(Image.open(shared / "avatar-images" / "accept_photo__man-suit-plain-bg.jpg").convert("RGB"))
    first = cut_out(photo, None, matter=matter)
    second = cut_out(photo.copy(), None, matter=matter)
    assert first.method == "person_model"
    assert encode_png(first.rgba) == encode_png(second.rgba)
    assert first.quality == second.quality
    assert 0.1 < first.quality.alpha_coverage < 0.9
    assert first.quality.confidence >= 0.5 and WarningCode.LOW_MATTE_CONFIDENCE not in first.warnings
    # Straight alpha: colour is kept under partial alpha (previews are the only premultiplied mix).
    rgba = first.rgba.astype(np.float32)
    soft = (rgba[..., 3] > 20) & (rgba[..., 3] < 235)
    assert soft.any()
    white = first.preview_on_white.astype(np.float32)
    a = rgba[..., 3:4] / 255.0
    expected = rgba[..., :3] * a + 255.0 * (1 - a)
    assert np.abs(white - expected)[soft].max() <= 1.0


def test_band_only_canvas_equals_the_per_pixel_canvas():
    """The unresampled placement copies the known subject straight from the image and does
    per-pixel work on the band only; it must give exactly what visiting every canvas pixel of the
    region's RGBA gives (canvas, both previews, the quality counts), including a region that runs
    past the canvas and a subject cut by the region's border."""
    from avatarflow_matting.core import kernels
    from avatarflow_matting.core.alpha import refine
    from avatarflow_matting.core.foreground import foreground_at
    from avatarflow_matting.core.pipeline import (
        PREVIEW_DARK,
        PREVIEW_WHITE,
        _finish_canvas,
        _RegionMatte,
        _straight_rgba,
        trimap_from_mask,
    )

    truth = soft_disc(300, radius=110.0)
    truth[250:] = 1.0  # the subject reaches the region's bottom edge
    image = composite(truth)
    # A trimap like the pipeline's: eroded / dilated around the mask, so a band always separates
    # known subject from known background.
    known_fg, known_bg = trimap_from_mask(truth, 1.0)
    solved = refine(image, known_fg, known_bg)
    colour_ys = np.concatenate([solved.band.ys, solved.ring_ys])
    colour_xs = np.concatenate([solved.band.xs, solved.ring_xs])
    region = _RegionMatte(
        known_fg=solved.known_fg,
        band=solved.band,
        colour_ys=colour_ys,
        colour_xs=colour_xs,
        colours=foreground_at(image, solved.alpha, colour_ys, colour_xs),
        alpha=solved.alpha,
        method="person_model",
        segmentation_confidence=1.0,
        colour_separability=1.0,
        residual_background=0.0,
    )
    rgba = _straight_rgba(image, region)
    assert ((rgba[..., 3] > 0) & (rgba[..., 3] < 255)).any() and (rgba[..., 3] == 255).any()
    white, dark = np.array(PREVIEW_WHITE, np.uint8), np.array(PREVIEW_DARK, np.uint8)
    for shift in ((100.0, 200.0), (-40.0, 800.0), (900.0, -10.0)):
        fast = _finish_canvas(image, region, 1.0, *shift)
        full = kernels.finish_canvas(rgba, int(shift[0]), int(shift[1]), CANVAS_SIZE, white, dark)
        assert np.array_equal(fast.rgba, full[0])
        assert np.array_equal(fast.on_white, full[1]) and np.array_equal(fast.on_dark, full[2])
        assert (fast.covered_pixels, fast.soft_pixels, fast.outline_pixels) == full[3:]
        assert fast.soft_pixels > 0 and fast.outline_pixels > 0
