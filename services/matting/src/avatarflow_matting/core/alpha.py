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


def local_colours(image: np.ndarray, weights: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Average colour of the weighted pixels nearest to each ``where`` pixel (others stay 0)."""
    out = np.zeros(image.shape, np.float32)
    missing = where.copy()
    weighted = image * weights[..., None]
    for radius in _LOCAL_COLOUR_RADII:
        if not missing.any():
            break
        total = _box(weights, radius)
        ok = missing & (total > 1e-3)
        out[ok] = _box(weighted, radius)[ok] / total[ok][:, None]
        missing &= ~ok
    if missing.any():  # no known pixel within the largest radius: use the global average
        count = float(weights.sum())
        fallback = (weighted.reshape(-1, 3).sum(0) / count) if count > 0 else np.full(3, 0.5)
        out[missing] = fallback
    return out


def _guided_filter(guide: np.ndarray, source: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Colour guided filter of ``source``; only the values at ``where`` pixels are computed."""
    radius = _GUIDED_RADIUS
    # Coefficients are needed on every window touching a requested pixel.
    support = cv2.dilate(where.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)) > 0
    mean_i = _box(guide, radius)
    mean_p = _box(source, radius)
    mean_ip = _box(guide * source[..., None], radius)
    products = {}
    for i in range(3):
        for j in range(i, 3):
            products[i, j] = _box(guide[..., i] * guide[..., j], radius)

    idx = np.nonzero(support)
    mi = mean_i[idx]
    cov = mean_ip[idx] - mi * mean_p[idx][:, None]
    sigma = np.empty((len(idx[0]), 3, 3), np.float64)
    for (i, j), product in products.items():
        value = product[idx] - mi[:, i] * mi[:, j]
        sigma[:, i, j] = value
        sigma[:, j, i] = value
    sigma += _GUIDED_EPS * np.eye(3)
    coef_a = np.linalg.solve(sigma, cov[..., None].astype(np.float64))[..., 0].astype(np.float32)
    coef_b = mean_p[idx] - (coef_a * mi).sum(1)

    full_a = np.zeros(guide.shape, np.float32)
    full_b = np.zeros(source.shape, np.float32)
    full_a[idx] = coef_a
    full_b[idx] = coef_b
    # Outside the support the coefficients are never averaged into a requested pixel.
    return (_box(full_a, radius) * guide).sum(2) + _box(full_b, radius)


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
    fg_full = np.zeros(image.shape, np.float32)
    bg_full = np.zeros(image.shape, np.float32)
    window = _band_box(unknown, _LOCAL_COLOUR_RADII[-1])
    if window is None:
        return Refinement(alpha, unknown, fg_full, bg_full)
    img = np.ascontiguousarray(image[window])
    fg = known_fg[window]
    unk = unknown[window]
    fg_colour = local_colours(img, fg.astype(np.float32), unk)
    bg_colour = local_colours(img, known_bg[window].astype(np.float32), unk)
    span = fg_colour - bg_colour
    guess = ((img - bg_colour) * span).sum(2) / ((span * span).sum(2) + 1e-4)
    guess = np.where(unk, np.clip(guess, 0.0, 1.0), fg.astype(np.float32)).astype(np.float32)
    refined = np.clip(_guided_filter(img, guess, unk), 0.0, 1.0)
    refined[refined < _SNAP] = 0.0
    refined[refined > 1.0 - _SNAP] = 1.0
    alpha[window] = np.where(unk, refined, alpha[window])
    fg_full[window] = fg_colour
    bg_full[window] = bg_colour
    return Refinement(alpha, unknown, fg_full, bg_full)


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
