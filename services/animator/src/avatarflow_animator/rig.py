"""Landmark-driven face rig: per-avatar displacement fields and the mouth interior.

Every motion the warp renderer can make is a linear combination of a few dense *basis fields*
computed once per avatar from its face-mesh landmarks (jaw drop, lip spread, lip rounding, lip
press, head roll and shift). A frame is then just a coefficient vector, and the warp of a whole
batch is one matrix product plus a GridSample in the ONNX graph. Blinks are not a field: the
lids are a composited skin layer (``eyelids``), so nothing above the eye is ever dragged.

Fields are *backward* displacements in canvas pixels: the output pixel ``p`` samples the source
at ``p - field(p)``. They are built in a face-aligned frame (x along the eye line, y down the
face, origin between the mouth corners) so a slightly tilted head deforms along its own axes.
Head motion is built in canvas axes and falls off to zero below the chin, so the shoulders and
the whole lower outline of the cut-out never move.

Landmark indices are MediaPipe face-mesh (478 points, refined eyes/iris/lips).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .poses import FacePose

# MediaPipe face-mesh indices. "Right" eye = the subject's right = the eye on the image's left.
INNER_LIP_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIP_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
OUTER_LIP_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LIP_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
MOUTH_CORNERS = (61, 291)
FOREHEAD_TOP, CHIN, NOSE_BASE = 10, 152, 2

BASIS_NAMES = (
    "jaw",
    "spread",
    "round",
    "press",
    "head_roll",
    "head_dx",
    "head_dy",
)

# Extents of the motions, as fractions of the face's own size so any portrait scale works.
JAW_DROP_OF_FACE_HEIGHT = 0.09  # lower-lip drop at jaw_open = 1 (a wide "aa")
UPPER_LIP_RAISE_OF_JAW = 0.12  # the upper lip lifts a little as the jaw drops
SPREAD_OF_HALF_MOUTH = 0.16  # each corner moves out by this at lip_spread = 1
ROUND_OF_HALF_MOUTH = 0.24  # each corner moves in by this at lip_round = 1
PRESS_OF_LIP_THICKNESS = 0.3  # lips thin by this at lip_press = 1
NECK_FALLOFF_OF_FACE_HEIGHT = 0.45  # head motion fades to zero over this much neck below the chin


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _curve(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x-sorted (xs, ys) of a landmark polyline for ``np.interp`` (which clamps at the ends)."""
    order = np.argsort(points[:, 0], kind="stable")
    return points[order, 0], points[order, 1]


@dataclass(frozen=True)
class _Eye:
    upper: tuple[np.ndarray, np.ndarray]
    lower: tuple[np.ndarray, np.ndarray]
    max_height: float


