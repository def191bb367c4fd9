"""Coarse person mask from MediaPipe selfie segmentation: the core's ``PersonSegmenter``.

``model_selection=0`` (the "general" model, 256x256 input) is used rather than 1 (landscape,
144x256): avatar uploads are portrait or square head-and-shoulders photos, for which the square
general model has ~1.8x more input pixels on the subject, i.e. a finer edge to refine, at a cost
of a few milliseconds.
"""

from __future__ import annotations

import cv2
import numpy as np

MODEL_SELECTION = 0  # the general model, 256 px square input (the core's MODEL_INPUT_SIZE)
# The model sees 256 px whatever we pass; feeding it at most this long side keeps the upscaled
# output mask cheap without losing anything.
_SEGMENTATION_MAX_SIDE = 1024


class SelfieSegmenter:
    """Holds the MediaPipe segmenter; create one per worker (loading the model takes a while)."""

    def __init__(self) -> None:
        # Imported here, not at the top: wiring the service (``app.py``, the schema export) does not
        # load MediaPipe; the worker does, when it builds its segmenter.
        from mediapipe.python.solutions import selfie_segmentation

        self._segmenter = selfie_segmentation.SelfieSegmentation(model_selection=MODEL_SELECTION)

    def person_mask(self, image_rgb: np.ndarray) -> np.ndarray:
        """Float32 person probability in [0,1], same height and width as ``image_rgb`` (uint8)."""
        height, width = image_rgb.shape[:2]
        scale = min(1.0, _SEGMENTATION_MAX_SIDE / max(height, width))
        small = image_rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
        result = self._segmenter.process(np.ascontiguousarray(small, dtype=np.uint8))
        mask = np.asarray(result.segmentation_mask, dtype=np.float32)
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0)

    def close(self) -> None:
        self._segmenter.close()

    def __enter__(self) -> SelfieSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
