"""Avatar canvas and headroom rules.

The cut-out is a square ``CANVAS_SIZE`` x ``CANVAS_SIZE`` head-and-shoulders frame:

* the midpoint between the eyes is centred horizontally and sits at ``EYE_LINE`` (40 %) of the
  canvas height, which leaves room above the head for hair;
* the face height -- forehead top (mesh point 10) to chin (mesh point 152), a measure that does not
  change with in-plane tilt -- is ``FACE_HEIGHT`` (35 %) of the canvas height, so the shoulders
  fill the lower part;
* the image is only scaled and shifted (never rotated or stretched); where the frame reaches past
  the image, the canvas is transparent.

Without face geometry the face is estimated from the person mask: the head top is the mask's top
row, the face height is ``_HEAD_WIDTH_TO_FACE_HEIGHT`` x the median mask width over the top
``_HEAD_ROWS_FRACTION`` of the person, and the eyes sit ``_EYES_BELOW_HEAD_TOP`` face heights below
the head top (hair included). It is an estimate, used only when no validator pass is available.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from avatarflow_contracts.events import Box, FaceGeometry, Point

CANVAS_SIZE = 1024
EYE_LINE = 0.40
FACE_HEIGHT = 0.35
FOREHEAD_LANDMARK = 10
CHIN_LANDMARK = 152

_HEAD_ROWS_FRACTION = 0.2
_HEAD_WIDTH_TO_FACE_HEIGHT = 1.15
_EYES_BELOW_HEAD_TOP = 0.6


@dataclass(frozen=True)
class Framing:
    """Image pixel (x, y) -> canvas pixel (scale*x + shift_x, scale*y + shift_y)."""

    scale: float
    shift_x: float
    shift_y: float

    def point(self, x: float, y: float) -> tuple[float, float]:
        return self.scale * x + self.shift_x, self.scale * y + self.shift_y


def _framing(eye_x: float, eye_y: float, face_height: float) -> Framing:
    scale = FACE_HEIGHT * CANVAS_SIZE / max(face_height, 1e-3)
    return Framing(scale, CANVAS_SIZE / 2 - scale * eye_x, EYE_LINE * CANVAS_SIZE - scale * eye_y)


def face_to_image_scale(face: FaceGeometry, width: int, height: int) -> tuple[float, float]:
    """Factors from the face geometry's pixel grid to the working image's."""
    return width / face.image_width, height / face.image_height


def framing_from_face(face: FaceGeometry, width: int, height: int) -> Framing:
    sx, sy = face_to_image_scale(face, width, height)
    eye_x = (face.left_eye.x + face.right_eye.x) / 2 * sx
    eye_y = (face.left_eye.y + face.right_eye.y) / 2 * sy
    top = face.landmarks[FOREHEAD_LANDMARK]
    chin = face.landmarks[CHIN_LANDMARK]
    face_height = float(np.hypot((chin[0] - top[0]) * sx, (chin[1] - top[1]) * sy))
    if face_height < 1.0:  # degenerate mesh: use the face box
        face_height = face.box.height * sy
    return _framing(eye_x, eye_y, face_height)


def framing_from_mask(mask: np.ndarray) -> Framing:
    """Estimate head position and size from a person mask (see module docstring)."""
    height, width = mask.shape
    # The rows holding any mask > 0.5 from each row's maximum (one pass, no full boolean image);
    # only the head rows are thresholded.
    rows = np.flatnonzero(mask.max(axis=1) > 0.5) if mask.size else np.zeros(0, np.int64)
    if len(rows) == 0:  # nothing found: frame the whole image, centred
        return _framing(width / 2, height * EYE_LINE, FACE_HEIGHT * height)
    top, bottom = int(rows[0]), int(rows[-1])
    head_rows = mask[top : top + max(1, int(_HEAD_ROWS_FRACTION * (bottom - top + 1)))] > 0.5
    widths = head_rows.sum(axis=1)
    head_width = float(np.median(widths[widths > 0]))
    columns = np.nonzero(head_rows.any(axis=0))[0]
    weights = head_rows.sum(axis=0)[columns]
    centre_x = float((columns * weights).sum() / weights.sum())
    face_height = _HEAD_WIDTH_TO_FACE_HEIGHT * head_width
    return _framing(centre_x, top + _EYES_BELOW_HEAD_TOP * face_height, face_height)


def map_face(face: FaceGeometry, framing: Framing, width: int, height: int) -> FaceGeometry:
    """The face geometry in canvas pixels (landmark z is relative and left unchanged)."""
    sx, sy = face_to_image_scale(face, width, height)

    def point(p: Point) -> Point:
        x, y = framing.point(p.x * sx, p.y * sy)
        return Point(x=x, y=y)

    def box(b: Box) -> Box:
        x, y = framing.point(b.x * sx, b.y * sy)
        return Box(x=x, y=y, width=b.width * sx * framing.scale, height=b.height * sy * framing.scale)

    landmarks = [(*framing.point(x * sx, y * sy), z) for x, y, z in face.landmarks]
    return face.model_copy(
        update={
            "image_width": CANVAS_SIZE,
            "image_height": CANVAS_SIZE,
            "box": box(face.box),
            "landmarks": landmarks,
            "left_eye": point(face.left_eye),
            "right_eye": point(face.right_eye),
            "mouth_center": point(face.mouth_center),
            "suggested_crop": box(face.suggested_crop),
        }
    )
