"""The cut-out keeps one figure, the one connected to the face (core/figure.py)."""

from __future__ import annotations

import cv2
import numpy as np
from avatarflow_matting.core.figure import detached_figures, seed_points
from avatarflow_matting.core.grid import Grid
from avatarflow_matting.core.pipeline import _matte_region, cut_out, matte

SUBJECT = (200, 120, 60)
BLOB = (210, 40, 40)
BACKGROUND = (40, 90, 200)


def figure_scene(
    passed_through: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[slice, slice]]]:
    """A head-and-torso subject on a plain background, with a person mask that (like the model on
    a busy background) also covers a detached blob, and has two enclosed holes: one where the image
    shows background (a real gap) and one where it shows the subject (a miss).

    ``passed_through``: two more enclosed patches of background colour the mask covers: "passed",
    where the model is unsure (0.8: it passed through a gap it half saw), and "shirt", where it is
    sure (1.0: a white shirt before a white wall looks like this)."""
    size = 400
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = BACKGROUND
    mask = np.zeros((size, size), np.float32)
    for target, value in ((image, SUBJECT), (mask, 1.0)):
        cv2.circle(target, (200, 130), 60, value, -1)
        cv2.rectangle(target, (90, 210), (310, size), value, -1)
        cv2.rectangle(target, (175, 180), (225, 215), value, -1)  # neck
    parts = {
        "blob": (slice(280, 330), slice(20, 60)),
        "gap": (slice(260, 300), slice(130, 170)),  # background seen through the figure
        "miss": (slice(260, 300), slice(230, 270)),  # subject the model missed
    }
    image[parts["blob"]] = BLOB
    mask[parts["blob"]] = 1.0
    image[parts["gap"]] = BACKGROUND
    mask[parts["gap"]] = 0.0
    mask[parts["miss"]] = 0.0
    if passed_through:
        parts["passed"] = (slice(330, 375), slice(125, 175))
        parts["shirt"] = (slice(330, 375), slice(225, 275))
        for name, confidence in (("passed", 0.8), ("shirt", 1.0)):
            image[parts[name]] = BACKGROUND
            mask[parts[name]] = confidence
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)  # a model's soft edge
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    landmarks = np.stack([200 + 45 * np.sin(angles), 130 - 50 * np.cos(angles)], axis=1)
    return image, mask, landmarks, parts


def region_alpha(
    cleanup: bool, passed_through: bool = False
) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[slice, slice]]]:
    image, mask, landmarks, parts = figure_scene(passed_through)
    seeds = seed_points(landmarks, image.shape[:2])
    region = _matte_region(image, Grid(*mask.shape).down(mask), landmarks, False, seeds, cleanup=cleanup)
    return region.alpha, seeds, parts


def test_a_detached_blob_is_dropped_and_holes_follow_the_image():
    alpha, seeds, parts = region_alpha(cleanup=True)
    assert alpha[parts["blob"]].max() == 0.0
    alpha_u8 = np.round(alpha * 255).astype(np.uint8)
    figures = detached_figures(alpha_u8, seeds)
    assert figures.detached_components == 0 and figures.detached_mass == 0.0
    # The hole that shows the subject is filled; the one that shows background stays open.
    gap_y, gap_x = parts["gap"]
    miss_y, miss_x = parts["miss"]
    inner = (slice(gap_y.start + 10, gap_y.stop - 10), slice(gap_x.start + 10, gap_x.stop - 10))
    assert alpha[inner].max() < 0.05
    assert alpha[miss_y.start + 10 : miss_y.stop - 10, miss_x.start + 10 : miss_x.stop - 10].min() > 0.95
    # The subject itself is intact.
    assert alpha[130, 200] == 1.0 and alpha[380, 100] == 1.0


def test_without_the_step_the_blob_and_the_miss_stay():
    """The same scene with the step off: what the step removes is really there to remove."""
    alpha, seeds, parts = region_alpha(cleanup=False)
    assert alpha[parts["blob"]].mean() > 0.5
    figures = detached_figures(np.round(alpha * 255).astype(np.uint8), seeds)
    assert figures.detached_components >= 1 and figures.detached_mass > 0.01
    miss_y, miss_x = parts["miss"]
    assert alpha[miss_y.start + 10 : miss_y.stop - 10, miss_x.start + 10 : miss_x.stop - 10].max() < 0.5


