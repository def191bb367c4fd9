"""MediaPipe face-mesh landmark indices and the face regions the checks measure.

"Image left" means smaller x in the image (the subject's right side).
"""

from __future__ import annotations

import cv2
import numpy as np

NOSE_TIP = 1
CHIN = 152
FOREHEAD = 151
BETWEEN_BROWS = 9
SUBNASALE = 2
EYE_OUTER_IMAGE_LEFT = 33
EYE_OUTER_IMAGE_RIGHT = 263
MOUTH_CORNERS = (61, 291)
UPPER_LIP_TOP, LOWER_LIP_BOTTOM = 0, 17
CHEEK_IMAGE_LEFT, CHEEK_IMAGE_RIGHT = 50, 280
BELOW_EYE_IMAGE_LEFT, BELOW_EYE_IMAGE_RIGHT = 230, 450  # just under the lower lids
UPPER_LID_IMAGE_LEFT, UPPER_LID_IMAGE_RIGHT = 159, 386
BROW_MIDDLE_IMAGE_LEFT, BROW_MIDDLE_IMAGE_RIGHT = 105, 334

EYE_IMAGE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_IMAGE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
IRIS_A = (468, 469, 470, 471, 472)
IRIS_B = (473, 474, 475, 476, 477)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# Face oval split down the midline (forehead 10 to chin 152) for the left/right lighting balance.
FACE_HALF_IMAGE_LEFT = (
    10,
    109,
    67,
    103,
    54,
    21,
    162,
    127,
    234,
    93,
    132,
    58,
    172,
    136,
    150,
    149,
    176,
    148,
    152,
)
FACE_HALF_IMAGE_RIGHT = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
)
# Lower face below the nose (a mask's area): cheeks under the nose line down to the chin.
LOWER_FACE = (
    205, 36, 142, 129, 98, 97, 2, 326, 327, 358, 371, 266, 425, 411, 416, 394, 395, 369, 396,
    175, 171, 140, 170, 169, 192, 187,
)  # fmt: skip


def points(landmarks: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    return landmarks[list(indices), :2]


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the eye on the image's left and right (iris centre when refined, else contour mean)."""
    left_contour = points(landmarks, EYE_IMAGE_LEFT).mean(axis=0)
    right_contour = points(landmarks, EYE_IMAGE_RIGHT).mean(axis=0)
    if landmarks.shape[0] < 478:
        return left_contour, right_contour
    iris_a, iris_b = landmarks[IRIS_A[0], :2], landmarks[IRIS_B[0], :2]
    if np.linalg.norm(iris_a - left_contour) <= np.linalg.norm(iris_b - left_contour):
        return iris_a, iris_b
    return iris_b, iris_a


def inter_ocular(landmarks: np.ndarray) -> float:
    left, right = eye_centres(landmarks)
    return float(np.linalg.norm(left - right))


def polygon_mask(shape: tuple[int, ...], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask.astype(bool)


def hull_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    return mask.astype(bool)


def disc_mask(shape: tuple[int, ...], centre: np.ndarray, radius: float) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.circle(mask, (round(float(centre[0])), round(float(centre[1]))), max(1, round(radius)), 1, -1)
    return mask.astype(bool)


def face_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """x, y, width, height of the face oval."""
    oval = points(landmarks, FACE_OVAL)
    x0, y0 = oval.min(axis=0)
    x1, y1 = oval.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)
