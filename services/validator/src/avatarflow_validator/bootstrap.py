"""Process set-up for the validator, and the validator the service runs (MediaPipe behind the port).

Everything here acts on the process, which is why it is not in ``core/``: environment variables
that MediaPipe's native libraries read once, when they load. :func:`open_validator` applies them
and only then imports the MediaPipe adapter, so every way of building the service's validator (the
pipeline stage, the pre-check lanes, ``avatarctl``, the benchmarks, the tests) logs the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from .core import Validator, ValidatorThresholds
from .core.decision_model import DecisionModel
from .core.face_analysis import FaceAnalyzer

# MediaPipe's glog and TFLite read these when the library loads: warnings and errors only (their
# INFO lines, one per graph and per delegate, would otherwise flood every worker's log).
NATIVE_LOG_LEVELS = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}


def configure_process() -> None:
    """Quiet MediaPipe's native logging (an operator's own setting wins). Effective only before
    MediaPipe is first imported in this process; idempotent."""
    for name, value in NATIVE_LOG_LEVELS.items():
        os.environ.setdefault(name, value)


def open_validator(
    thresholds: ValidatorThresholds | None = None,
    decision_model: DecisionModel | str | None = "packaged",
    analysis_cache: Path | None = None,
) -> Validator:
    """A :class:`Validator` on MediaPipe's face models (arguments as :class:`Validator`'s).

    ``analysis_cache``: a folder keeping MediaPipe's answer per working image, for evaluation and
    training runs over the same images (``adapters/analysis_cache.py``); the service passes none.

    Loads the models (a fraction of a second); the result is not thread-safe, so call this on the
    thread that will use it. A module-level function, so it is also a picklable factory.
    """
    configure_process()
    from .adapters.mediapipe import MediaPipeFaceAnalyzer  # after configure_process: see above

    thresholds = thresholds or ValidatorThresholds()
    analyzer: FaceAnalyzer = MediaPipeFaceAnalyzer(min_detection_confidence=thresholds.detection_confidence)
    if analysis_cache is not None:
        from .adapters.analysis_cache import CachedFaceAnalyzer

        analyzer = CachedFaceAnalyzer(analyzer, analysis_cache)
    return Validator(analyzer, thresholds, decision_model)
