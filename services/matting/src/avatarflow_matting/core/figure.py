"""The subject is one connected figure.

The person model answers per pixel, so a busy background leaves pieces of it marked "person": a
logo fragment beside the neck, a patch of a window beside a shoulder. Whatever does not touch the
face is not the subject: the head, hair, neck, shoulders and torso (and what they hold) all
connect to it. Two steps, seeded from the face (the validator's landmarks; without them the largest
component is the figure):

1. On the coarse grid, before the trimap (``connected_mask``): mask components (connected through
   mask > ``REACH_MIN``) that touch neither the face nor the line below the chin (``seed_points``)
   are dropped, so no edge band is solved around them; holes of the mask enclosed by the figure
   are decided by the image (``_fill_subject_holes``): a hole whose colour matches the subject
   around it and not the background outside the figure (next to the hole, or around the whole
   figure) is something the model missed (a dark shirt fold, a strand of hair) and is filled; one
   that looks like the background (the gap between an ear and the head, between an arm and the
   body) stays a hole. The other way round, background the segmentation passed through
   (``_open_background_holes``): a pocket of the figure enclosed by it, where the model was unsure
   (mask below ``SURE_SUBJECT``) and whose colour matches the background outside the figure and
   not the subject around it (the gap between an arm on the hip and the body, the model half
   filling it) is opened into a hole, so the band solve cuts its edge from the image.
2. At full resolution, after the alpha solve (``drop_band_islands``): band pixels of non-zero
   alpha not 8-connected to the known subject through non-zero alpha are set to 0 (islands the
   solve left).

``detached_figures`` measures the result on a finished cut-out (the evaluation's figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import kernels
from .alpha import Band
from .framing import CHIN_LANDMARK, FOREHEAD_LANDMARK

# A hole is filled when its mean colour is this many times closer to the subject around it than to
# the background outside the figure (RGB distances in [0,1]); near-ties stay holes.
HOLE_SUBJECT_MARGIN = 2.0
# Components are joined through mask values above this, not only the 0.5 outline: a raised arm
# that the model is unsure of (motion blur, 0.3-0.5) still belongs to the body. 0.1 joins a logo
# on the backdrop of bald-man-white-bg to the shoulder through the model's low-level noise.
REACH_MIN = 0.25
# The body seed: the line from the chin down this many face heights (forehead-chin distances),
# along the face's own axis.
BODY_LINE_FACE_HEIGHTS = 1.0
# The subject ring around a hole and the background sampled around the figure, in grid cells.
_RING_CELLS = 2
_BACKGROUND_CELLS = 6
# Smaller holes lie wholly inside the trimap's band, where the alpha solve already decides them.
_MIN_HOLE_CELLS = 9
# Where the model says "person" at least this surely, a background-coloured pocket is taken to be
# the subject (a white shirt before a white wall cannot be told from a hole by colour); the same
# threshold as the trimap's sure subject (pipeline._SURE_SUBJECT).
SURE_SUBJECT = 0.95
# A pocket is opened when its mean colour is this many times closer to the background outside the
# figure than to the sure subject around it; near-ties stay subject.
HOLE_BACKGROUND_MARGIN = 2.0
# The background colours a pocket is compared with: at most this many cells of the background
# around the figure (its nearest one counts: a busy background has many colours).
_BACKGROUND_SAMPLES = 512
_BELOW_OUTLINE = np.float32(0.5) - np.float32(1e-3)  # just outside the 0.5 outline: a hole's value


def seed_points(landmarks_xy: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Integer (N, 2) (x, y) pixels that belong to the subject, inside the image: the face
    landmarks and, with a full face mesh, the line below the chin (neck and chest: a drawn
    character's body need not touch its head). Empty without landmarks: the largest component is
    then the figure (``_kept_labels``)."""
    height, width = shape
    if landmarks_xy is not None:
        points = landmarks_xy.astype(np.float64)
        if len(points) > max(FOREHEAD_LANDMARK, CHIN_LANDMARK):
            top, chin = points[FOREHEAD_LANDMARK], points[CHIN_LANDMARK]
            steps = np.linspace(0.0, BODY_LINE_FACE_HEIGHTS, 32)[:, None]
            points = np.concatenate([points, chin + steps * (chin - top)])
    else:
        return np.zeros((0, 2), np.int64)
    points = np.round(points).astype(np.int64)
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    return points[inside]


