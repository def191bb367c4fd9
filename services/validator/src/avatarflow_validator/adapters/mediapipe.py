"""MediaPipe face detection + 478-point face mesh: the validator's face analyzer.

Implements the core's :class:`~avatarflow_validator.core.face_analysis.FaceAnalyzer` port. Build it
through :func:`avatarflow_validator.bootstrap.open_validator`, which quiets MediaPipe's native
logging before this module first loads MediaPipe (glog and TFLite read those variables then).
Coordinates are working-image pixels, as everywhere in the core.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from mediapipe.python.solutions import face_detection as mp_face_detection
from mediapipe.python.solutions import face_mesh as mp_face_mesh

from ..core.face_analysis import Detection, FaceAnalysis, head_pose, merge_detections


class MediaPipeFaceAnalyzer:
    """The :class:`~avatarflow_validator.core.face_analysis.FaceAnalyzer` the service runs: MediaPipe's
    short- and full-range face detectors and its refined face mesh.

    Holds the MediaPipe graphs (created once; reuse across images; not thread-safe).
    """

    # Mesh input: the main face's box grown by this factor on each side, then at most this many px.
    MESH_CROP_EXPANSION = 2.2
    MESH_CROP_MAX_SIDE = 384
    # Second pass when neither detector finds a face: this share of the long side as a border per edge.
    PADDED_PASS_BORDER = 0.25
    # Third pass when that finds nothing either: a group photo's faces are too small for the
    # detectors at the whole image's scale (they see it at 128-192 px), so the full-range detector
    # looks at overlapping tiles this share of the long side (stride half a tile). Only faces the
    # detector scores at least TILE_MIN_SCORE and the mesh confirms count, and only two or more are
    # reported: one small face in a scene stays "no face" (tiles also see faces in textures).
    TILE_SIDE_SHARE = 0.5
    TILE_MIN_SCORE = 0.6
    TILE_MAX_MESHED = 6

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
        # Identifies this analyzer's answers for adapters/analysis_cache.py: bump the version when
        # what analyse() returns changes.
        self.cache_tag = (
            f"mediapipe-v2:conf={min_detection_confidence}:crop={self.MESH_CROP_EXPANSION},{self.MESH_CROP_MAX_SIDE}"
            f":padded={self.PADDED_PASS_BORDER}"
            f":tiles={self.TILE_SIDE_SHARE},{self.TILE_MIN_SCORE},{self.TILE_MAX_MESHED}"
        )

    def close(self) -> None:
        for graph in (self._short, self._full, self._mesh):
            graph.close()

    def analyse(self, rgb: np.ndarray) -> FaceAnalysis:
        height, width = rgb.shape[:2]
        if min(height, width) < 8:
            return FaceAnalysis(width, height, (), None, None)
        found = self._detect_both(rgb)
        if not found:
            # A face that fills the frame (a tight crop, a passport-style cut-out) is outside what
            # the detectors were trained on and often goes unseen; framed with a border it is an
            # ordinary face. Only kept when the mesh also places eyes, nose and mouth on it: the
            # border alone makes the detectors see faces in patterns, animals and logos too.
            second = self._padded_pass(rgb) or self._tiled_pass(rgb)
            if second is not None:
                return second
        detections = merge_detections(found)
        landmarks = self._mesh_main_face(rgb, detections[0]) if detections else None
        pose = head_pose(landmarks, width, height) if landmarks is not None else None
        return FaceAnalysis(width, height, detections, landmarks, pose, tuple(found))

    def _detect_both(self, rgb: np.ndarray) -> list[Detection]:
        found: list[Detection] = []
        for name, graph in (("short_range", self._short), ("full_range", self._full)):
            found.extend(self._detect(graph, name, rgb))
        return found

    def _padded_pass(self, rgb: np.ndarray) -> FaceAnalysis | None:
        """Detect and mesh on the image framed by a neutral grey border (PADDED_PASS_BORDER of the
        long side per edge); the faces mapped back to the image's pixels, or None unless the mesh
        confirmed the main one."""
        height, width = rgb.shape[:2]
        pad = round(max(height, width) * self.PADDED_PASS_BORDER)
        framed = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        found = self._detect_both(framed)
        if not found:
            return None
        detections = merge_detections(found)
        landmarks = self._mesh_main_face(framed, detections[0])
        if landmarks is None:
            return None
        landmarks[:, :2] -= pad
        back = [_shifted(d, -pad) for d in found]
        pose = head_pose(landmarks, width, height)
        return FaceAnalysis(width, height, merge_detections(back), landmarks, pose, tuple(back))

    def _tiled_pass(self, rgb: np.ndarray) -> FaceAnalysis | None:
        """Faces found by the full-range detector on overlapping tiles, in the image's pixels; None
        unless at least two of them are confirmed by the mesh (a group too small to see whole)."""
        height, width = rgb.shape[:2]
        found: list[Detection] = []
        for y0, x0, side in tile_grid(height, width, self.TILE_SIDE_SHARE):
            tile = np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side])
            found.extend(_moved(d, x0, y0) for d in self._detect(self._full, "full_range", tile))
        candidates = [d for d in merge_detections(found) if d.score >= self.TILE_MIN_SCORE]
        confirmed: list[tuple[Detection, np.ndarray]] = []
        for face in candidates[: self.TILE_MAX_MESHED]:
            mesh = self._mesh_main_face(rgb, face)
            if mesh is not None:
                confirmed.append((face, mesh))
        if len(confirmed) < 2:
            return None
        faces = merge_detections([face for face, _ in confirmed])
        landmarks = next(mesh for face, mesh in confirmed if face is faces[0])
        return FaceAnalysis(width, height, faces, landmarks, head_pose(landmarks, width, height), tuple(found))

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


def _shifted(d: Detection, offset: float) -> Detection:
    """``d`` moved by ``offset`` px along both axes (a framed image's faces back to the image's)."""
    return _moved(d, offset, offset)


def _moved(d: Detection, dx: float, dy: float) -> Detection:
    """``d`` moved by (dx, dy) px (a tile's or a framed image's faces back to the image's)."""
    return replace(d, x=d.x + dx, y=d.y + dy, keypoints=tuple((x + dx, y + dy) for x, y in d.keypoints))


def tile_grid(height: int, width: int, side_share: float) -> list[tuple[int, int, int]]:
    """Square tiles (top, left, side) of ``side_share`` of the long side, overlapping by half a
    tile, covering the whole image; a short side shorter than a tile gets a single row/column."""
    side = max(1, min(round(max(height, width) * side_share), max(height, width)))

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        steps = int(np.ceil((length - side) / (side / 2)))
        return [round(i * (length - side) / steps) for i in range(steps + 1)]

    return [(y0, x0, side) for y0 in starts(height) for x0 in starts(width)]
