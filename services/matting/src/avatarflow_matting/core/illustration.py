"""Subject mask for drawings, where the photo-trained person model is weak: GrabCut.

GrabCut (Rother et al. 2004) learns colour models of subject and background from seeds, so it
works on flat-shaded and painted characters that the person model does not recognise. Seeds:

* certain subject: the face-mesh hull shrunk towards its centre (the face is the subject);
* probable subject: the head region (face box widened for hair and raised for the top of the head),
  the torso below it, and whatever the person model still calls person;
* certain background: a thin strip along the top, left and right image borders (the bottom edge
  usually cuts through the body);
* everything else probable background.

It runs on a copy at most ``GRABCUT_MAX_SIDE`` pixels long (the colour models do not need more),
with OpenCV's RNG seeded so the result is deterministic.
"""

from __future__ import annotations

import cv2
import numpy as np

GRABCUT_MAX_SIDE = 512
_ITERATIONS = 5
_BORDER_FRACTION = 0.02
_HULL_SHRINK = 0.8  # the certain-face seed is the hull scaled by this about its centre
_RNG_SEED = 0x5EED


def face_hull_mask(shape: tuple[int, int], landmarks_xy: np.ndarray, shrink: float = 1.0) -> np.ndarray:
    """Filled convex hull of the face landmarks (optionally shrunk about its centroid)."""
    points = landmarks_xy.astype(np.float64)
    centre = points.mean(0)
    points = centre + (points - centre) * shrink
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask > 0


def grabcut_mask(image_rgb: np.ndarray, landmarks_xy: np.ndarray | None, person_mask: np.ndarray) -> np.ndarray:
    """Float32 subject mask in [0,1] at the image's size (edges softened only by resampling)."""
    height, width = image_rgb.shape[:2]
    scale = min(1.0, GRABCUT_MAX_SIDE / max(height, width))
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    small_person = cv2.resize(person_mask, size, interpolation=cv2.INTER_LINEAR)
    sh, sw = small.shape[:2]

    seeds = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    seeds[small_person > 0.5] = cv2.GC_PR_FGD
    if landmarks_xy is not None:
        points = landmarks_xy * [sw / width, sh / height]
        x0, y0 = points.min(0)
        x1, y1 = points.max(0)
        face_w, face_h = x1 - x0, y1 - y0
        head = (int(x0 - 0.35 * face_w), int(y0 - 0.45 * face_h), int(x1 + 0.35 * face_w), int(y1))
        cv2.rectangle(seeds, head[:2], head[2:], cv2.GC_PR_FGD, thickness=-1)
        torso = (int(x0 - 0.9 * face_w), int(y1), int(x1 + 0.9 * face_w), sh)
        cv2.rectangle(seeds, torso[:2], torso[2:], cv2.GC_PR_FGD, thickness=-1)
    else:  # no face: the centre of the frame is probably the subject
        cv2.rectangle(seeds, (sw // 5, sh // 8), (sw - sw // 5, sh), cv2.GC_PR_FGD, thickness=-1)
    border = max(2, round(_BORDER_FRACTION * max(sh, sw)))
    seeds[:border] = cv2.GC_BGD
    seeds[:, :border] = cv2.GC_BGD
    seeds[:, -border:] = cv2.GC_BGD
    if landmarks_xy is not None:
        seeds[face_hull_mask((sh, sw), points, _HULL_SHRINK)] = cv2.GC_FGD

    if not (seeds == cv2.GC_PR_FGD).any() and not (seeds == cv2.GC_FGD).any():
        return np.zeros((height, width), np.float32)
    cv2.setRNGSeed(_RNG_SEED)
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[..., ::-1])
    cv2.grabCut(bgr, seeds, None, bgd_model, fgd_model, _ITERATIONS, cv2.GC_INIT_WITH_MASK)
    subject = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.float32)
    return cv2.resize(subject, (width, height), interpolation=cv2.INTER_LINEAR)