def _kept_labels(labels: np.ndarray, count: int, seeds: np.ndarray) -> np.ndarray:
    """Bool lookup per label: True for the components holding a seed (the largest one when no
    seed lands on the support), False for the background label 0."""
    keep = np.zeros(count, np.bool_)
    if len(seeds):
        keep[labels[seeds[:, 1], seeds[:, 0]]] = True
    keep[0] = False
    if not keep.any() and count > 1:
        keep[1 + int(np.argmax(np.bincount(labels.ravel(), minlength=count)[1:]))] = True
    return keep


def connected_mask(mask_cells: np.ndarray, image_cells: np.ndarray, seeds_cells: np.ndarray) -> np.ndarray:
    """The coarse mask with the components not touching the face removed and the enclosed holes
    that look like the subject filled (see the module docstring). ``seeds_cells``: (x, y) cells;
    ``image_cells``: the grid's view of the image (float RGB)."""
    reach = (mask_cells > REACH_MIN).astype(np.uint8)
    count, labels = cv2.connectedComponents(reach, connectivity=8)
    if count <= 1:
        return mask_cells
    keep = _kept_labels(labels, count, seeds_cells)
    figure = keep[labels] & (mask_cells > 0.5)
    result = np.where(figure, mask_cells, np.minimum(mask_cells, _BELOW_OUTLINE)).astype(np.float32)
    result = _fill_subject_holes(result, figure, image_cells)
    return _open_background_holes(result, figure, image_cells)


