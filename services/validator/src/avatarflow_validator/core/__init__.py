"""The validator's pure core: decide whether an image can become an avatar."""

from __future__ import annotations

from .thresholds import ValidatorThresholds
from .validator import ValidationOutcome, Validator, suggested_crop

__all__ = ["ValidationOutcome", "Validator", "ValidatorThresholds", "suggested_crop"]
