"""MediaPipe face detection + 478-point face mesh, and head pose from the landmarks.

Coordinates everywhere in this module are pixels of the *working image* (the decoded, upright,
possibly reduced image that :class:`~avatarflow_imaging.DecodedImage` holds). Multiply by
``1 / image.scale`` to get original-image pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# MediaPipe/TFLite and OpenCV read these when they start their thread pools.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
from mediapipe.python.solutions import face_detection as mp_face_detection
from mediapipe.python.solutions import face_mesh as mp_face_mesh

from . import landmarks as lm


@dataclass(frozen=True)
class Detection:
    """One face found by a MediaPipe detector (working-image pixels)."""

    x: float
    y: float
    width: float
    height: float
    score: float
    model: str  # "short_range" or "full_range"
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


class FaceAnalyzer:
    """Holds the MediaPipe graphs (created once; reuse across images; not thread-safe)."""

    # Mesh input: the main face's box grown by this factor on each side, then at most this many px.
    MESH_CROP_EXPANSION = 2.2
    MESH_CROP_MAX_SIDE = 384

    def __init__(self, min_detection_confidence: float = 0.5) -> None:
        self._short = mp_face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=min_detection_confidence
        )
        self._full = mp_face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_detection_confidence
        )
        self._mesh = mp_face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5
        )

    def close(self) -> None:
        for graph in (self._short, self._full, self._mesh):
            graph.close()

    def analyse(self, rgb: np.ndarray) -> FaceAnalysis:
        height, width = rgb.shape[:2]
        if min(height, width) < 8:
            return FaceAnalysis(width, height, (), None, None)
        found: list[Detection] = []
        for name, graph in (("short_range", self._short), ("full_range", self._full)):
            found.extend(self._detect(graph, name, rgb))
        detections = merge_detections(found)
        landmarks = self._mesh_main_face(rgb, detections[0]) if detections else None
        pose = head_pose(landmarks, width, height) if landmarks is not None else None
        return FaceAnalysis(width, height, detections, landmarks, pose, tuple(found))

    @staticmethod
    def _detect(graph: mp_face_detection.FaceDetection, name: str, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        result = graph.process(rgb)
        out: list[Detection] = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            keypoints = tuple(
                (float(k.x * width), float(k.y * height)) for k in detection.location_data.relative_keypoints
            )
            out.append(
                Detection(
                    x=float(box.xmin * width),
                    y=float(box.ymin * height),
                    width=float(box.width * width),
                    height=float(box.height * height),
                    score=float(detection.score[0]),
                    model=name,
                    keypoints=keypoints,
                )
            )
        return out

    def _mesh_main_face(self, rgb: np.ndarray, face: Detection) -> np.ndarray | None:
        """Run the mesh on a square crop around the main face so it meshes *that* face.

        The crop is padded with edge pixels where it leaves the image and reduced to at most
        MESH_CROP_MAX_SIDE (the mesh itself works at 192-256 px), then mapped back.
        """
        height, width = rgb.shape[:2]
        cx, cy = face.center
        side = max(face.width, face.height) * self.MESH_CROP_EXPANSION
        side = max(side, 32.0)
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        side_px = round(side)
        pad = (max(0, -y0), max(0, y0 + side_px - height), max(0, -x0), max(0, x0 + side_px - width))
        crop = rgb[max(0, y0) : min(height, y0 + side_px), max(0, x0) : min(width, x0 + side_px)]
        if any(pad):
            crop = cv2.copyMakeBorder(crop, *pad, borderType=cv2.BORDER_REPLICATE)
        factor = 1.0
        if side_px > self.MESH_CROP_MAX_SIDE:
            factor = self.MESH_CROP_MAX_SIDE / side_px
            crop = cv2.resize(crop, (self.MESH_CROP_MAX_SIDE, self.MESH_CROP_MAX_SIDE), interpolation=cv2.INTER_AREA)
        result = self._mesh.process(np.ascontiguousarray(crop))
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        crop_side = crop.shape[1]
        mesh = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float64) * crop_side / factor
        mesh[:, 0] += x0
        mesh[:, 1] += y0
        return mesh
