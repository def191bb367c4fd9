"""What the checks know about the faces in an image, and the port that finds them.

:class:`FaceAnalyzer` is the port: the core asks it for a :class:`FaceAnalysis` and never sees the
model behind it (the service's is MediaPipe's face detection + 478-point face mesh, in
``adapters/mediapipe.py``). The pure geometry every analyzer shares lives here too: merging the
detectors' boxes into faces, and the head pose fitted to the mesh landmarks.

Coordinates everywhere in this module are pixels of the *working image* (the decoded, upright,
possibly reduced image that :class:`~avatarflow_imaging.DecodedImage` holds). Multiply by
``1 / image.scale`` to get original-image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from . import landmarks as lm


@dataclass(frozen=True)
class Detection:
    """One face found by a face detector (working-image pixels)."""

    x: float
    y: float
    width: float
    height: float
    score: float
    model: str  # which detector saw it (MediaPipe: "short_range" or "full_range")
    keypoints: tuple[tuple[float, float], ...]  # right eye, left eye, nose, mouth, right ear, left ear

    @property
    def size(self) -> float:
        """Geometric mean of the box sides: the face's linear size in pixels."""
        return float(np.sqrt(max(self.width, 0.0) * max(self.height, 0.0)))

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


@dataclass(frozen=True)
class HeadPoseDegrees:
    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True, eq=False)
class FaceAnalysis:
    """Everything the checks need to know about faces in the working image."""

    image_width: int
    image_height: int
    detections: tuple[Detection, ...]  # de-duplicated, main face first, then by size
    landmarks: np.ndarray | None  # (478, 3) of the main face: x, y in pixels, z in pixel-like units
    pose: HeadPoseDegrees | None
    raw_detections: tuple[Detection, ...] = ()  # every detection of both models, before merging

    @property
    def main(self) -> Detection | None:
        return self.detections[0] if self.detections else None


def _iou(a: Detection, b: Detection) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.width, b.x + b.width), min(a.y + a.height, b.y + b.height)
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def merge_detections(detections: list[Detection], iou_threshold: float = 0.3) -> tuple[Detection, ...]:
    """Non-maximum suppression across both detectors; main face (largest size x score) first.

    The two models see the same face at slightly different boxes; a box that overlaps a kept one by
    more than ``iou_threshold`` (or whose centre lies inside it) is the same face.
    """
    ranked = sorted(detections, key=lambda d: (-d.score, -d.size, d.x, d.y))
    kept: list[Detection] = []
    for candidate in ranked:
        cx, cy = candidate.center
        duplicate = any(
            _iou(candidate, other) > iou_threshold
            or (other.x <= cx <= other.x + other.width and other.y <= cy <= other.y + other.height)
            for other in kept
        )
        if not duplicate:
            kept.append(candidate)
    kept.sort(key=lambda d: (-(d.size * d.score), d.x, d.y))
    return tuple(kept)


# A generic adult head in millimetres, camera axes (x right, y down, z away from the camera), nose
# tip at the origin; the classic six-point model used with solvePnP (eye outer corners, mouth
# corners, nose tip, chin). A frontal face gives the identity rotation.
_MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip
        (0.0, 330.0, 65.0),  # chin
        (-225.0, -170.0, 135.0),  # outer corner of the eye on the image's left
        (225.0, -170.0, 135.0),  # outer corner of the eye on the image's right
        (-150.0, 150.0, 125.0),  # mouth corner, image left
        (150.0, 150.0, 125.0),  # mouth corner, image right
    ],
    dtype=np.float64,
)
_MODEL_LANDMARKS = (
    lm.NOSE_TIP,
    lm.CHIN,
    lm.EYE_OUTER_IMAGE_LEFT,
    lm.EYE_OUTER_IMAGE_RIGHT,
    *lm.MOUTH_CORNERS,
)


def head_pose(landmarks: np.ndarray, image_width: int, image_height: int) -> HeadPoseDegrees | None:
    """Yaw, pitch, roll (degrees) of the canonical head fitted to six mesh landmarks by solvePnP."""
    image_points = landmarks[list(_MODEL_LANDMARKS), :2].astype(np.float64)
    focal = float(max(image_width, image_height))
    camera = np.array([[focal, 0, image_width / 2], [0, focal, image_height / 2], [0, 0, 1]], dtype=np.float64)
    # Start from a frontal head at the distance its eye span implies: without a guess the
    # iterative solver sometimes lands on the mirrored solution (head behind the camera, roll 180).
    eye_span = max(float(np.linalg.norm(image_points[3] - image_points[2])), 1.0)
    distance = focal * 450.0 / eye_span
    nose = image_points[0]
    rvec = np.zeros((3, 1), dtype=np.float64)
    tvec = np.array(
        [
            [(nose[0] - image_width / 2) * distance / focal],
            [(nose[1] - image_height / 2) * distance / focal],
            [distance],
        ],
        dtype=np.float64,
    )
    ok, rvec, _ = cv2.solvePnP(
        _MODEL_POINTS, image_points, camera, np.zeros(4), rvec, tvec, True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    # R = Rz(roll) @ Ry(yaw) @ Rx(pitch), read off directly (no +-180 ambiguity for |yaw| < 90).
    yaw = float(np.degrees(np.arcsin(np.clip(-rotation[2, 0], -1.0, 1.0))))
    pitch = float(np.degrees(np.arctan2(rotation[2, 1], rotation[2, 2])))
    roll = float(np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0])))
    return HeadPoseDegrees(yaw=yaw, pitch=pitch, roll=roll)


class FaceAnalyzer(Protocol):
    """Finds the faces in a working image (the port the :class:`~.validator.Validator` uses).

    An implementation holds its models, is created once and reused across images, and need not be
    thread-safe: each worker thread owns its own (MediaPipe graphs are not thread-safe).
    """

    def analyse(self, rgb: np.ndarray) -> FaceAnalysis:
        """Faces of an (H, W, 3) uint8 RGB image: de-duplicated detections (main face first, see
        :func:`merge_detections`), the main face's (478, 3) landmarks and its head pose."""
        ...

    def close(self) -> None:
        """Release the models."""
        ...
