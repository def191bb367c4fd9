"""Edge settings: the band follows the person model's uncertainty; painted edges stay clean."""

from __future__ import annotations

import cv2
import numpy as np
from avatarflow_matting.core import cut_out
from avatarflow_matting.core.alpha import refine
from avatarflow_matting.core.pipeline import trimap_from_mask

SUBJECT = (200, 120, 60)
BACKGROUND = (40, 90, 200)


def test_an_uncertain_patch_of_backdrop_is_decided_by_the_image():
    """The model half takes a patch of backdrop beside the shoulder for the person (0.7): with
    the band reaching over its uncertainty, the image says background there."""
    image = np.zeros((300, 300, 3), np.uint8)
    image[:] = BACKGROUND
    mask = np.zeros((300, 300), np.float32)
    cv2.circle(image, (150, 170), 90, SUBJECT, -1)
    cv2.circle(mask, (150, 170), 90, 1.0, -1)
    patch = (slice(155, 185), slice(38, 70))  # touching the subject's left side, backdrop colour
    mask[patch] = np.maximum(mask[patch], 0.7)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.0)
    inner = (slice(162, 178), slice(45, 56))
    alphas = {}
    for uncertain in (False, True):
        known_fg, known_bg = trimap_from_mask(mask, model_px=3.0, uncertain=uncertain)  # a 768 px image
        alphas[uncertain] = refine(image, known_fg, known_bg).alpha
    assert alphas[False][inner].mean() > 0.9  # the plain trimap takes the patch as subject
    assert alphas[True][inner].max() < 0.1
    assert alphas[True][170, 150] == 1.0 and alphas[True][10, 10] == 0.0


def test_painted_edges_lose_faint_streaks_with_the_illustration_hint(shared, matter):
    """oil-painting-peasant-man: with the hint, the edge's faint alpha (painted background mixed
    in) is cut by more than half while the figure's coverage stays the same."""
    from avatarflow_validator.bootstrap import open_validator

    data = (shared / "avatar-images" / "accept_illustration__oil-painting-peasant-man.png").read_bytes()
    outcome = open_validator().validate_bytes(data)
    assert outcome.accepted and outcome.face is not None and outcome.image is not None
    cuts = {
        hint: cut_out(outcome.image.rgb, outcome.face, illustration_hint=hint, matter=matter) for hint in (False, True)
    }
    assert cuts[False].method == cuts[True].method == "person_model"
    alpha = {hint: cut.rgba[..., 3] for hint, cut in cuts.items()}
    faint = {hint: int(((a > 0) & (a < 64)).sum()) for hint, a in alpha.items()}
    covered = {hint: int((a >= 128).sum()) for hint, a in alpha.items()}
    assert faint[True] < 0.5 * faint[False]
    assert abs(covered[True] - covered[False]) <= 0.01 * covered[False]
