"""Frame maths for the pack's files: the alpha-stacked and opaque variants and the atlas sheet.

Pure numpy on (N, H, W, C) uint8 arrays; the encoder adapter only turns the results into bytes.
"""

from __future__ import annotations

import numpy as np


def stack_alpha(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 4) straight RGBA -> (N, 2H, W, 3): colour on top, alpha as grey below.

    Colour where alpha is 0 is set to black (nothing hidden under the matte travels, and the
    colour half compresses better); a player multiplies the top half by the bottom half.
    """
    colour = np.where(frames[..., 3:4] > 0, frames[..., :3], 0).astype(np.uint8)
    alpha = np.repeat(frames[..., 3:4], 3, axis=3)
    return np.concatenate([colour, alpha], axis=1)


def over_background(frames: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """(N, H, W, 4) straight RGBA composited over a solid colour -> (N, H, W, 3)."""
    alpha = frames[..., 3:4].astype(np.float32) / 255.0
    background = np.asarray(rgb, np.float32)
    out = frames[..., :3].astype(np.float32) * alpha + background * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def tile_atlas(cells: np.ndarray, columns: int) -> np.ndarray:
    """(N, h, w, 4) -> one (rows*h, columns*w, 4) sheet, row-major, empty cells transparent."""
    count, height, width, channels = cells.shape
    rows = -(-count // columns)
    sheet = np.zeros((rows * height, columns * width, channels), dtype=cells.dtype)
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = cell
    return sheet
