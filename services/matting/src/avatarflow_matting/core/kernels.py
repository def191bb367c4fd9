"""Per-pixel steps of the matte, compiled with numba.

Each runs once over the edge band's pixels (tens of thousands per megapixel). Written with numpy,
every step allocates several (N, 3) temporaries and passes over them one operation at a time; as
single compiled loops they read each pixel once, which is what makes the band, not the image, the
cost. ``cache=True`` writes the compiled code to ``NUMBA_CACHE_DIR`` (see jit.py): a new worker
loads it instead of compiling.
"""

from __future__ import annotations

import numpy as np

from .jit import configure_numba_cache

configure_numba_cache()  # before numba's first import: it reads the cache location then

from numba import njit  # noqa: E402

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
        reached = False
        for ny in range(max(0, y - 1), min(height, y + 2)):
            for nx in range(max(0, x - 1), min(width, x + 2)):
                if rgba[ny, nx, 3] > 0:
                    reached = True
        for c in range(3):
            rgba[y, x, c] = np.uint8(colours[i, c] * np.float32(255.0) + np.float32(0.5)) if reached else 0


@njit(cache=True, nogil=True)
def composite_over(rgba: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Straight-alpha ``rgba`` (uint8) over a solid ``colour`` (3 uint8), rounded exactly:
    ``round((c*a + colour*(255-a)) / 255)`` per channel, in integer arithmetic."""
    height, width = rgba.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    for y in range(height):
        for x in range(width):
            a = np.int32(rgba[y, x, 3])
            for c in range(3):
                if a == 255:
                    out[y, x, c] = rgba[y, x, c]
                elif a == 0:
                    out[y, x, c] = colour[c]
                else:
                    mixed = np.int32(rgba[y, x, c]) * a + np.int32(colour[c]) * (255 - a) + 128
                    out[y, x, c] = (mixed + (mixed >> 8)) >> 8  # round(mixed / 255), exact in range
    return out


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


def warm_up() -> None:
    """Compile (or load from the cache) every kernel with the argument types the core passes."""
    mask = np.zeros((4, 4), np.bool_)
    ys, xs, _ = classify_band(mask, mask)
    image = np.zeros((4, 4, 3), np.uint8)
    gather_colours(image, ys, xs)
    gather_colours(image[1:3, 1:3], ys, xs)  # a region of an image: a non-contiguous view
    points = np.zeros((1, 3), np.float32)
    guess = project_alpha(points, points, points)
    apply_linear(points, np.zeros((1, 4), np.float32))
    fused = fuse_foreground(points, guess, np.zeros((1, 7), np.float32))
    fusion_to_fine_pass(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.float32), np.zeros((2, 2, 7), np.float32))
    paint_edge(np.zeros((4, 4, 4), np.uint8), ys, xs, guess[:0], fused[:0])
    residual_background(guess, fused, points, points, 0.16)
    composite_over(np.zeros((2, 2, 4), np.uint8), np.zeros(3, np.uint8))
    cells = np.zeros(1, np.int64)
    nearest_known_colours(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.float32), cells, cells, cells)
