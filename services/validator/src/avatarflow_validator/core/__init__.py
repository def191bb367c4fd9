"""The validator's pure core: decide whether an image can become an avatar.

The face models sit behind the :class:`FaceAnalyzer` port (MediaPipe is the service's adapter).
"""

from __future__ import annotations

from .face_analysis import FaceAnalysis, FaceAnalyzer
from .thresholds import ValidatorThresholds
from .validator import ValidationOutcome, Validator, suggested_crop

__all__ = ["FaceAnalysis", "FaceAnalyzer", "ValidationOutcome", "Validator", "ValidatorThresholds", "suggested_crop"]
