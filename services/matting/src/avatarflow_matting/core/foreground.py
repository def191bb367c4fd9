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
of the cost. Both passes' box averages are smooth fields, so they are taken on the coarse grid of
``grid.py`` (4 px cells; the fine pass's 6 px box is then one cell, widened a little by the
bilinear read-back); only the final equation runs at full resolution, and only at the pixels that
need a colour.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import kernels
from .alpha import to_float_image, to_uint8_image
from .grid import Grid

# Box sizes (px) of the two passes, as in the paper (tuned there on the alphamatting.com set).
_COARSE_BOX = 90
_FINE_BOX = 6


def _box_cells(pixels: int, grid: Grid) -> tuple[int, int]:
    """A box of ``pixels`` as the nearest odd number of cells (odd: centred on the cell)."""
    cells = 2 * max(0, round((pixels / grid.scale - 1) / 2)) + 1
    return cells, cells


def foreground_at(
    image_u8: np.ndarray,
    alpha: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    image_cells: np.ndarray | None = None,
    known_colours: np.ndarray | None = None,
) -> np.ndarray:
    """Decontaminated foreground colours (float32 (N, 3) in [0,1]) at the pixels (ys, xs) of
    ``image_u8`` (uint8 RGB) with matte ``alpha`` (float32 HxW). ``image_cells``: the grid's view
    of the image when the caller has it already; ``known_colours``: the image colours (float32
    in [0,1]) of the first ``len(known_colours)`` of those pixels, when the caller has them (the
    alpha solve read the band's already)."""
    if len(ys) == 0:
        return np.zeros((0, 3), np.float32)
    grid = Grid(*alpha.shape)
    if image_cells is None:
        image_cells = grid.down(image_u8).astype(np.float32) * np.float32(1.0 / 255.0)
    alpha_cells = grid.down(alpha)

    # Pass 1, F = B = I: box averages of (alpha, I*alpha, I*(1-alpha)).
    coarse = cv2.blur(kernels.fusion_inputs(image_cells, alpha_cells), _box_cells(_COARSE_BOX, grid))

    # Pass 2 on pass 1's F and B, narrow boxes.
    fine = kernels.fusion_to_fine_pass(image_cells, alpha_cells, coarse)
    box = _box_cells(_FINE_BOX, grid)
    if box != (1, 1):
        fine = cv2.blur(fine, box)
    points = grid.coordinates(ys, xs)
    known = np.zeros((0, 3), np.float32) if known_colours is None else known_colours
    return kernels.foreground_at_points(fine, points.map_x, points.map_y, image_u8, alpha, ys, xs, known)


def estimate_foreground(image_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Decontaminated foreground colours, float32 RGB in [0,1], same size as the image.

    Where alpha is 1 the original colour is kept exactly (nothing to decontaminate there). Colours
    are solved on the soft pixels and the transparent pixels touching the subject (a resampled
    cut-out mixes those in at its edge); the other transparent pixels are black (never visible).
    """
    image_u8 = to_uint8_image(image_rgb)
    alpha = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    foreground = to_float_image(image_rgb)
    soft = alpha < 1.0
    visible = cv2.dilate((alpha > 0.0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    foreground[soft & ~visible] = 0.0
    ys, xs = np.nonzero(soft & visible)
    foreground[ys, xs] = foreground_at(image_u8, alpha, ys, xs)
    return foreground
