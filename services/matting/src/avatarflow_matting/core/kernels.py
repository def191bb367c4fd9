"""Per-pixel steps of the matte, compiled with numba.

Each runs once over the edge band's pixels (tens of thousands per megapixel). Written with numpy,
every step allocates several (N, 3) temporaries and passes over them one operation at a time; as
single compiled loops they read each pixel once, which is what makes the band, not the image, the
cost. ``cache=True`` writes the compiled code to ``NUMBA_CACHE_DIR``, which the package's
bootstrap (``avatarflow_matting/bootstrap.py``) sets before this module first imports numba: a new
worker loads the compiled code instead of compiling.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Alpha this close to 0 or 1 is treated as exactly 0 or 1 (below 8-bit visibility after rounding).
SNAP = np.float32(1.0 / 255.0)
# Keeps the compositing equation's solutions finite where subject and background colours coincide.
_TINY_SPAN = np.float32(1e-4)
# Keeps blur-fusion's normalisations finite where a box holds no subject (or no background) at all.
_TINY_WEIGHT = np.float32(1e-5)
_INV_255 = np.float32(1.0 / 255.0)


@njit(cache=True, nogil=True)
def classify_band(known_fg: np.ndarray, known_bg: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixels of the unknown band (neither known), then the known-background pixels that touch
    the band (8-neighbours): their (ys, xs) in one pair of arrays, band first, and the band's count.

    A few passes over two bool masks, instead of a mask, a dilation and two ``np.nonzero``.
    """
    height, width = known_fg.shape
    band = 0
    for y in range(height):
        for x in range(width):
            band += not (known_fg[y, x] or known_bg[y, x])
    # Each band pixel marks its background neighbours once (the ring).
    marked = np.zeros((height, width), np.bool_)
    ring = 0
    for y in range(height):
        for x in range(width):
            if known_fg[y, x] or known_bg[y, x]:
                continue
            for ny in range(max(0, y - 1), min(height, y + 2)):
                for nx in range(max(0, x - 1), min(width, x + 2)):
                    if known_bg[ny, nx] and not marked[ny, nx]:
                        marked[ny, nx] = True
                        ring += 1
    ys = np.empty(band + ring, np.int32)
    xs = np.empty(band + ring, np.int32)
    band_at, ring_at = 0, band
    for y in range(height):
        for x in range(width):
            if marked[y, x]:
                ys[ring_at], xs[ring_at] = y, x
                ring_at += 1
            elif not (known_fg[y, x] or known_bg[y, x]):
                ys[band_at], xs[band_at] = y, x
                band_at += 1
    return ys, xs, band


