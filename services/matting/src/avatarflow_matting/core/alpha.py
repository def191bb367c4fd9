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
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TRIMAP_BACKGROUND_MAX = 50  # trimap values <= this are known background
TRIMAP_FOREGROUND_MIN = 200  # trimap values >= this are known foreground

# Radii (px) of the normalised averages used to find local fg/bg colours, finest first.
_LOCAL_COLOUR_RADII = (4, 8, 16, 32, 64, 128)
# Guided filter window radius (px) and regulariser: eps is the colour variance (in [0,1]^2 RGB)
# below which a window is treated as flat; 1e-4 (a standard deviation of ~2.5/255) keeps hair
# strands that are only a few grey levels away from the background.
_GUIDED_RADIUS = 4
_GUIDED_EPS = 1e-4
# Alpha this close to 0 or 1 is treated as exactly 0 or 1 (below 8-bit visibility after rounding).
_SNAP = 1.0 / 255.0


def _box(values: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.boxFilter(values, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT)


def _window_sums(integral: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """Sums over the (2r+1)^2 windows centred on (ys, xs), clipped to the image, from an integral
    image (``cv2.integral`` layout: one extra leading row and column)."""
    rows, cols, channels = integral.shape
    flat = integral.reshape(-1, channels)
    top, bottom = np.maximum(ys - radius, 0) * cols, np.minimum(ys + radius + 1, rows - 1) * cols
    left, right = np.maximum(xs - radius, 0), np.minimum(xs + radius + 1, cols - 1)
    return flat[bottom + right] - flat[top + right] - flat[bottom + left] + flat[top + left]


def local_colours(image: np.ndarray, weights: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Average colour of the weighted pixels nearest to each ``where`` pixel (others stay 0).

    Only the ``where`` pixels (the thin unknown band) are evaluated: one integral image of the
    weighted colours and the weights, then four look-ups per pixel and radius, so the cost is one
    pass over the image plus the band, whatever the radii.
    """
    out = np.zeros(image.shape, np.float32)
    stacked = np.empty((*weights.shape, 4), np.float32)
    np.multiply(image, weights[..., None], out=stacked[..., :3])
    stacked[..., 3] = weights
    integral = cv2.integral(stacked, sdepth=cv2.CV_64F)  # float64: exact enough for any size
    ys, xs = np.nonzero(where)
    for radius in _LOCAL_COLOUR_RADII:
        if len(ys) == 0:
            break
        sums = _window_sums(integral, ys, xs, radius)
        # Enough known weight in the full window (a mean weight above 1e-3) to trust the average.
        ok = sums[:, 3] > 1e-3 * (2 * radius + 1) ** 2
        out[ys[ok], xs[ok]] = sums[ok, :3] / sums[ok, 3:]
        ys, xs = ys[~ok], xs[~ok]
    if len(ys):  # no known pixel within the largest radius: use the global average
        total = integral[-1, -1]
        fallback = total[:3] / total[3] if total[3] > 0 else np.full(3, 0.5)
        out[ys, xs] = fallback
    return out


def _solve_3x3(sigma: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the batch of symmetric 3x3 systems ``sigma x = rhs`` by the adjugate (vectorised;
    the matrices are covariances plus eps*I, so positive definite and well conditioned)."""
    s00, s01, s02 = sigma[:, 0], sigma[:, 1], sigma[:, 2]
    s11, s12, s22 = sigma[:, 3], sigma[:, 4], sigma[:, 5]
    c00 = s11 * s22 - s12 * s12
    c01 = s02 * s12 - s01 * s22
    c02 = s01 * s12 - s02 * s11
    c11 = s00 * s22 - s02 * s02
    c12 = s01 * s02 - s00 * s12
    c22 = s00 * s11 - s01 * s01
    det = s00 * c00 + s01 * c01 + s02 * c02
    r0, r1, r2 = rhs[:, 0], rhs[:, 1], rhs[:, 2]
    solution = np.empty_like(rhs)
    solution[:, 0] = c00 * r0 + c01 * r1 + c02 * r2
    solution[:, 1] = c01 * r0 + c11 * r1 + c12 * r2
    solution[:, 2] = c02 * r0 + c12 * r1 + c22 * r2
    return solution / det[:, None]


# Upper-triangle channel pairs of the guide's 3x3 colour covariance.
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def _guided_filter(guide: np.ndarray, source: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Colour guided filter of ``source``, evaluated at the ``where`` pixels only (1-D, in
    ``np.nonzero`` order)."""
    radius = _GUIDED_RADIUS
    # Coefficients are needed on every window touching a requested pixel.
    support = cv2.dilate(where.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)) > 0
    # All 13 window means in one multi-channel box filter: I (3), p, I*p (3), I_i*I_j (6).
    channels = [guide, source[..., None], guide * source[..., None]]
    channels += [guide[..., i : i + 1] * guide[..., j : j + 1] for i, j in _PAIRS]
    means = _box(np.concatenate(channels, axis=2, dtype=np.float32), radius)

    idx = np.nonzero(support)
    at = means[idx].astype(np.float64)  # only the support: a small share of the image
    mean_i, mean_p, mean_ip, mean_ii = at[:, 0:3], at[:, 3], at[:, 4:7], at[:, 7:13]
    cov = mean_ip - mean_i * mean_p[:, None]
    sigma = np.stack([mean_ii[:, k] - mean_i[:, i] * mean_i[:, j] for k, (i, j) in enumerate(_PAIRS)], axis=1)
    sigma[:, [0, 3, 5]] += _GUIDED_EPS
    coef_a = _solve_3x3(sigma, cov)
    coef_b = mean_p - (coef_a * mean_i).sum(1)

    # Outside the support the coefficients are never averaged into a requested pixel.
    coefs = np.zeros((*source.shape, 4), np.float32)
    coefs[idx] = np.concatenate([coef_a, coef_b[:, None]], axis=1)
    mean_coefs = _box(coefs, radius)[where]
    return (mean_coefs[:, :3] * guide[where]).sum(1) + mean_coefs[:, 3]


def _band_box(unknown: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    ys, xs = np.nonzero(unknown)
    if len(ys) == 0:
        return None
    h, w = unknown.shape
    return (
        slice(max(0, ys.min() - margin), min(h, ys.max() + margin + 1)),
        slice(max(0, xs.min() - margin), min(w, xs.max() + margin + 1)),
    )


@dataclass(frozen=True)
class Refinement:
    """Alpha plus the local colours it was solved with (colours valid on ``unknown`` only)."""

    alpha: np.ndarray  # float32 HxW in [0,1]
    unknown: np.ndarray  # bool HxW: the band that was solved
    fg_colour: np.ndarray  # float32 HxWx3
    bg_colour: np.ndarray  # float32 HxWx3


def refine(image: np.ndarray, known_fg: np.ndarray, known_bg: np.ndarray) -> Refinement:
    """Solve alpha on the unknown band of ``image`` (float32 RGB in [0,1]) given known fg/bg masks."""
    alpha = known_fg.astype(np.float32)
    unknown = ~(known_fg | known_bg)
    if not unknown.any():
        empty = np.zeros(image.shape, np.float32)
        return Refinement(alpha, unknown, empty, empty.copy())
    image = np.ascontiguousarray(image, dtype=np.float32)
    fg_colour = local_colours(image, known_fg.astype(np.float32), unknown)
    bg_colour = local_colours(image, known_bg.astype(np.float32), unknown)

    # The guided filter reads two windows (2r) around each band pixel: work on that crop only.
    window = _band_box(unknown, 2 * _GUIDED_RADIUS)
    assert window is not None
    img, unk, fg = image[window], unknown[window], known_fg[window]
    fgc, bgc = fg_colour[window], bg_colour[window]
    band_bg = bgc[unk]
    span = fgc[unk] - band_bg
    guess = fg.astype(np.float32)
    projection = ((img[unk] - band_bg) * span).sum(1) / ((span * span).sum(1) + 1e-4)
    guess[unk] = np.clip(projection, 0.0, 1.0)
    refined = np.clip(_guided_filter(img, guess, unk), 0.0, 1.0)
    refined[refined < _SNAP] = 0.0
    refined[refined > 1.0 - _SNAP] = 1.0
    alpha[window][unk] = refined
    return Refinement(alpha, unknown, fg_colour, bg_colour)


def refine_alpha(image: np.ndarray, known_fg: np.ndarray, known_bg: np.ndarray) -> np.ndarray:
    """Alpha in [0,1] (float32) for ``image`` (float32 RGB in [0,1]) given known fg/bg masks."""
    return refine(image, known_fg, known_bg).alpha


def to_float_image(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.dtype == np.uint8:
        return image_rgb.astype(np.float32) / 255.0
    return np.clip(image_rgb.astype(np.float32), 0.0, 1.0)


def estimate_alpha_with_trimap(image_rgb: np.ndarray, trimap_u8: np.ndarray) -> np.ndarray:
    """Float alpha in [0,1] from an RGB image and a {0,128,255}-style trimap (same refinement as
    the cut-out uses on its own trimap)."""
    trimap = trimap_u8 if trimap_u8.ndim == 2 else trimap_u8[..., 0]
    return refine_alpha(
        to_float_image(image_rgb),
        trimap >= TRIMAP_FOREGROUND_MIN,
        trimap <= TRIMAP_BACKGROUND_MAX,
    )
