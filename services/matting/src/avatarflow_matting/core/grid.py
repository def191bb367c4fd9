"""A coarse grid over an image, for the quantities of a matte that vary slowly.

Local subject and background colours, guided-filter coefficients and blur-fusion colour estimates
are all averages over windows of 10-90 px: they carry no detail finer than a few pixels. They are
computed on a grid ``FIELD_SCALE`` times coarser than the image (an area average of each cell) and
read back at full resolution only where needed, at the pixels of the edge band, by bilinear
interpolation. This is the scheme of the Fast Guided Filter (He & Sun 2015): the per-pixel steps
that carry detail (alpha projection, ``q = a*I + b``, the foreground equation) run on the full
resolution pixels, the windowed statistics on the coarse grid, so the cost is one area-downsample
of the image plus work proportional to the band, not to the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import kernels

# 4: the windows averaged on the grid are >= 12 px wide, so a 4 px cell resolves them (He & Sun
# use 4 for the guided filter with no visible loss) and the grid has 1/16 of the image's pixels.
FIELD_SCALE = 4


@dataclass(frozen=True)
class Grid:
    """The coarse grid of an ``height`` x ``width`` image."""

    height: int
    width: int
    scale: int = FIELD_SCALE

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the grid, as OpenCV wants sizes."""
        return max(1, round(self.width / self.scale)), max(1, round(self.height / self.scale))

    def down(self, image: np.ndarray) -> np.ndarray:
        """Area average of each cell (the grid's view of ``image``)."""
        if self.size == (self.width, self.height):
            return image.copy()
        return cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)

    def cells_of(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """uint8 (grid_h, grid_w): 1 on the cells holding any of the pixels (ys, xs)."""
        grid_w, grid_h = self.size
        cells = np.zeros((grid_h, grid_w), np.uint8)
        cells[ys * grid_h // self.height, xs * grid_w // self.width] = 1
        return cells

    def coordinates(self, ys: np.ndarray, xs: np.ndarray) -> GridPoints:
        """Grid coordinates of the pixel centres (ys, xs), ready for ``sample``."""
        grid_w, grid_h = self.size
        map_x = (xs.astype(np.float32) + np.float32(0.5)) * np.float32(grid_w / self.width) - np.float32(0.5)
        map_y = (ys.astype(np.float32) + np.float32(0.5)) * np.float32(grid_h / self.height) - np.float32(0.5)
        return GridPoints(map_x, map_y)

    def sample(self, cells: np.ndarray, points: GridPoints) -> np.ndarray:
        """Bilinear reading of a (grid_h, grid_w[, C]) float32 field at ``points``: (N,) or (N, C)."""
        field = np.ascontiguousarray(cells[..., None] if cells.ndim == 2 else cells, dtype=np.float32)
        values = kernels.sample_bilinear(field, points.map_x, points.map_y)
        return values[:, 0] if cells.ndim == 2 else values

    def pixel_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """The cell row of each pixel row and the cell column of each pixel column (the cells of
        ``down``'s area average)."""
        grid_w, grid_h = self.size
        rows = np.minimum(np.arange(self.height) * grid_h // self.height, grid_h - 1)
        cols = np.minimum(np.arange(self.width) * grid_w // self.width, grid_w - 1)
        return rows, cols


@dataclass(frozen=True)
class GridPoints:
    """Pixel positions in a grid's coordinates (float32 x and y, one per point)."""

    map_x: np.ndarray
    map_y: np.ndarray
