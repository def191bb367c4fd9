"""The port to the coarse person mask the matte starts from.

The core asks a :class:`PersonSegmenter` for a person probability and never sees the model behind
it (the service's is MediaPipe selfie segmentation, in ``adapters/segmentation.py``). The core's
trimap and confidence rules are tuned for that model's resolution, :data:`MODEL_INPUT_SIZE`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

MODEL_INPUT_SIZE = 256  # the person model's square input, in pixels (one model pixel, in the core's grid)


class PersonSegmenter(Protocol):
    """Holds a person-segmentation model; create one per worker (loading it takes a while) and
    reuse it. Need not be thread-safe: each worker thread owns its own."""

    def person_mask(self, image_rgb: np.ndarray) -> np.ndarray:
        """Float32 person probability in [0,1], same height and width as ``image_rgb`` (uint8)."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...
