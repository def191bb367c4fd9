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

# 4: the windows averaged on the grid are >= 12 px wide, so a 4 px cell resolves them (He & Sun
# use 4 for the guided filter with no visible loss) and the grid has 1/16 of the image's pixels.
FIELD_SCALE = 4
_MAP_WIDTH = 4096


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

    def up_nearest(self, cells: np.ndarray) -> np.ndarray:
        """Each pixel takes its cell's value (for masks: no new values appear)."""
        return cv2.resize(cells, (self.width, self.height), interpolation=cv2.INTER_NEAREST)

    def cells_of(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """uint8 (grid_h, grid_w): 1 on the cells holding any of the pixels (ys, xs)."""
        grid_w, grid_h = self.size
        cells = np.zeros((grid_h, grid_w), np.uint8)
        cells[ys * grid_h // self.height, xs * grid_w // self.width] = 1
        return cells

    def coordinates(self, ys: np.ndarray, xs: np.ndarray) -> GridPoints:
        """Grid coordinates of the pixel centres (ys, xs), ready for ``sample``."""
        grid_w, grid_h = self.size
        count = len(xs)
        # cv2.remap wants maps under 32767 per side: the points are laid out row by row.
        columns = max(1, min(count, _MAP_WIDTH))
        rows = max(1, -(-count // columns))
        maps = np.zeros((2, rows * columns), np.float32)
        maps[0, :count] = (xs.astype(np.float32) + 0.5) * (grid_w / self.width) - 0.5
        maps[1, :count] = (ys.astype(np.float32) + 0.5) * (grid_h / self.height) - 0.5
        return GridPoints(maps[0].reshape(rows, columns), maps[1].reshape(rows, columns), count)

    def sample(self, cells: np.ndarray, points: GridPoints) -> np.ndarray:
        """Bilinear reading of a (grid_h, grid_w[, C]) float32 field at ``points``: (N,) or (N, C)."""
        channels = 1 if cells.ndim == 2 else cells.shape[2]
        parts = []
        for start in range(0, channels, 4):  # cv2.remap takes at most 4 channels at a time
            source = cells if channels == 1 else np.ascontiguousarray(cells[..., start : start + 4])
            part = cv2.remap(source, points.map_x, points.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            parts.append(part.reshape(points.map_x.size, -1)[: points.count])
        values = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        return values[:, 0] if cells.ndim == 2 else values


@dataclass(frozen=True)
class GridPoints:
    """Pixel positions in a grid's coordinates, laid out as ``cv2.remap`` maps."""

    map_x: np.ndarray
    map_y: np.ndarray
    count: int