@njit(cache=True, nogil=True)
def band_from_cells(
    fg_cells: np.ndarray, bg_cells: np.ndarray, row_cell: np.ndarray, col_cell: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Full-resolution trimap from a trimap on a grid (pixel (y, x) lies in cell (row_cell[y],
    col_cell[x])): the known-foreground mask, and like ``classify_band`` the band's pixels then
    the known-background pixels touching it, with the band's count. Only the band's cells are
    visited pixel by pixel; the rest of the image is one mask fill."""
    height, width = len(row_cell), len(col_cell)
    grid_h, grid_w = fg_cells.shape
    known_fg = np.zeros((height, width), np.bool_)
    # Pixel extent of each cell row and column (the maps are non-decreasing).
    row_start = np.full(grid_h + 1, height, np.int64)
    col_start = np.full(grid_w + 1, width, np.int64)
    for y in range(height - 1, -1, -1):
        row_start[row_cell[y]] = y
    for x in range(width - 1, -1, -1):
        col_start[col_cell[x]] = x
    for r in range(grid_h - 1, -1, -1):
        row_start[r] = min(row_start[r], row_start[r + 1])
    for c in range(grid_w - 1, -1, -1):
        col_start[c] = min(col_start[c], col_start[c + 1])

    band = 0
    for r in range(grid_h):
        for c in range(grid_w):
            cells = (row_start[r + 1] - row_start[r]) * (col_start[c + 1] - col_start[c])
            if fg_cells[r, c]:
                known_fg[row_start[r] : row_start[r + 1], col_start[c] : col_start[c + 1]] = True
            elif not bg_cells[r, c]:
                band += cells
    # The ring: background pixels 8-adjacent to a band pixel, i.e. in a background cell next to a
    # band cell, on the pixel row or column that touches it.
    marked = np.zeros((height, width), np.bool_)
    ys = np.empty(band, np.int32)
    xs = np.empty(band, np.int32)
    ring_ys = []
    ring_xs = []
    at = 0
    for r in range(grid_h):
        for c in range(grid_w):
            if fg_cells[r, c] or bg_cells[r, c]:
                continue
            # A pixel's 8-neighbours lie in its own cell or the 8 around it: a band cell with no
            # background cell around it has no ring pixels (most of a band several cells wide).
            near_bg = False
            for nr in range(max(0, r - 1), min(grid_h, r + 2)):
                for nc in range(max(0, c - 1), min(grid_w, c + 2)):
                    near_bg |= bg_cells[nr, nc]
            for y in range(row_start[r], row_start[r + 1]):
                for x in range(col_start[c], col_start[c + 1]):
                    ys[at], xs[at] = y, x
                    at += 1
                    if not near_bg:
                        continue
                    for ny in range(max(0, y - 1), min(height, y + 2)):
                        for nx in range(max(0, x - 1), min(width, x + 2)):
                            if bg_cells[row_cell[ny], col_cell[nx]] and not marked[ny, nx]:
                                marked[ny, nx] = True
                                ring_ys.append(ny)
                                ring_xs.append(nx)
    all_ys = np.empty(band + len(ring_ys), np.int32)
    all_xs = np.empty(band + len(ring_ys), np.int32)
    all_ys[:band], all_xs[:band] = ys, xs
    for i in range(len(ring_ys)):
        all_ys[band + i], all_xs[band + i] = ring_ys[i], ring_xs[i]
    return known_fg, all_ys, all_xs, band


@njit(cache=True, nogil=True)
def sample_bilinear(field: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear reading of ``field`` (H x W x C float32) at the points (map_x, map_y) (grid
    coordinates of pixel centres), clamped at the borders: N x C."""
    height, width, channels = field.shape
    out = np.empty((len(map_x), channels), np.float32)
    for i in range(len(map_x)):
        fx = min(max(map_x[i], np.float32(0.0)), np.float32(width - 1))
        fy = min(max(map_y[i], np.float32(0.0)), np.float32(height - 1))
        x0, y0 = int(fx), int(fy)
        x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
        wx, wy = fx - x0, fy - y0
        for c in range(channels):
            top = field[y0, x0, c] + wx * (field[y0, x1, c] - field[y0, x0, c])
            bottom = field[y1, x0, c] + wx * (field[y1, x1, c] - field[y1, x0, c])
            out[i, c] = top + wy * (bottom - top)
    return out


@njit(cache=True, nogil=True, inline="always")
def _bilinear_at(field: np.ndarray, fx: np.float32, fy: np.float32, out: np.ndarray) -> None:
    """``sample_bilinear`` at one point, into ``out`` (float32, one value per channel): the same
    arithmetic, so a fused kernel below gives the same values as a sample then a separate step."""
    height, width, channels = field.shape
    fx = min(max(fx, np.float32(0.0)), np.float32(width - 1))
    fy = min(max(fy, np.float32(0.0)), np.float32(height - 1))
    x0, y0 = int(fx), int(fy)
    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
    wx, wy = fx - x0, fy - y0
    for c in range(channels):
        top = field[y0, x0, c] + wx * (field[y0, x1, c] - field[y0, x0, c])
        bottom = field[y1, x0, c] + wx * (field[y1, x1, c] - field[y1, x0, c])
        out[c] = top + wy * (bottom - top)


@njit(cache=True, nogil=True)
def local_colours_and_guess(
    fields: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    colour: np.ndarray,
    alpha: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The band's local subject and background colours, read bilinearly from ``fields`` (grid x
    6: subject RGB then background RGB) at (map_x, map_y), and the first alpha guess from them
    (``project_alpha``) written into ``alpha`` at (ys, xs): one pass instead of a sample, a
    split, a projection and a scatter. Returns (subject, background) colours, float32 (N, 3)."""
    fg = np.empty((len(ys), 3), np.float32)
    bg = np.empty((len(ys), 3), np.float32)
    sampled = np.empty(6, np.float32)
    for i in range(len(ys)):
        _bilinear_at(fields, map_x[i], map_y[i], sampled)
        dot = np.float32(0.0)
        length2 = _TINY_SPAN
        for c in range(3):
            fg[i, c] = sampled[c]
            bg[i, c] = sampled[3 + c]
            span = fg[i, c] - bg[i, c]
            dot += (colour[i, c] - bg[i, c]) * span
            length2 += span * span
        alpha[ys[i], xs[i]] = min(max(dot / length2, np.float32(0.0)), np.float32(1.0))
    return fg, bg


@njit(cache=True, nogil=True)
def guided_output(
    coefs: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    colour: np.ndarray,
    alpha: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
) -> np.ndarray:
    """``apply_linear`` of the guided coefficients read bilinearly from ``coefs`` (grid x 4) at
    (map_x, map_y), written into ``alpha`` at (ys, xs) and returned (float32 (N,))."""
    out = np.empty(len(ys), np.float32)
    sampled = np.empty(4, np.float32)
    for i in range(len(ys)):
        _bilinear_at(coefs, map_x[i], map_y[i], sampled)
        value = sampled[3] + sampled[0] * colour[i, 0] + sampled[1] * colour[i, 1] + sampled[2] * colour[i, 2]
        if value < SNAP:
            value = np.float32(0.0)
        elif value > np.float32(1.0) - SNAP:
            value = np.float32(1.0)
        out[i] = value
        alpha[ys[i], xs[i]] = value
    return out


@njit(cache=True, nogil=True)
def foreground_at_points(
    fine: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    image_u8: np.ndarray,
    alpha: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    known_colours: np.ndarray,
) -> np.ndarray:
    """``fuse_foreground`` at the pixels (ys, xs), reading the box averages bilinearly from
    ``fine`` (grid x 7) at (map_x, map_y), alpha from ``alpha`` (HxW) and the colour from
    ``known_colours`` for the first ``len(known_colours)`` pixels, else from ``image_u8`` (as
    ``gather_colours``): one pass instead of a sample, a gather and the equation."""
    out = np.empty((len(ys), 3), np.float32)
    blurred = np.empty(7, np.float32)
    colour = np.empty(3, np.float32)
    done = len(known_colours)
    for i in range(len(ys)):
        y, x = ys[i], xs[i]
        _bilinear_at(fine, map_x[i], map_y[i], blurred)
        for c in range(3):
            colour[c] = known_colours[i, c] if i < done else image_u8[y, x, c] * _INV_255
        a = alpha[y, x]
        fg_weight = blurred[0] + _TINY_WEIGHT
        bg_weight = np.float32(1.0) - blurred[0] + _TINY_WEIGHT
        for c in range(3):
            fg = blurred[1 + c] / fg_weight
            bg = blurred[4 + c] / bg_weight
            value = fg + a * (colour[c] - a * fg - (np.float32(1.0) - a) * bg)
            out[i, c] = min(max(value, np.float32(0.0)), np.float32(1.0))
    return out


@njit(cache=True, nogil=True)
def separable_share(fg: np.ndarray, bg: np.ndarray, min_distance: float) -> float:
    """Share of the rows whose two colours are at least ``min_distance`` apart (Euclidean)."""
    if len(fg) == 0:
        return 1.0
    separable = 0
    limit = min_distance * min_distance
    for i in range(len(fg)):
        distance2 = 0.0
        for c in range(3):
            difference = fg[i, c] - bg[i, c]
            distance2 += difference * difference
        separable += distance2 >= limit
    return separable / len(fg)


@njit(cache=True, nogil=True)
def gather_colours(image_u8: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Float32 (N, 3) colours in [0,1] of the pixels (ys, xs)."""
    out = np.empty((len(ys), 3), np.float32)
    for i in range(len(ys)):
        for c in range(3):
            out[i, c] = image_u8[ys[i], xs[i], c] * _INV_255
    return out


@njit(cache=True, nogil=True)
def project_alpha(colour: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """The compositing equation solved for alpha: the position of each colour on the segment from
    its local background colour (0) to its local subject colour (1), clipped to [0,1]."""
    out = np.empty(len(colour), np.float32)
    for i in range(len(colour)):
        dot = np.float32(0.0)
        length2 = _TINY_SPAN
        for c in range(3):
            span = fg[i, c] - bg[i, c]
            dot += (colour[i, c] - bg[i, c]) * span
            length2 += span * span
        out[i] = min(max(dot / length2, np.float32(0.0)), np.float32(1.0))
    return out


@njit(cache=True, nogil=True)
def apply_linear(colour: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """Guided-filter output ``a . I + b`` per pixel, clipped to [0,1] and snapped at the ends."""
    out = np.empty(len(colour), np.float32)
    for i in range(len(colour)):
        value = coefs[i, 3] + coefs[i, 0] * colour[i, 0] + coefs[i, 1] * colour[i, 1] + coefs[i, 2] * colour[i, 2]
        if value < SNAP:
            value = np.float32(0.0)
        elif value > np.float32(1.0) - SNAP:
            value = np.float32(1.0)
        out[i] = value
    return out


@njit(cache=True, nogil=True)
def fuse_foreground(colour: np.ndarray, alpha: np.ndarray, blurred: np.ndarray) -> np.ndarray:
    """Blur-fusion's foreground equation (see foreground.py) per pixel, given the box averages
    (alpha, F*alpha, B*(1-alpha)) there: ``F = F_s + alpha * (I - alpha*F_s - (1-alpha)*B_s)``."""
    out = np.empty((len(colour), 3), np.float32)
    for i in range(len(colour)):
        a = alpha[i]
        fg_weight = blurred[i, 0] + _TINY_WEIGHT
        bg_weight = np.float32(1.0) - blurred[i, 0] + _TINY_WEIGHT
        for c in range(3):
            fg = blurred[i, 1 + c] / fg_weight
            bg = blurred[i, 4 + c] / bg_weight
            value = fg + a * (colour[i, c] - a * fg - (np.float32(1.0) - a) * bg)
            out[i, c] = min(max(value, np.float32(0.0)), np.float32(1.0))
    return out


@njit(cache=True, nogil=True)
def fusion_inputs(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blur-fusion's first-pass inputs on a grid (F = B = I): (alpha, I*alpha, I - I*alpha) per
    cell, HxWx7 float32; one loop instead of numpy's broadcasts over 3-wide rows and a concatenate."""
    height, width = alpha.shape
    out = np.empty((height, width, 7), np.float32)
    for y in range(height):
        for x in range(width):
            a = alpha[y, x]
            out[y, x, 0] = a
            for c in range(3):
                weighted = image[y, x, c] * a
                out[y, x, 1 + c] = weighted
                out[y, x, 4 + c] = image[y, x, c] - weighted
    return out


@njit(cache=True, nogil=True)
def fusion_to_fine_pass(image: np.ndarray, alpha: np.ndarray, blurred: np.ndarray) -> np.ndarray:
    """Blur-fusion's first pass finished on a grid: the foreground equation per cell (given the
    coarse box averages), returned as the second pass's inputs (alpha, F*alpha, B_s*(1-alpha))."""
    height, width = alpha.shape
    out = np.empty((height, width, 7), np.float32)
    for y in range(height):
        for x in range(width):
            a = alpha[y, x]
            fg_weight = blurred[y, x, 0] + _TINY_WEIGHT
            bg_weight = np.float32(1.0) - blurred[y, x, 0] + _TINY_WEIGHT
            out[y, x, 0] = a
            for c in range(3):
                fg = blurred[y, x, 1 + c] / fg_weight
                bg = blurred[y, x, 4 + c] / bg_weight
                value = fg + a * (image[y, x, c] - a * fg - (np.float32(1.0) - a) * bg)
                out[y, x, 1 + c] = min(max(value, np.float32(0.0)), np.float32(1.0)) * a
                out[y, x, 4 + c] = bg * (np.float32(1.0) - a)
    return out


@njit(cache=True, nogil=True)
def paint_edge(
    rgba: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    band_alpha: np.ndarray,
    colours: np.ndarray,
) -> None:
    """Write the solved edge into an 8-bit RGBA image in place: the first ``len(band_alpha)``
    points get their alpha, then every point its colour, except points no resampling can reach
    (transparent with no non-transparent 8-neighbour), which stay black."""
    height, width = rgba.shape[:2]
    for i in range(len(band_alpha)):
        rgba[ys[i], xs[i], 3] = np.uint8(band_alpha[i] * np.float32(255.0) + np.float32(0.5))
    for i in range(len(ys)):
        y, x = ys[i], xs[i]
        # A visible point reaches itself; only transparent ones need their neighbours looked at.
        reached = rgba[y, x, 3] > 0
        if not reached:
            for ny in range(max(0, y - 1), min(height, y + 2)):
                for nx in range(max(0, x - 1), min(width, x + 2)):
                    if rgba[ny, nx, 3] > 0:
                        reached = True
        for c in range(3):
            rgba[y, x, c] = np.uint8(colours[i, c] * np.float32(255.0) + np.float32(0.5)) if reached else 0


@njit(cache=True, nogil=True)
def paint_placed_edge(
    canvas: np.ndarray,
    dy: int,
    dx: int,
    rect: tuple[int, int, int, int],
    alpha: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    band_alpha: np.ndarray,
    colours: np.ndarray,
) -> None:
    """``paint_edge`` for a region placed on the canvas by an integer shift (region pixel (y, x)
    -> canvas (y + dy, x + dx), ``rect`` = (y0, x0, y1, x1) the part of the canvas it covers),
    written straight into the canvas: only points landing in ``rect`` are written, and whether a
    transparent point is reached is judged on the region's own 8-bit alpha (``alpha``, HxW
    float32, as ``paint_edge`` rounds it), neighbours off the canvas included, so the result equals
    ``paint_edge`` on the region's RGBA followed by the placement."""
    height, width = alpha.shape
    y0, x0, y1, x1 = rect
    for i in range(len(ys)):
        y, x = ys[i], xs[i]
        cy, cx = y + dy, x + dx
        if not (y0 <= cy < y1 and x0 <= cx < x1):
            continue
        a = np.uint8(0)
        if i < len(band_alpha):
            a = np.uint8(band_alpha[i] * np.float32(255.0) + np.float32(0.5))
            canvas[cy, cx, 3] = a
        reached = bool(a > 0)
        if not reached:
            for ny in range(max(0, y - 1), min(height, y + 2)):
                for nx in range(max(0, x - 1), min(width, x + 2)):
                    if np.uint8(alpha[ny, nx] * np.float32(255.0) + np.float32(0.5)) > 0:
                        reached = True
        for c in range(3):
            canvas[cy, cx, c] = np.uint8(colours[i, c] * np.float32(255.0) + np.float32(0.5)) if reached else 0


@njit(cache=True, nogil=True, inline="always")
def _over(subject: np.uint8, alpha: int, background: np.uint8) -> np.uint8:
    """One 8-bit channel of straight-alpha ``subject`` over ``background``, rounded exactly:
    ``round((subject*a + background*(255-a)) / 255)`` in integer arithmetic."""
    mixed = np.int32(subject) * alpha + np.int32(background) * (255 - alpha) + 128  # <= 255 * 255 + 128
    return np.uint8((mixed + (mixed >> 8)) >> 8)  # round(mixed / 255), exact in this range


@njit(cache=True, nogil=True, inline="always")
def _alpha_at(region: np.ndarray, y: int, x: int) -> int:
    height, width = region.shape[:2]
    return int(region[y, x, 3]) if 0 <= y < height and 0 <= x < width else 0


@njit(cache=True, nogil=True)
def finish_canvas(
    region: np.ndarray, shift_x: int, shift_y: int, size: int, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    """The square canvas in one pass: ``region`` (straight RGBA, uint8) placed at (shift_x,
    shift_y), transparent elsewhere; the canvas over two solid colours (3 uint8 each); and the
    quality figures' counts: covered pixels (alpha >= 128), soft pixels (0 < alpha < 255), and
    pixels of the alpha >= 128 outline (with a 4-neighbour below 128, the canvas border excluded).

    Compositing is exact: ``round((c*a + colour*(255-a)) / 255)`` in integer arithmetic."""
    canvas = np.empty((size, size, 4), np.uint8)
    over_first = np.empty((size, size, 3), np.uint8)
    over_second = np.empty((size, size, 3), np.uint8)
    covered = 0
    soft = 0
    outline = 0
    for y in range(size):
        ry = y - shift_y
        for x in range(size):
            rx = x - shift_x
            a = _alpha_at(region, ry, rx)
            if a == 0:
                canvas[y, x, 0] = canvas[y, x, 1] = canvas[y, x, 2] = canvas[y, x, 3] = 0
                if 0 <= ry < region.shape[0] and 0 <= rx < region.shape[1]:
                    for c in range(3):  # a transparent pixel may carry an edge colour (resampling)
                        canvas[y, x, c] = region[ry, rx, c]
                for c in range(3):
                    over_first[y, x, c] = first[c]
                    over_second[y, x, c] = second[c]
                continue
            for c in range(4):
                canvas[y, x, c] = region[ry, rx, c]
            if a == 255:
                for c in range(3):
                    over_first[y, x, c] = region[ry, rx, c]
                    over_second[y, x, c] = region[ry, rx, c]
            else:
                soft += 1
                for c in range(3):
                    over_first[y, x, c] = _over(region[ry, rx, c], a, first[c])
                    over_second[y, x, c] = _over(region[ry, rx, c], a, second[c])
            covered += a >= 128
            if a >= 128 and 0 < y < size - 1 and 0 < x < size - 1:
                below = min(
                    _alpha_at(region, ry - 1, rx),
                    _alpha_at(region, ry + 1, rx),
                    _alpha_at(region, ry, rx - 1),
                    _alpha_at(region, ry, rx + 1),
                )
                outline += below < 128
    return canvas, over_first, over_second, covered, soft, outline


@njit(cache=True, nogil=True)
def finish_band(
    canvas: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    rect: tuple[int, int, int, int],
    over_first: np.ndarray,
    over_second: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
) -> tuple[int, int, int, int]:
    """``finish_canvas``'s per-pixel work where it is not a plain copy or fill: the canvas holds a
    region placed without resampling (occupying ``rect`` = (y0, x0, y1, x1)), whose only soft
    pixels are its band's (canvas coordinates ys, xs). The previews already hold the fill colour
    under transparent pixels and the subject under the known subject; this writes the band's
    opaque pixels and blends its soft ones into them, and returns (soft pixels, soft pixels with
    alpha >= 128, outline pixels, opaque band pixels) with the same definitions as
    ``finish_canvas``.

    Precondition: the band separates known subject from known background (no known-subject pixel
    4-adjacent to a known-background one), as the pipeline's trimaps guarantee (erosion and
    dilation of one mask). Outline pixels can then only be band pixels, known-subject pixels next
    to a band pixel below 128, or opaque pixels on the region's border with the canvas's
    transparent margin beyond it."""
    size = canvas.shape[0]
    y0, x0, y1, x1 = rect
    counted = np.zeros((size, size), np.bool_)
    soft = 0
    soft_covered = 0
    outline = 0
    opaque = 0
    for i in range(len(ys)):
        y, x = ys[i], xs[i]
        if not (y0 <= y < y1 and x0 <= x < x1):
            continue
        a = int(canvas[y, x, 3])
        if a == 255:
            opaque += 1
            for c in range(3):
                over_first[y, x, c] = over_second[y, x, c] = canvas[y, x, c]
        elif a > 0:
            soft += 1
            soft_covered += a >= 128
            for c in range(3):
                over_first[y, x, c] = _over(canvas[y, x, c], a, first[c])
                over_second[y, x, c] = _over(canvas[y, x, c], a, second[c])
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = y + dy, x + dx
            if not (0 <= ny < size and 0 <= nx < size):
                continue
            b = np.int32(canvas[ny, nx, 3])
            # (pixel, neighbour) pairs straddling 128, either way round.
            if a >= 128 and b < 128:
                py, px = y, x
            elif a < 128 and b >= 128:
                py, px = ny, nx
            else:
                continue
            if 0 < py < size - 1 and 0 < px < size - 1 and not counted[py, px]:
                counted[py, px] = True
                outline += 1
    # Opaque pixels on the region's border, against the transparent margin.
    for y in range(y0, y1):
        step = 1 if y in (y0, y1 - 1) else max(1, x1 - 1 - x0)  # whole first/last row, else the ends
        for x in range(x0, x1, step):
            if 0 < y < size - 1 and 0 < x < size - 1 and canvas[y, x, 3] >= 128 and not counted[y, x]:
                low = min(canvas[y - 1, x, 3], canvas[y + 1, x, 3], canvas[y, x - 1, 3], canvas[y, x + 1, 3])
                if low < 128:
                    counted[y, x] = True
                    outline += 1
    return soft, soft_covered, outline, opaque


@njit(cache=True, nogil=True)
def nearest_known_colours(
    image: np.ndarray, known: np.ndarray, rows: np.ndarray, cols: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    """Per requested grid cell (rows, cols), the average colour of the known cells (``known``
    0/1) in the smallest window (radius from ``radii``, ascending) holding at least one; cells with
    none within the largest radius take the average of all known cells (mid-grey if none).

    One summed-area table, then four look-ups per cell and radius."""
    height, width = known.shape
    table = np.zeros((height + 1, width + 1, 4), np.float64)
    for y in range(height):
        for x in range(width):
            k = np.float64(known[y, x])
            for c in range(4):
                value = k if c == 3 else k * image[y, x, c]
                table[y + 1, x + 1, c] = value + table[y, x + 1, c] + table[y + 1, x, c] - table[y, x, c]
    out = np.empty((len(rows), 3), np.float32)
    total = table[height, width]
    for i in range(len(rows)):
        found = False
        for radius in radii:
            top, left = max(0, rows[i] - radius), max(0, cols[i] - radius)
            bottom, right = min(height, rows[i] + radius + 1), min(width, cols[i] + radius + 1)
            weight = table[bottom, right, 3] - table[top, right, 3] - table[bottom, left, 3] + table[top, left, 3]
            if weight >= 0.5:
                for c in range(3):
                    window = (
                        table[bottom, right, c] - table[top, right, c] - table[bottom, left, c] + table[top, left, c]
                    )
                    out[i, c] = window / weight
                found = True
                break
        if not found:
            for c in range(3):
                out[i, c] = total[c] / total[3] if total[3] > 0 else 0.5
    return out


@njit(cache=True, nogil=True)
def _window(table: np.ndarray, y: int, x: int, radius: int, out: np.ndarray) -> None:
    """Mean of each channel over the (2r+1)^2 window at (y, x), clipped to the image, from a
    summed-area table (one extra leading row and column)."""
    height, width = table.shape[0] - 1, table.shape[1] - 1
    top, left = max(0, y - radius), max(0, x - radius)
    bottom, right = min(height, y + radius + 1), min(width, x + radius + 1)
    area = (bottom - top) * (right - left)
    for c in range(table.shape[2]):
        out[c] = (table[bottom, right, c] - table[top, right, c] - table[bottom, left, c] + table[top, left, c]) / area


@njit(cache=True, nogil=True)
def guided_coefficients(
    guide: np.ndarray, source: np.ndarray, radius: int, rows: np.ndarray, cols: np.ndarray, eps: float
) -> np.ndarray:
    """Colour guided filter (He et al. 2013) coefficients (a_r, a_g, a_b, b), window-averaged, at
    the requested cells (rows, cols) of ``guide`` (HxWx3) / ``source`` (HxW); 0 elsewhere. The
    filtered value at a pixel is ``a . I + b``.

    Window statistics come from one summed-area table of the 13 products (I, p, I*p, I_i*I_j);
    the 3x3 systems are solved only on the cells within ``radius`` of a requested one."""
    height, width = source.shape
    table = np.zeros((height + 1, width + 1, 13), np.float64)
    values = np.empty(13, np.float64)
    for y in range(height):
        for x in range(width):
            r, g, b, p = (
                np.float64(guide[y, x, 0]),
                np.float64(guide[y, x, 1]),
                np.float64(guide[y, x, 2]),
                np.float64(source[y, x]),
            )
            values[0], values[1], values[2], values[3] = r, g, b, p
            values[4], values[5], values[6] = r * p, g * p, b * p
            values[7], values[8], values[9] = r * r, r * g, r * b
            values[10], values[11], values[12] = g * g, g * b, b * b
            for c in range(13):
                table[y + 1, x + 1, c] = values[c] + table[y, x + 1, c] + table[y + 1, x, c] - table[y, x, c]

    # Solve on the support: every cell some requested cell's window averages over.
    solved = np.zeros((height, width), np.bool_)
    coefs = np.zeros((height + 1, width + 1, 4), np.float64)  # summed-area table of the coefficients
    plain = np.zeros((height, width, 4), np.float64)
    means = np.empty(13, np.float64)
    for i in range(len(rows)):
        for y in range(max(0, rows[i] - radius), min(height, rows[i] + radius + 1)):
            for x in range(max(0, cols[i] - radius), min(width, cols[i] + radius + 1)):
                if solved[y, x]:
                    continue
                solved[y, x] = True
                _window(table, y, x, radius, means)
                mr, mg, mb, mp = means[0], means[1], means[2], means[3]
                cov_r, cov_g, cov_b = means[4] - mr * mp, means[5] - mg * mp, means[6] - mb * mp
                s00, s01, s02 = means[7] - mr * mr + eps, means[8] - mr * mg, means[9] - mr * mb
                s11, s12, s22 = means[10] - mg * mg + eps, means[11] - mg * mb, means[12] - mb * mb + eps
                # Symmetric 3x3 solve by the adjugate (covariance + eps*I: positive definite).
                c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
                c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
                inverse_det = 1.0 / (s00 * c00 + s01 * c01 + s02 * c02)
                a_r = (c00 * cov_r + c01 * cov_g + c02 * cov_b) * inverse_det
                a_g = (c01 * cov_r + c11 * cov_g + c12 * cov_b) * inverse_det
                a_b = (c02 * cov_r + c12 * cov_g + c22 * cov_b) * inverse_det
                plain[y, x, 0], plain[y, x, 1], plain[y, x, 2] = a_r, a_g, a_b
                plain[y, x, 3] = mp - a_r * mr - a_g * mg - a_b * mb
    for y in range(height):
        for x in range(width):
            for c in range(4):
                coefs[y + 1, x + 1, c] = plain[y, x, c] + coefs[y, x + 1, c] + coefs[y + 1, x, c] - coefs[y, x, c]

    out = np.zeros((height, width, 4), np.float32)
    averaged = np.empty(4, np.float64)
    for i in range(len(rows)):
        _window(coefs, rows[i], cols[i], radius, averaged)
        for c in range(4):
            out[rows[i], cols[i], c] = averaged[c]
    return out


@njit(cache=True, nogil=True)
def residual_background(
    alpha: np.ndarray, foreground: np.ndarray, fg: np.ndarray, bg: np.ndarray, min_span: float
) -> float:
    """Alpha-weighted mean position of each soft pixel's output colour on the segment from its
    local subject colour (0) to its local background colour (1); pixels whose two colours are
    closer than ``min_span`` are skipped (see quality.py)."""
    total = 0.0
    weights = 0.0
    min_length2 = min_span * min_span
    for i in range(len(alpha)):
        a = alpha[i]
        if a <= 0.0 or a >= 1.0:
            continue
        dot = 0.0
        length2 = 0.0
        for c in range(3):
            span = bg[i, c] - fg[i, c]
            dot += (foreground[i, c] - fg[i, c]) * span
            length2 += span * span
        if length2 < min_length2:
            continue
        total += a * min(max(dot / length2, 0.0), 1.0)
        weights += a
    return total / weights if weights > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _touches(mask: np.ndarray, y: int, x: int, height: int, width: int) -> bool:
    for ny in range(max(0, y - 1), min(height, y + 2)):
        for nx in range(max(0, x - 1), min(width, x + 2)):
            if mask[ny, nx]:
                return True
    return False


@njit(cache=True, nogil=True)
def drop_band_islands(
    alpha: np.ndarray, known_fg: np.ndarray, ys: np.ndarray, xs: np.ndarray, band_alpha: np.ndarray
) -> int:
    """Flood fill from the known subject through the band's pixels of non-zero alpha (8-connected);
    band pixels of non-zero alpha it does not reach get alpha 0, in ``alpha`` (HxW) and in
    ``band_alpha`` (the band's own copy, same order as ys, xs). Returns how many did."""
    height, width = alpha.shape
    reached = np.zeros((height, width), np.bool_)
    # Rows and columns kept apart (no division to unpack a flat index on every pop).
    stack_ys = np.empty(len(ys), np.int32)
    stack_xs = np.empty(len(ys), np.int32)
    top = 0
    for i in range(len(ys)):
        y, x = ys[i], xs[i]
        if alpha[y, x] <= 0.0:
            continue
        if _touches(known_fg, y, x, height, width):
            reached[y, x] = True
            stack_ys[top], stack_xs[top] = y, x
            top += 1
    while top > 0:
        top -= 1
        y, x = stack_ys[top], stack_xs[top]
        for ny in range(max(0, y - 1), min(height, y + 2)):
            for nx in range(max(0, x - 1), min(width, x + 2)):
                if not reached[ny, nx] and not known_fg[ny, nx] and alpha[ny, nx] > 0.0:
                    reached[ny, nx] = True
                    stack_ys[top], stack_xs[top] = ny, nx
                    top += 1
    dropped = 0
    for i in range(len(ys)):
        y, x = ys[i], xs[i]
        if alpha[y, x] > 0.0 and not reached[y, x]:
            alpha[y, x] = 0.0
            band_alpha[i] = 0.0
            dropped += 1
    return dropped


def warm_up() -> None:
    """Compile (or load from the cache) every kernel with the argument types the core passes."""
    mask = np.zeros((4, 4), np.bool_)
    ys, xs, _ = classify_band(mask, mask)
    maps = np.zeros(4, np.int64)
    band_from_cells(mask, mask, maps, maps)
    sample_bilinear(np.zeros((2, 2, 4), np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32))
    separable_share(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32), 0.16)
    image = np.zeros((4, 4, 3), np.uint8)
    gather_colours(image, ys, xs)
    gather_colours(image[1:3, 1:3], ys, xs)  # a region of an image: a non-contiguous view
    points = np.zeros((1, 3), np.float32)
    guess = project_alpha(points, points, points)
    apply_linear(points, np.zeros((1, 4), np.float32))
    fused = fuse_foreground(points, guess, np.zeros((1, 7), np.float32))
    fusion_to_fine_pass(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.float32), np.zeros((2, 2, 7), np.float32))
    fusion_inputs(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.float32))
    paint_edge(np.zeros((4, 4, 4), np.uint8), ys, xs, guess[:0], fused[:0])
    residual_background(guess, fused, points, points, 0.16)
    colour = np.zeros(3, np.uint8)
    canvas, first, second, _, _, _ = finish_canvas(np.zeros((2, 2, 4), np.uint8), 0, 0, 4, colour, colour)
    finish_band(canvas, ys, xs, (0, 0, 2, 2), first, second, colour, colour)
    paint_placed_edge(canvas, 0, 0, (0, 0, 2, 2), np.zeros((4, 4), np.float32), ys, xs, guess[:0], fused[:0])
    drop_band_islands(np.zeros((4, 4), np.float32), mask, ys, xs, np.zeros(len(ys), np.float32))
    plane = np.zeros((4, 4), np.float32)
    fields = np.zeros((2, 2, 7), np.float32)
    at = np.zeros(1, np.float32)
    local_colours_and_guess(np.zeros((2, 2, 6), np.float32), at, at, points, plane, ys, xs)
    guided_output(np.zeros((2, 2, 4), np.float32), at, at, points, plane, ys, xs)
    foreground_at_points(fields, at, at, image, plane, ys, xs, points[:0])
    foreground_at_points(fields, at, at, image[1:3, 1:3], plane, ys, xs, points)
    cells = np.zeros(1, np.int64)
    guided_coefficients(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.float32), 1, cells, cells, 1e-4)
    nearest_known_colours(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.float32), cells, cells, cells)
