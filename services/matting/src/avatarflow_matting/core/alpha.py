"""Soft alpha from a trimap: local colour-line projection, then an edge-aware guided filter.

Why this method: it is linear in the number of pixels (box filters only), so it runs at full
working resolution inside the latency budget, and it follows the colour-line model that the
closed-form matting Laplacian is built on (Levin et al. 2008): inside a small window the image is
a linear function of alpha. Steps, all restricted to the unknown band of the trimap:

1. Local foreground and background colours: normalised box averages of the known-foreground and
   known-background pixels, from a small radius outwards, so every unknown pixel gets the colours
   of its nearest known neighbours (coarse radii only where fine ones have no support).
2. First alpha guess: project the pixel colour onto the segment between those two colours
   (alpha = (I - B).(F - B) / |F - B|^2), the compositing equation solved for alpha.
3. Guided filter (He et al. 2013) of that guess with the colour image as guide: fits alpha as a
   local linear function of colour, which removes the projection's noise and snaps alpha to real
   image edges (hair strands included) while known pixels keep their trimap values.

Steps 1 and 3's windowed averages are computed on the coarse grid of ``grid.py`` (the guided
filter in its "fast" form, He & Sun 2015) and read back at the band pixels; the projection and
``q = a*I + b`` run on the band's own full-resolution pixels. Nothing is done per pixel outside
the band, so the cost follows the length of the subject's outline, not the image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import kernels
from .grid import Grid

TRIMAP_BACKGROUND_MAX = 50  # trimap values <= this are known background
TRIMAP_FOREGROUND_MIN = 200  # trimap values >= this are known foreground

# Radii (px) of the normalised averages used to find local fg/bg colours, finest first.
_LOCAL_COLOUR_RADII = (4, 8, 16, 32, 64, 128)
# Guided filter window radius (px) and regulariser: eps is the colour variance (in [0,1]^2 RGB)
# below which a window is treated as flat; 1e-4 (a standard deviation of ~2.5/255) keeps hair
# strands that are only a few grey levels away from the background.
_GUIDED_RADIUS = 4
_GUIDED_EPS = 1e-4
# A grid cell counts as known only when all of its pixels are (a partly known cell's average mixes
# in band colours); 8-bit area averages of a 0/255 mask are 255 exactly then.
_FULL_CELL = 255


def to_uint8_image(image_rgb: np.ndarray) -> np.ndarray:
    """RGB as uint8 (floats are taken to be in [0,1])."""
    if image_rgb.dtype == np.uint8:
        return np.ascontiguousarray(image_rgb[..., :3])
    return np.clip(np.round(image_rgb[..., :3].astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def to_float_image(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.dtype == np.uint8:
        return image_rgb.astype(np.float32) / 255.0
    return np.clip(image_rgb.astype(np.float32), 0.0, 1.0)


def known_cells(grid: Grid, known: np.ndarray) -> np.ndarray:
    """1.0 on the grid cells whose pixels are all in ``known`` (bool HxW), else 0.0."""
    coverage = grid.down(known.astype(np.uint8) * np.uint8(255))
    return (coverage == _FULL_CELL).astype(np.float32)


def local_colours(
    grid: Grid,
    image_cells: np.ndarray,
    known: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Average colour of the nearest known cells (``known``: 0/1 per cell), at the grid ``cells``
    (row and column indices); the field is returned whole, 0 elsewhere (written into ``out``,
    grid x 3, zero, when given: e.g. a view of a wider field).

    Radii from ``_LOCAL_COLOUR_RADII`` (converted to cells), finest first: a cell takes the first
    radius whose window holds at least one known cell; cells with none within the largest radius
    take the average of all known cells (or mid-grey when there is none at all).
    """
    rows, cols = cells
    radii = np.array(sorted({max(1, round(radius / grid.scale)) for radius in _LOCAL_COLOUR_RADII}), np.int64)
    field = np.zeros(image_cells.shape, np.float32) if out is None else out
    field[rows, cols] = kernels.nearest_known_colours(image_cells, known, rows, cols, radii)
    return field


@dataclass(frozen=True)
class Band:
    """The unknown pixels of a trimap as flat arrays (``np.nonzero`` order), with what the alpha
    solve found there."""

    ys: np.ndarray
    xs: np.ndarray
    colour: np.ndarray  # float32 (N, 3): the image colour in [0,1]
    fg_colour: np.ndarray  # float32 (N, 3): local subject colour
    bg_colour: np.ndarray  # float32 (N, 3): local background colour
    alpha: np.ndarray  # float32 (N,)

    def __len__(self) -> int:
        return len(self.ys)


@dataclass(frozen=True)
class Refinement:
    alpha: np.ndarray  # float32 HxW in [0,1]: known pixels 0/1, the band solved
    known_fg: np.ndarray  # bool HxW
    band: Band
    # Known-background pixels touching the band: transparent, but a resampled cut-out mixes them
    # in at its edge, so they need a colour too.
    ring_ys: np.ndarray
    ring_xs: np.ndarray
    grid: Grid
    image_cells: np.ndarray  # float32 (grid) x 3: the grid's view of the image, for later steps