def _open_background_holes(mask_cells: np.ndarray, figure: np.ndarray, image_cells: np.ndarray) -> np.ndarray:
    """Open the pockets of ``figure`` that are background the segmentation passed through: unsure
    cells (mask below ``SURE_SUBJECT``, 4-connected) enclosed by sure subject, at least
    ``_MIN_HOLE_CELLS`` big, whose mean colour is ``HOLE_BACKGROUND_MARGIN`` times closer to the
    nearest background colour outside the figure than to the sure subject around them. Their mask
    drops just below 0.5, so the trimap puts a band on their edge and the image decides it."""
    unsure = (figure & (mask_cells < SURE_SUBJECT)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(unsure, connectivity=4)
    if count <= 1:
        return mask_cells
    # A pocket touching the outside of the figure is the outline's own soft edge (the trimap's
    # uncertain band decides it), not an enclosed hole.
    outside = cv2.dilate((~figure).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    touching = np.zeros(count, np.bool_)
    touching[labels[outside & (unsure > 0)]] = True
    touching[labels[0]] = touching[labels[-1]] = touching[labels[:, 0]] = touching[labels[:, -1]] = True
    touching[0] = True
    pockets = np.flatnonzero(~touching & (stats[:, cv2.CC_STAT_AREA] >= _MIN_HOLE_CELLS))
    if len(pockets) == 0:
        return mask_cells
    grown = cv2.dilate(figure.astype(np.uint8), np.ones((2 * _BACKGROUND_CELLS + 1,) * 2, np.uint8)) > 0
    background = image_cells[grown & ~figure]
    if len(background) == 0:
        return mask_cells
    background = background[:: max(1, len(background) // _BACKGROUND_SAMPLES)]
    sure = figure & (mask_cells >= SURE_SUBJECT)
    height, width = figure.shape
    result = mask_cells.copy()
    for pocket in pockets:
        x, y, w, h = stats[pocket, :4]
        pad = _RING_CELLS
        y0, y1, x0, x1 = max(0, y - pad), min(height, y + h + pad), max(0, x - pad), min(width, x + w + pad)
        inside = labels[y0:y1, x0:x1] == pocket
        ring = (cv2.dilate(inside.astype(np.uint8), np.ones((2 * _RING_CELLS + 1,) * 2, np.uint8)) > 0) & sure[
            y0:y1, x0:x1
        ]
        if not ring.any():
            continue
        colours = image_cells[y0:y1, x0:x1]
        pocket_colour = colours[inside].mean(0)
        to_subject = float(np.linalg.norm(pocket_colour - colours[ring].mean(0)))
        to_background = float(np.sqrt(((background - pocket_colour) ** 2).sum(1).min()))
        if HOLE_BACKGROUND_MARGIN * to_background < to_subject:
            result[y0:y1, x0:x1][inside] = np.minimum(result[y0:y1, x0:x1][inside], _BELOW_OUTLINE)
    return result


def _fill_subject_holes(mask_cells: np.ndarray, figure: np.ndarray, image_cells: np.ndarray) -> np.ndarray:
    """Fill the holes of ``figure`` (4-connected background not reaching the grid's border) whose
    colour says subject; see ``HOLE_SUBJECT_MARGIN``."""
    outside = (~figure).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(outside, connectivity=4)
    if count <= 2:  # only the background that reaches the border (or nothing)
        return mask_cells
    is_border = np.zeros(count, np.bool_)
    is_border[labels[0]] = is_border[labels[-1]] = is_border[labels[:, 0]] = is_border[labels[:, -1]] = True
    is_border[0] = True  # label 0 is the figure itself
    holes = np.flatnonzero(~is_border & (stats[:, cv2.CC_STAT_AREA] >= _MIN_HOLE_CELLS))
    if len(holes) == 0:
        return mask_cells
    figure_u8 = figure.astype(np.uint8)
    grown = cv2.dilate(figure_u8, np.ones((2 * _BACKGROUND_CELLS + 1,) * 2, np.uint8)) > 0
    open_background = grown & is_border[labels] & ~figure
    if not open_background.any():
        return mask_cells
    everywhere = image_cells[open_background].mean(0)
    height, width = figure.shape
    result = mask_cells.copy()
    cells = image_cells
    for hole in holes:
        x, y, w, h = stats[hole, :4]
        pad = _BACKGROUND_CELLS + _RING_CELLS
        y0, y1, x0, x1 = max(0, y - pad), min(height, y + h + pad), max(0, x - pad), min(width, x + w + pad)
        inside = labels[y0:y1, x0:x1] == hole
        ring = (cv2.dilate(inside.astype(np.uint8), np.ones((2 * _RING_CELLS + 1,) * 2, np.uint8)) > 0) & figure[
            y0:y1, x0:x1
        ]
        if not ring.any():
            continue
        colours = cells[y0:y1, x0:x1]
        # The background next to the hole where the figure is thin, else around the whole figure.
        background = open_background[y0:y1, x0:x1]
        background_colour = colours[background].mean(0) if background.any() else everywhere
        hole_colour = colours[inside].mean(0)
        to_subject = float(np.linalg.norm(hole_colour - colours[ring].mean(0)))
        to_background = float(np.linalg.norm(hole_colour - background_colour))
        if HOLE_SUBJECT_MARGIN * to_subject < to_background:
            result[y0:y1, x0:x1][inside] = 1.0
    return result


def drop_band_islands(alpha: np.ndarray, known_fg: np.ndarray, band: Band) -> bool:
    """Zero (in place, in ``alpha`` and ``band.alpha``) the band pixels whose non-zero alpha is
    not 8-connected to the known subject through non-zero alpha; True when any was. The known
    subject is the figure already (``connected_mask`` ran before the trimap), so only the band is
    searched: the cost follows the outline, not the image."""
    return kernels.drop_band_islands(alpha, known_fg, band.ys, band.xs, band.alpha) > 0


@dataclass(frozen=True)
class FigureFigures:
    """How much of a finished alpha is not the face's figure."""

    detached_components: int  # 8-connected components of alpha > 0 not holding the face
    detached_mass: float  # their share of the total alpha mass
    detached_pixels: int


def detached_figures(alpha_u8: np.ndarray, seeds: np.ndarray) -> FigureFigures:
    """Measure the alpha outside the component connected to the face (``seeds``: (x, y) pixels)."""
    count, labels = cv2.connectedComponents((alpha_u8 > 0).astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    if count <= 1:
        return FigureFigures(0, 0.0, 0)
    keep = _kept_labels(labels, count, seeds)
    mass = np.bincount(labels.ravel(), weights=alpha_u8.ravel().astype(np.float64), minlength=count)
    pixels = np.bincount(labels.ravel(), minlength=count)
    detached = ~keep
    detached[0] = False
    total = float(mass[1:].sum())
    return FigureFigures(
        detached_components=int(detached.sum()),
        detached_mass=float(mass[detached].sum()) / total if total else 0.0,
        detached_pixels=int(pixels[detached].sum()),
    )
