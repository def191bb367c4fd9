"""Quality figures of a matte, and the confidence behind the low-confidence warning.

Thresholds and why:

* ``SEPARABLE_DISTANCE``: where the local subject and background colours are closer than this
  (Euclidean RGB in [0,1], ~40/255), the compositing equation cannot tell them apart, so alpha
  there is a guess. The share of the edge band above it is the colour separability.
* ``MAX_TRANSITION_MODEL_PX``: a confident segmentation goes from background to person within
  ~2 model pixels (its own upsampling blur); a transition wider than 8 model pixels on average
  means the model does not know where the edge is (confidence falls linearly from 2 to 8).
* Face support: the person model should call the whole face "person"; a mean probability of 0.5
  or less inside the face-mesh hull gives zero confidence, 0.9 or more full confidence.
* ``LOW_CONFIDENCE``: below 0.5 the editor is told the edges may look rough.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import kernels

SEPARABLE_DISTANCE = 0.16
SHARP_TRANSITION_MODEL_PX = 2.0
MAX_TRANSITION_MODEL_PX = 8.0
FACE_SUPPORT_NONE = 0.5
FACE_SUPPORT_FULL = 0.9
LOW_CONFIDENCE = 0.5

_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)


def boundary_pixels(solid: np.ndarray) -> np.ndarray:
    """Pixels of ``solid`` with a 4-neighbour outside it, ignoring the array's own border."""
    inner = cv2.erode(solid.astype(np.uint8), _CROSS, borderType=cv2.BORDER_REPLICATE) > 0
    boundary = solid & ~inner
    boundary[[0, -1], :] = False
    boundary[:, [0, -1]] = False
    return boundary


def mean_edge_band_px(soft_pixels: int, outline_pixels: int) -> float:
    """Soft pixels (0 < alpha < 1) per pixel of the alpha = 0.5 outline: the mean band width
    (counted on the canvas by ``kernels.finish_canvas``)."""
    return soft_pixels / outline_pixels if outline_pixels else 0.0


def segmentation_decisiveness(mask: np.ndarray, model_px: float) -> float:
    """1 when the mask switches sharply from background to person, 0 when it is mushy."""
    outline = int(boundary_pixels(mask > 0.5).sum())
    if outline == 0:
        return 0.0
    transition = int(((mask > 0.1) & (mask < 0.9)).sum()) / outline / max(model_px, 1e-6)
    span = MAX_TRANSITION_MODEL_PX - SHARP_TRANSITION_MODEL_PX
    return float(np.clip(1.0 - (transition - SHARP_TRANSITION_MODEL_PX) / span, 0.0, 1.0))


def face_support(mask: np.ndarray, face_hull: np.ndarray | None) -> float:
    """Mean mask value inside the face-mesh hull (1.0 when there is no face to check)."""
    if face_hull is None or not face_hull.any():
        return 1.0
    return float(mask[face_hull].mean())


def face_support_confidence(support: float) -> float:
    span = FACE_SUPPORT_FULL - FACE_SUPPORT_NONE
    return float(np.clip((support - FACE_SUPPORT_NONE) / span, 0.0, 1.0))


def colour_separability(fg_colour: np.ndarray, bg_colour: np.ndarray) -> float:
    """Share of the edge band (its pixels' local subject and background colours, (N, 3) each)
    where the two differ enough to be separated."""
    return float(kernels.separable_share(fg_colour, bg_colour, SEPARABLE_DISTANCE))


def residual_background(
    alpha: np.ndarray,
    foreground: np.ndarray,
    fg_colour: np.ndarray,
    bg_colour: np.ndarray,
) -> float:
    """Estimated share of background colour left in the cut-out's soft edge pixels.

    All arguments are per edge-band pixel: alpha (N,), output colour, local subject colour and
    local background colour (N, 3). Each soft pixel's output colour is placed on the segment from
    the local subject colour (0) to the local background colour (1); the alpha-weighted mean of
    that position is the residual (alpha-weighted because a pixel's colour shows in proportion to
    its opacity). Pixels whose subject and background colours are not separable carry no
    information and are skipped.
    """
    return float(kernels.residual_background(alpha, foreground, fg_colour, bg_colour, SEPARABLE_DISTANCE))