def refine(image_u8: np.ndarray, known_fg: np.ndarray, known_bg: np.ndarray) -> Refinement:
    """Solve alpha on the unknown band of ``image_u8`` (uint8 RGB) given known fg/bg masks."""
    grid = Grid(*known_fg.shape)
    known_fg = np.ascontiguousarray(known_fg, dtype=np.bool_)
    known_bg = np.ascontiguousarray(known_bg, dtype=np.bool_)
    ys, xs, count = kernels.classify_band(known_fg, known_bg)
    cells = (known_cells(grid, known_fg), known_cells(grid, known_bg))
    return _solve(image_u8, grid, known_fg, ys, xs, count, cells)


def image_on_grid(grid: Grid, image_u8: np.ndarray) -> np.ndarray:
    """The grid's view of the image: float32 RGB in [0,1], one area average per cell."""
    return grid.down(image_u8).astype(np.float32) * np.float32(1.0 / 255.0)


def refine_on_grid(
    image_u8: np.ndarray, fg_cells: np.ndarray, bg_cells: np.ndarray, image_cells: np.ndarray | None = None
) -> Refinement:
    """``refine`` for a trimap given on the image's grid (bool cells: known subject, known
    background); a pixel takes its cell's class. ``image_cells``: ``image_on_grid``, if the caller
    has it already."""
    grid = Grid(*image_u8.shape[:2])
    rows, cols = grid.pixel_cells()
    known_fg, ys, xs, count = kernels.band_from_cells(fg_cells, bg_cells, rows, cols)
    known = (fg_cells.astype(np.float32), bg_cells.astype(np.float32))
    # Every cell of neither class holds band pixels (and only those do): the band's cells.
    band_cells = (~(fg_cells | bg_cells)).view(np.uint8)
    return _solve(image_u8, grid, known_fg, ys, xs, count, known, image_cells, band_cells)


def _solve(
    image_u8: np.ndarray,
    grid: Grid,
    known_fg: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    count: int,
    known: tuple[np.ndarray, np.ndarray],
    image_cells: np.ndarray | None = None,
    band_cells: np.ndarray | None = None,
) -> Refinement:
    """Alpha on the band (ys, xs)[:count]; the rest of (ys, xs) is the ring. ``known``: 0/1 per
    grid cell, fully known subject and background; ``band_cells``: uint8 1 on the cells holding
    band pixels, when the caller knows them (else found from the band)."""
    alpha = known_fg.astype(np.float32)
    if image_cells is None:
        image_cells = image_on_grid(grid, image_u8)
    ys, xs, ring_ys, ring_xs = ys[:count], xs[:count], ys[count:], xs[count:]
    colour = kernels.gather_colours(image_u8, ys, xs)
    if count == 0:
        empty = np.zeros((0, 3), np.float32)
        band = Band(ys, xs, colour, empty, empty, np.zeros(0, np.float32))
        return Refinement(alpha, known_fg, band, ring_ys, ring_xs, grid, image_cells)

    coordinates = grid.coordinates(ys, xs)
    # The cells the band's bilinear reads touch: those holding band pixels and their neighbours.
    if band_cells is None:
        band_cells = grid.cells_of(ys, xs)
    rows, cols = np.nonzero(cv2.dilate(band_cells, np.ones((3, 3), np.uint8)))
    # Both fields side by side, read in one pass (the bilinear weights are shared) that also
    # makes the first guess: the compositing equation solved for alpha against the local colours.
    grid_w, grid_h = grid.size
    fields = np.zeros((grid_h, grid_w, 6), np.float32)
    local_colours(grid, image_cells, known[0], (rows, cols), fields[..., :3])
    local_colours(grid, image_cells, known[1], (rows, cols), fields[..., 3:])
    fg_colour, bg_colour = kernels.local_colours_and_guess(
        fields, coordinates.map_x, coordinates.map_y, colour, alpha, ys, xs
    )

    # Guided filter of the guess (known pixels included: they anchor the windows at the band's
    # sides), coefficients on the grid, applied to each band pixel's own colour.
    radius = max(1, round(_GUIDED_RADIUS / grid.scale))
    fields = kernels.guided_coefficients(image_cells, grid.down(alpha), radius, rows, cols, _GUIDED_EPS)
    refined = kernels.guided_output(fields, coordinates.map_x, coordinates.map_y, colour, alpha, ys, xs)
    band = Band(ys, xs, colour, fg_colour, bg_colour, refined)
    return Refinement(alpha, known_fg, band, ring_ys, ring_xs, grid, image_cells)


def refine_alpha(image_rgb: np.ndarray, known_fg: np.ndarray, known_bg: np.ndarray) -> np.ndarray:
    """Alpha in [0,1] (float32) for ``image_rgb`` given known fg/bg masks."""
    return refine(to_uint8_image(image_rgb), known_fg, known_bg).alpha


def estimate_alpha_with_trimap(image_rgb: np.ndarray, trimap_u8: np.ndarray) -> np.ndarray:
    """Float alpha in [0,1] from an RGB image and a {0,128,255}-style trimap (same refinement as
    the cut-out uses on its own trimap)."""
    trimap = trimap_u8 if trimap_u8.ndim == 2 else trimap_u8[..., 0]
    return refine_alpha(image_rgb, trimap >= TRIMAP_FOREGROUND_MIN, trimap <= TRIMAP_BACKGROUND_MAX)
