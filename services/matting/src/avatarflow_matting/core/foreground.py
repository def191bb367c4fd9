"""Foreground colour estimation (decontamination).

An edge pixel is a mix ``I = alpha*F + (1-alpha)*B``; keeping ``I`` as the cut-out colour leaves the
old background's colour in hair and edges (the halo users see on a new background). We solve for
``F`` with pymatting's multi-level foreground estimation (Germer et al. 2020): it finds smooth ``F``
and ``B`` that satisfy the compositing equation for the given alpha, so edge pixels take the
colour of the nearby subject.
"""

from __future__ import annotations

import numpy as np

from .alpha import to_float_image
from .jit import import_pymatting


def estimate_foreground(image_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Decontaminated foreground colours, float32 RGB in [0,1], same size as the image.

    Where alpha is 1 the original colour is kept exactly (nothing to decontaminate there).
    """
    pymatting = import_pymatting()
    image = to_float_image(image_rgb)
    alpha = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    foreground = pymatting.estimate_foreground_ml(image, alpha).astype(np.float32)
    foreground = np.clip(foreground, 0.0, 1.0)
    opaque = alpha >= 1.0
    foreground[opaque] = image[opaque]
    return foreground
