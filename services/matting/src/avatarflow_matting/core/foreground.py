"""Foreground colour estimation (decontamination).

An edge pixel is a mix ``I = alpha*F + (1-alpha)*B``; keeping ``I`` as the cut-out colour leaves the
old background's colour in hair and edges (the halo users see on a new background). We solve for
``F`` with blur-fusion (Forte & Pitie 2021, "Approximate fast foreground colour estimation"):

1. Smooth local estimates of the subject and background colours: alpha-weighted box averages,
   ``F_s = blur(F*alpha) / blur(alpha)`` and ``B_s = blur(B*(1-alpha)) / blur(1-alpha)``.
2. The compositing equation's residual at the pixel, ``I - alpha*F_s - (1-alpha)*B_s``, is given
   to the foreground in proportion to alpha: ``F = F_s + alpha*(I - alpha*F_s - (1-alpha)*B_s)``,
   so that ``alpha*F + (1-alpha)*B_s`` reproduces ``I`` where the pixel is mostly subject.
3. Two passes: a wide box (``_COARSE_BOX`` px, taking F = B = I) finds the colours of the nearest
   subject and background even across a wide soft band; a narrow one (``_FINE_BOX`` px, on the
   first pass's F and B) brings back local detail.

It approximates the multi-level solver (Germer et al. 2020) this module used before at a fraction
of the cost: a fixed number of box filters, linear in the pixels and independent of the radii.
"""

from __future__ import annotations

import cv2
import numpy as np

from .alpha import to_float_image

# Box sizes (px) of the two passes, as in the paper (tuned there on the alphamatting.com set).
_COARSE_BOX = 90
_FINE_BOX = 6
# Keeps the normalisations finite where a box holds no subject (or no background) at all.
_TINY = 1e-5


def _fusion(image: np.ndarray, alpha: np.ndarray, blurred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One blur-fusion step on a list of pixels, given the box sums of (alpha, F*alpha,
    B*(1-alpha)) at them: the foreground estimate and the smoothed background it used."""
    a = alpha[:, None]
    blurred_alpha = blurred[:, :1]
    blurred_fg = blurred[:, 1:4] / (blurred_alpha + _TINY)
    blurred_bg = blurred[:, 4:7] / ((1.0 - blurred_alpha) + _TINY)
    foreground = blurred_fg + a * (image - a * blurred_fg - (1.0 - a) * blurred_bg)
    return np.clip(foreground, 0.0, 1.0), blurred_bg


def estimate_foreground(image_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Decontaminated foreground colours, float32 RGB in [0,1], same size as the image.

    Where alpha is 1 the original colour is kept exactly (nothing to decontaminate there). Colours
    are solved on the soft pixels and the transparent pixels touching the subject (a resampled
    cut-out mixes those in at its edge); the other transparent pixels are black (never visible).
    """
    image = to_float_image(image_rgb)
    alpha = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    foreground = image.copy()
    soft = alpha < 1.0
    visible = cv2.dilate((alpha > 0.0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    needed = soft & visible
    foreground[soft & ~visible] = 0.0
    if not needed.any():
        return foreground

    # Pass 1, F = B = I: box sums of (alpha, I*alpha, I); blur(I*(1-alpha)) = blur(I) - blur(I*alpha).
    # The boxes are wide, so they run over the whole image, but the rest only where pass 2 reads.
    weighted = image * alpha[..., None]
    coarse = cv2.blur(np.concatenate([alpha[..., None], weighted, image], axis=2), (_COARSE_BOX,) * 2)
    reach = np.ones((_FINE_BOX + 1,) * 2, np.uint8)  # covers the fine box around each needed pixel
    near = cv2.dilate(needed.astype(np.uint8), reach) > 0
    sums = coarse[near]
    sums[:, 4:7] -= sums[:, 1:4]
    near_alpha = alpha[near]
    coarse_fg, coarse_bg = _fusion(image[near], near_alpha, sums)

    # Pass 2 on pass 1's F and B: narrow boxes, fed only the pixels near the needed ones (the
    # boxes around needed pixels see nothing else).
    a = near_alpha[:, None]
    fine_input = np.zeros((*alpha.shape, 7), np.float32)
    fine_input[near] = np.concatenate([a, coarse_fg * a, coarse_bg * (1.0 - a)], axis=1)
    fine = cv2.blur(fine_input, (_FINE_BOX,) * 2)
    foreground[needed], _ = _fusion(image[needed], alpha[needed], fine[needed])
    return foreground