def _inner(part: tuple[slice, slice], margin: int = 10) -> tuple[slice, slice]:
    rows, cols = part
    return slice(rows.start + margin, rows.stop - margin), slice(cols.start + margin, cols.stop - margin)


def test_background_the_segmentation_passed_through_is_opened():
    """An enclosed patch of background that the mask covers with an unsure 0.8 becomes a hole (its
    edge decided by the image); the same colour covered with a sure 1.0 stays subject (a white shirt
    before a white wall is not told from a hole by colour alone). With the step off, both stay."""
    alpha, _, parts = region_alpha(cleanup=True, passed_through=True)
    assert alpha[_inner(parts["passed"])].max() < 0.05
    assert alpha[_inner(parts["shirt"])].min() > 0.95
    # The hole is cut at the image's edge, not left as a soft blur: its border rows are subject.
    rows, cols = parts["passed"]
    assert alpha[rows.start - 6, cols.start + 20] > 0.95 and alpha[rows.stop + 6, cols.start + 20] > 0.95
    assert alpha[rows.start + 4, cols.start + 20] < 0.2
    # The blob and the other holes behave as before.
    assert alpha[parts["blob"]].max() == 0.0
    assert alpha[_inner(parts["miss"])].min() > 0.95
    before, _, _ = region_alpha(cleanup=False, passed_through=True)
    assert before[_inner(parts["passed"])].min() > 0.95
    assert before[_inner(parts["shirt"])].min() > 0.95


def test_real_photo_logo_beside_the_neck_is_dropped(shared, matter):
    """accept_photo__bald-man-white-bg: the person model also takes a red logo on the backdrop
    beside the neck; the cut-out keeps only the figure connected to the face."""
    from avatarflow_validator.bootstrap import open_validator

    data = (shared / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    outcome = open_validator().validate_bytes(data)
    assert outcome.accepted and outcome.face is not None and outcome.image is not None
    results = {}
    for cleanup in (False, True):
        cut = cut_out(outcome.image.rgb, outcome.face, matter=matter, cleanup=cleanup)
        assert cut.face is not None
        seeds = seed_points(np.asarray(cut.face.landmarks)[:, :2], cut.rgba.shape[:2])
        results[cleanup] = (cut, detached_figures(cut.rgba[..., 3], seeds))
    before, after = results[False][1], results[True][1]
    assert before.detached_mass > 1e-3 and before.detached_pixels > 1000  # the logo
    assert after.detached_components == 0 and after.detached_pixels == 0
    # Nothing of the figure itself is lost: the alpha that remains is the kept part of "before".
    kept_before = results[False][0].rgba[..., 3].astype(np.float64).sum() * (1 - before.detached_mass)
    assert results[True][0].rgba[..., 3].astype(np.float64).sum() >= 0.99 * kept_before


def test_a_raised_arm_the_model_is_unsure_of_stays(shared, matter):
    """girl-1 (rembg's example): both arms raised, one motion-blurred, where the person mask falls
    below 0.5 between hand and shoulder. The hand is part of the figure and must survive."""
    from PIL import Image

    image = np.asarray(Image.open(shared / "matting" / "peer" / "girl-1.input.jpg").convert("RGB"))
    person = matter.person_mask(image)
    # The premise: at the 0.5 outline the hand is a piece of its own.
    pieces, _ = cv2.connectedComponents((person > 0.5).astype(np.uint8), connectivity=8)
    assert pieces - 1 >= 2
    kept = matte(image, None, matter=matter).alpha
    whole = matte(image, None, matter=matter, cleanup=False).alpha
    top = np.nonzero((whole > 0.5).any(axis=1))[0][0]  # the raised hand is the top of the subject
    assert abs(np.nonzero((kept > 0.5).any(axis=1))[0][0] - top) <= 3
    # The hands (the top sixth of the image) are still there: most of what the plain pipeline
    # calls subject keeps some alpha. (Not all of its alpha: the uncertain band re-decides the
    # motion-blurred hand against the sky and makes it more transparent, see docs/matting.md.)
    hands = whole[: image.shape[0] // 6] > 0.5
    assert hands.sum() > 100
    assert (kept[: image.shape[0] // 6][hands] > 0).mean() > 0.8
