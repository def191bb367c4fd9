"""Matting evaluation figures (pure functions; the avatarctl matting-eval command does the I/O).

* SAD: sum of absolute alpha differences (alpha in [0,1]) / 1000, over the evaluated region.
* MSE: mean squared alpha difference over the region.
* Gradient error (Rhemann et al. 2009): alpha gradients from first-order Gaussian derivative
  filters (sigma 1.4), squared difference of their magnitudes summed over the region / 1000.
* Halo error: mean absolute RGB difference (0-255) between a cut-out composited over pure green
  and the reference composite over the same green, inside the band where the reference alpha is
  in (0.02, 0.98), dilated by 5 px. The reference composite uses the reference alpha with
  foreground colours estimated from that alpha.
* Colour bleed: the background colour a method leaves visible, separated from alpha errors: each
  method is compared with ITSELF re-coloured with the reference foreground,
  mean |a*F - a*F_ref| over the same band (0-255). It is what users see as a coloured fringe.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import cv2
import numpy as np
from scipy import ndimage

from .bootstrap import configure_numba_cache


def import_pymatting() -> ModuleType:
    """Import pymatting (evaluation only: the service never does) with the numba cache configured;
    the first call compiles or loads its kernels, 30-40 s cold."""
    configure_numba_cache()
    import pymatting

    return pymatting


GREEN = np.array([0.0, 1.0, 0.0], np.float32)
HALO_LOW, HALO_HIGH = 0.02, 0.98
HALO_DILATION_PX = 5
GRADIENT_SIGMA = 1.4


@dataclass(frozen=True)
class Scores:
    sad: float
    mse: float
    gradient: float
    halo: float
    bleed: float


def _gradient_magnitude(alpha: np.ndarray) -> np.ndarray:
    gx = ndimage.gaussian_filter(alpha.astype(np.float64), GRADIENT_SIGMA, order=(0, 1))
    gy = ndimage.gaussian_filter(alpha.astype(np.float64), GRADIENT_SIGMA, order=(1, 0))
    return np.hypot(gx, gy)


def halo_band(reference_alpha: np.ndarray) -> np.ndarray:
    soft = ((reference_alpha > HALO_LOW) & (reference_alpha < HALO_HIGH)).astype(np.uint8)
    size = 2 * HALO_DILATION_PX + 1
    return cv2.dilate(soft, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0


def over_green(alpha: np.ndarray, colours: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(np.float32)
    return a * colours.astype(np.float32) + (1.0 - a) * GREEN


def score(
    alpha: np.ndarray,
    colours: np.ndarray,
    reference_alpha: np.ndarray,
    reference_foreground: np.ndarray,
    region: np.ndarray | None = None,
) -> Scores:
    """All figures for one method (alphas in [0,1], colours float RGB in [0,1])."""
    region = np.ones(alpha.shape, bool) if region is None else region
    difference = alpha.astype(np.float64) - reference_alpha.astype(np.float64)
    gradient = (_gradient_magnitude(alpha) - _gradient_magnitude(reference_alpha)) ** 2
    band = halo_band(reference_alpha)
    halo = np.abs(over_green(alpha, colours) - over_green(reference_alpha, reference_foreground))
    a = alpha[..., None].astype(np.float32)
    bleed = np.abs(a * colours - a * reference_foreground)
    return Scores(
        sad=float(np.abs(difference[region]).sum() / 1000.0),
        mse=float((difference[region] ** 2).mean()) if region.any() else 0.0,
        gradient=float(gradient[region].sum() / 1000.0),
        halo=float(halo[band].mean() * 255.0) if band.any() else 0.0,
        bleed=float(bleed[band].mean() * 255.0) if band.any() else 0.0,
    )