class FaceRig:
    """Geometry of one face on the output canvas, and the fields/layers derived from it."""

    def __init__(self, landmarks_xy: np.ndarray, size: int) -> None:
        self.size = size
        pts = np.asarray(landmarks_xy, dtype=np.float64)[:, :2]
        self.landmarks = pts
        right_eye = pts[[33, 133]].mean(axis=0)
        left_eye = pts[[263, 362]].mean(axis=0)
        axis = left_eye - right_eye
        self.u = axis / max(float(np.hypot(*axis)), 1e-6)  # along the eye line
        self.v = np.array([-self.u[1], self.u[0]])  # down the face
        self.origin = pts[list(MOUTH_CORNERS)].mean(axis=0)
        self.face_height = float(np.hypot(*(pts[CHIN] - pts[FOREHEAD_TOP])))

        local = self.to_local(pts)
        self.half_mouth = max(float(local[MOUTH_CORNERS[1], 0] - local[MOUTH_CORNERS[0], 0]) / 2, 2.0)
        self.inner_upper = _curve(local[list(INNER_LIP_UPPER)])
        self.inner_lower = _curve(local[list(INNER_LIP_LOWER)])
        self.outer_upper = _curve(local[list(OUTER_LIP_UPPER)])
        self.outer_lower = _curve(local[list(OUTER_LIP_LOWER)])
        self.chin_y = float(local[CHIN, 1])
        self.nose_y = float(local[NOSE_BASE, 1])
        self.eyes = [
            self._eye(local, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER),
            self._eye(local, LEFT_EYE_UPPER, LEFT_EYE_LOWER),
        ]
        # Head motion pivots low on the neck so the face swings and the shoulders stay.
        self.pivot = pts[CHIN] + 0.3 * self.face_height * self.v
        self.jaw_drop = JAW_DROP_OF_FACE_HEIGHT * self.face_height

    @staticmethod
    def _eye(local: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]) -> _Eye:
        up, low = _curve(local[list(upper)]), _curve(local[list(lower)])
        xs = np.linspace(up[0][0], up[0][-1], 32)
        height = np.interp(xs, *low) - np.interp(xs, *up)
        return _Eye(up, low, max(float(height.max()), 1.0))

    # --- coordinates -------------------------------------------------------------------------

    def to_local(self, points: np.ndarray) -> np.ndarray:
        rel = np.asarray(points, dtype=np.float64)[..., :2] - self.origin
        return np.stack([rel @ self.u, rel @ self.v], axis=-1)

    def _to_canvas_vectors(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dx[..., None] * self.u + dy[..., None] * self.v

    def mouth_line(self, x: np.ndarray) -> np.ndarray:
        return 0.5 * (np.interp(x, *self.inner_upper) + np.interp(x, *self.inner_lower))

    # --- basis fields ------------------------------------------------------------------------

    def fields(self, points: np.ndarray, lip_side: np.ndarray | None = None) -> np.ndarray:
        """All basis displacements at ``points`` (M, 2): array (K, M, 2) in canvas pixels.

        ``lip_side`` (M,) forces which side of the mouth line a point belongs to (-1 upper lip,
        +1 lower lip, 0 decide by position); landmarks on the inner lips lie exactly on the line.
        """
        points = np.asarray(points, dtype=np.float64)
        local = self.to_local(points)
        x, y = local[:, 0], local[:, 1]
        out = np.zeros((len(BASIS_NAMES), len(points), 2))
        out[0] = self._jaw(x, y, lip_side)
        out[1], out[2] = self._spread_round(x, y)
        out[3] = self._press(x, y)
        out[4], out[5], out[6] = self._head(points)
        return out

    def _jaw(self, x: np.ndarray, y: np.ndarray, lip_side: np.ndarray | None) -> np.ndarray:
        fh, mw = self.face_height, self.half_mouth
        ym = self.mouth_line(x)
        across = np.exp(-0.5 * (x / (0.9 * mw)) ** 2)
        # Inside the mouth the lower lip parts from the upper along a 1.5 px step; beyond the
        # corners the step widens into a smooth stretch of cheek skin instead of a tear.
        grow = np.clip((np.abs(x) - 0.9 * mw) / (0.6 * mw), 0.0, 1.0)
        above, below = grow * 0.12 * fh, 1.5 + grow * 0.12 * fh
        lower_part = _smoothstep((y - (ym - above)) / (above + below))
        if lip_side is not None:
            lower_part = np.where(lip_side > 0, 1.0, np.where(lip_side < 0, 0.0, lower_part))
        nose_to_lip = np.maximum(ym - self.nose_y, 1.0)
        lift = UPPER_LIP_RAISE_OF_JAW * _smoothstep((y - self.nose_y) / nose_to_lip)
        drop = 1.0 - _smoothstep((y - self.chin_y) / (0.3 * fh))
        dy = self.jaw_drop * across * (drop * lower_part - lift * (1.0 - lower_part))
        return self._to_canvas_vectors(np.zeros_like(dy), dy)

    def _spread_round(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mw = self.half_mouth
        beyond = np.maximum(0.0, np.abs(x) - mw) / (0.5 * mw)
        along = (x / mw) * np.exp(-0.5 * beyond**2)
        near_lips = np.exp(-0.5 * ((y - self.mouth_line(x)) / (0.07 * self.face_height)) ** 2)
        spread_dx = SPREAD_OF_HALF_MOUTH * mw * along * near_lips
        spread_dy = -0.35 * SPREAD_OF_HALF_MOUTH * mw * along**2 * near_lips  # corners lift a bit
        round_dx = -ROUND_OF_HALF_MOUTH * mw * along * near_lips
        return (
            self._to_canvas_vectors(spread_dx, spread_dy),
            self._to_canvas_vectors(round_dx, np.zeros_like(round_dx)),
        )

    def _press(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ym = self.mouth_line(x)
        top = np.interp(x, *self.outer_upper)
        bottom = np.interp(x, *self.outer_lower)
        upper_thick = np.maximum(ym - top, 1.0)
        lower_thick = np.maximum(bottom - ym, 1.0)
        # A tent peaking on each outer lip line: the lip's outer edge moves toward the mouth line.
        upper = np.clip(1.0 - np.abs(y - top) / upper_thick, 0.0, 1.0) * (y < ym)
        lower = np.clip(1.0 - np.abs(y - bottom) / lower_thick, 0.0, 1.0) * (y >= ym)
        across = np.exp(-0.5 * (x / self.half_mouth) ** 4)
        dy = PRESS_OF_LIP_THICKNESS * across * (upper * upper_thick - lower * lower_thick)
        return self._to_canvas_vectors(np.zeros_like(dy), dy)

    def head_weight(self, points: np.ndarray) -> np.ndarray:
        """1 on the head, falling to 0 below the chin (canvas rows): the shoulders never move."""
        chin_row = self.landmarks[CHIN, 1] + 0.05 * self.face_height
        falloff = NECK_FALLOFF_OF_FACE_HEIGHT * self.face_height
        return 1.0 - _smoothstep((points[:, 1] - chin_row) / falloff)

    def _head(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        weight = self.head_weight(points)[:, None]
        rel = points - self.pivot
        roll = np.stack([-rel[:, 1], rel[:, 0]], axis=-1) * weight  # per radian, small-angle
        return roll, np.array([1.0, 0.0]) * weight, np.array([0.0, 1.0]) * weight

    # --- per-frame controls ------------------------------------------------------------------

    @staticmethod
    def coefficients(pose: FacePose) -> np.ndarray:
        """Basis weights for a pose (blinks are a layer, see ``eyelids``, not a field)."""
        return np.array(
            [
                pose.jaw_open,
                pose.lip_spread,
                pose.lip_round,
                pose.lip_press,
                math.radians(pose.head_roll_deg),
                pose.head_dx,
                pose.head_dy,
            ],
            dtype=np.float64,
        )

    @staticmethod
    def pixel_centres(box: tuple[int, int, int, int]) -> np.ndarray:
        x0, y0, x1, y1 = box
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        return np.stack([xs.ravel(), ys.ravel()], axis=-1)

    def dense_basis(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """(K, h*w, 2) float64: every basis field at the pixel centres of ``box`` (x0, y0, x1, y1)."""
        return self.fields(self.pixel_centres(box))

    def moving_region(self, reach: np.ndarray, alpha: np.ndarray, step: int = 4) -> tuple[int, int, int, int]:
        """Box of pixels that can change: some field moves them AND visible content is near.

        ``reach`` (K,) is the largest |coefficient| each field gets in the batch. Measured on a
        coarse grid (``step`` px) and grown by the largest displacement plus a safety margin.
        """
        size = self.size
        ticks = np.arange(step // 2, size, step, dtype=np.float64)
        grid_x, grid_y = np.meshgrid(ticks, ticks)
        coarse = np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1)
        magnitude = np.tensordot(reach, np.linalg.norm(self.fields(coarse), axis=-1), axes=1)
        magnitude = magnitude.reshape(len(ticks), len(ticks))
        largest = float(magnitude.max(initial=0.0))
        grow = math.ceil(largest) + step + 2
        visible = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))[
            step // 2 :: step, step // 2 :: step
        ]
        rows, cols = np.nonzero((magnitude > 0.01) & (visible > 0))
        if rows.size == 0:
            return (0, 0, 0, 0)
        x0, x1 = cols.min() * step - grow, (cols.max() + 1) * step + grow
        y0, y1 = rows.min() * step - grow, (rows.max() + 1) * step + grow
        return max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)

    def largest_shift(self, reach: np.ndarray, box: tuple[int, int, int, int]) -> float:
        """Largest displacement (px) any frame gives a point of ``box`` (sampled on its outline
        and a coarse grid; the fields are smooth)."""
        x0, y0, x1, y1 = box
        xs, ys = np.meshgrid(np.linspace(x0, x1, 9), np.linspace(y0, y1, 9))
        points = np.stack([xs.ravel(), ys.ravel()], axis=-1)
        return float(np.tensordot(reach, np.linalg.norm(self.fields(points), axis=-1), axes=1).max(initial=0.0))

    def moved(self, points: np.ndarray, coefficients: np.ndarray, lip_side: np.ndarray) -> np.ndarray:
        """Where source ``points`` (M, 2) appear in the output frame (inverting the backward field).

        ``coefficients`` (K,) gives (M, 2); (F, K) gives (F, M, 2) for F frames at once, with
        one field evaluation per step for all of them (the fields are per point, so each frame's
        result is the same as on its own, at a fraction of the numpy call overhead).
        """
        points = np.asarray(points, dtype=np.float64)
        coefficients = np.asarray(coefficients, dtype=np.float64)
        frames = coefficients.reshape(-1, coefficients.shape[-1])
        count = len(points)
        if len(frames) == 0:
            return np.zeros((*coefficients.shape[:-1], *points.shape))
        side = np.tile(lip_side, len(frames))
        target = np.tile(points, (len(frames), 1))
        for _ in range(5):  # fixed point q = p + field(q); the fields are smooth and small
            fields = self.fields(target, side)
            target = np.concatenate(
                [points + np.tensordot(c, fields[:, i * count : (i + 1) * count], axes=1) for i, c in enumerate(frames)]
            )
        return target.reshape(*coefficients.shape[:-1], *points.shape)

    def inner_lips(self, coefficients: np.ndarray) -> np.ndarray:
        """(F, M, 2) canvas positions of the inner-lip landmarks (upper then lower contour) in
        F frames of ``coefficients`` (F, K)."""
        upper_ids, lower_ids = list(INNER_LIP_UPPER), list(INNER_LIP_LOWER)
        side = np.array([-1.0] * len(upper_ids) + [1.0] * len(lower_ids))
        side[[0, len(upper_ids) - 1, len(upper_ids), len(side) - 1]] = 0.0  # corners: by position
        return self.moved(self.landmarks[upper_ids + lower_ids], coefficients, side)

    # --- layers ------------------------------------------------------------------------------

    def mouth_box(self, max_head_shift: float) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) canvas box that holds the mouth interior in every frame."""
        lips = self.landmarks[list(OUTER_LIP_UPPER + OUTER_LIP_LOWER)]
        margin = 0.25 * self.half_mouth + max_head_shift + 4
        x0 = lips[:, 0].min() - SPREAD_OF_HALF_MOUTH * self.half_mouth - margin
        x1 = lips[:, 0].max() + SPREAD_OF_HALF_MOUTH * self.half_mouth + margin
        y0 = lips[:, 1].min() - UPPER_LIP_RAISE_OF_JAW * self.jaw_drop - margin
        y1 = lips[:, 1].max() + self.jaw_drop + margin
        clamp = lambda v: int(min(max(v, 0), self.size))  # noqa: E731
        return clamp(math.floor(x0)), clamp(math.floor(y0)), clamp(math.ceil(x1)), clamp(math.ceil(y1))

    def mouth_interior(
        self, coefficients: np.ndarray, box: tuple[int, int, int, int], lips: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Premultiplied RGBA float32 (4, h, w) of the oral cavity + teeth inside the inner lips,
        or None while the mouth is closed (an empty layer, which the renderer then skips).

        The polygon is the inner-lip contour moved by this frame's fields, so the interior fills
        exactly the gap the warp opened. Upper teeth hang from the upper lip (they belong to the
        skull), a hint of lower teeth and tongue rise from the lower lip when the jaw is wide open.
        ``lips`` is this frame's ``inner_lips`` when the caller computed them for many frames at once.
        """
        x0, y0, x1, y1 = box
        height, width = y1 - y0, x1 - x0
        if coefficients[BASIS_NAMES.index("jaw")] <= 0.0:  # the jaw alone opens the mouth
            return None
        upper_ids = list(INNER_LIP_UPPER)
        points = self.landmarks[upper_ids + list(INNER_LIP_LOWER)]
        if lips is None:
            lips = self.inner_lips(coefficients[None])[0]
        moved = lips - np.array([x0, y0])
        upper, lower = moved[: len(upper_ids)], moved[len(upper_ids) :]
        gap = float(np.max(lower[:, 1] - upper[:, 1]))
        # How much wider than at rest the mouth now is: a portrait that already shows teeth
        # keeps its own until the jaw really opens (and the rest frame stays the source).
        rest_gap = float(np.max(points[len(upper_ids) :, 1] - points[: len(upper_ids), 1]))
        opened = float(np.clip((gap - rest_gap) / 2.0, 0.0, 1.0))
        if gap < 0.75 or opened <= 0.0:
            return None

        polygon = np.concatenate([upper, lower[::-1]])
        mask = np.zeros((height, width), dtype=np.uint8)
        shift = 4  # sub-pixel vertex precision
        cv2.fillPoly(mask, [np.round(polygon * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
        coverage = mask.astype(np.float32) / 255.0

        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        up_xs, up_ys = _curve(upper)
        low_xs, low_ys = _curve(lower)
        lip_top = np.interp(cols, up_xs, up_ys)
        lip_bottom = np.interp(cols, low_xs, low_ys)
        centre_x = float(0.5 * (up_xs[0] + up_xs[-1]))
        half_width = max(float(0.5 * (up_xs[-1] - up_xs[0])), 1.0)
        across = np.abs(cols - centre_x) / half_width

        # Cavity: dark red-brown, deepest in the middle, a little lighter toward the lips.
        depth = np.clip(1.0 - across, 0.0, 1.0)
        colour = np.empty((3, height, width), dtype=np.float32)
        for channel, (edge, deep) in enumerate(((0.30, 0.10), (0.10, 0.03), (0.10, 0.035))):
            colour[channel] = edge + (deep - edge) * depth

        tongue = np.clip(1.0 - across / 0.7, 0.0, 1.0) * _smoothstep(
            (rows - (lip_bottom - 0.45 * (lip_bottom - lip_top))) / np.maximum(lip_bottom - lip_top, 1.0) * 3
        )
        tongue = tongue * np.clip((gap - 0.05 * self.face_height) / (0.03 * self.face_height), 0.0, 1.0)
        for channel, value in enumerate((0.55, 0.22, 0.22)):
            colour[channel] += (value - colour[channel]) * tongue * 0.8

        teeth_depth = 0.045 * self.face_height
        upper_teeth = (rows >= lip_top - 1) & (rows <= lip_top + teeth_depth) & (across < 0.72)
        lower_depth = 0.025 * self.face_height * np.clip((gap - 0.06 * self.face_height) * 0.5, 0.0, 1.0)
        lower_teeth = (rows >= lip_bottom - lower_depth) & (across < 0.5) & (lower_depth > 0.5)
        # Teeth recede into shadow toward the sides and along the gum line.
        tooth_light = np.clip(1.0 - 0.65 * across**2, 0.3, 1.0)
        for channel, value in enumerate((0.88, 0.86, 0.80)):
            colour[channel] = np.where(upper_teeth, value * tooth_light, colour[channel])
            colour[channel] = np.where(lower_teeth, 0.85 * value * tooth_light, colour[channel])

        coverage *= opened
        layer = np.empty((4, height, width), dtype=np.float32)
        layer[:3] = colour * coverage
        layer[3] = coverage
        return layer
