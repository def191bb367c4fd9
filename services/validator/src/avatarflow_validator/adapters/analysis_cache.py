"""A face-analysis cache on disk: evaluation and training re-run the checks, not the face models.

``avatarctl eval`` / ``train-model`` score the same 725 corpus images many times while checks and
decision rules change; MediaPipe is most of the cost. :class:`CachedFaceAnalyzer` wraps any
:class:`~avatarflow_validator.core.face_analysis.FaceAnalyzer` and keeps its answer per working
image in ``DIR/<key>.json``. The key hashes the analyzer's ``cache_tag`` (its kind and settings:
change the analyzer, change the tag), the image shape and its pixels, so a changed decode or a
changed analyzer never reads a stale answer. JSON (not pickle): a cache folder is data, never code.
For development tools only; the service never caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.face_analysis import Detection, FaceAnalysis, FaceAnalyzer, HeadPoseDegrees


def cache_tag(analyzer: FaceAnalyzer) -> str:
    """What identifies an analyzer's answers: its ``cache_tag`` if it has one, else its class."""
    tag = getattr(analyzer, "cache_tag", None)
    return str(tag) if tag else type(analyzer).__qualname__


def _detection(d: Detection) -> dict[str, Any]:
    return {
        "x": d.x,
        "y": d.y,
        "width": d.width,
        "height": d.height,
        "score": d.score,
        "model": d.model,
        "keypoints": [list(k) for k in d.keypoints],
    }


def _from_detection(raw: dict[str, Any]) -> Detection:
    return Detection(
        x=float(raw["x"]),
        y=float(raw["y"]),
        width=float(raw["width"]),
        height=float(raw["height"]),
        score=float(raw["score"]),
        model=str(raw["model"]),
        keypoints=tuple((float(k[0]), float(k[1])) for k in raw["keypoints"]),
    )


def to_json(analysis: FaceAnalysis) -> dict[str, Any]:
    pose = analysis.pose
    return {
        "image_width": analysis.image_width,
        "image_height": analysis.image_height,
        "detections": [_detection(d) for d in analysis.detections],
        "raw_detections": [_detection(d) for d in analysis.raw_detections],
        "landmarks": None if analysis.landmarks is None else analysis.landmarks.tolist(),
        "pose": None if pose is None else [pose.yaw, pose.pitch, pose.roll],
    }


def from_json(raw: dict[str, Any]) -> FaceAnalysis:
    pose = raw["pose"]
    return FaceAnalysis(
        image_width=int(raw["image_width"]),
        image_height=int(raw["image_height"]),
        detections=tuple(_from_detection(d) for d in raw["detections"]),
        landmarks=None if raw["landmarks"] is None else np.asarray(raw["landmarks"], dtype=np.float64),
        pose=None if pose is None else HeadPoseDegrees(yaw=pose[0], pitch=pose[1], roll=pose[2]),
        raw_detections=tuple(_from_detection(d) for d in raw["raw_detections"]),
    )


class CachedFaceAnalyzer:
    """``inner``'s answers, read from ``directory`` when this image was analysed before."""

    def __init__(self, inner: FaceAnalyzer, directory: Path) -> None:
        self._inner = inner
        self._directory = directory
        self._tag = cache_tag(inner)
        self.hits = 0
        self.misses = 0
        directory.mkdir(parents=True, exist_ok=True)

    def key(self, rgb: np.ndarray) -> str:
        digest = hashlib.sha256(self._tag.encode())
        digest.update(repr((rgb.shape, str(rgb.dtype))).encode())
        digest.update(np.ascontiguousarray(rgb).tobytes())
        return digest.hexdigest()

    def analyse(self, rgb: np.ndarray) -> FaceAnalysis:
        path = self._directory / f"{self.key(rgb)}.json"
        if path.is_file():
            self.hits += 1
            return from_json(json.loads(path.read_text()))
        self.misses += 1
        analysis = self._inner.analyse(rgb)
        # Write then rename: an interrupted run never leaves half a file to be read next time.
        fd, tmp = tempfile.mkstemp(dir=self._directory, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(to_json(analysis), handle)
        os.replace(tmp, path)
        return analysis

    def close(self) -> None:
        self._inner.close()
