"""Landmark-driven face rig: per-avatar displacement fields and the mouth interior.

Every motion the warp renderer can make is a linear combination of a few dense *basis fields*
computed once per avatar from its face-mesh landmarks (jaw drop, lip spread, lip rounding, lip
press, lips closing over teeth, the lids half and fully closed, head roll and shift). A frame is
then just a coefficient vector, and the warp of a whole batch is one matrix product plus a
GridSample in the ONNX graph. Everything that moves is the person's own pixels; the only drawn
layer is the inside of the mouth, which the photo does not show.

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
    "close",
    "blink_half",
    "blink_closed",
    "head_roll",
    "head_dx",
    "head_dy",
    "head_yaw",
    "head_pitch",
)

# Extents of the motions, as fractions of the face's own size so any portrait scale works.
JAW_DROP_OF_FACE_HEIGHT = 0.09  # lower-lip drop at jaw_open = 1 (a wide "aa")
UPPER_LIP_RAISE_OF_JAW = 0.12  # the upper lip lifts a little as the jaw drops
SPREAD_OF_HALF_MOUTH = 0.16  # each corner moves out by this at lip_spread = 1
ROUND_OF_HALF_MOUTH = 0.32  # each corner moves in by this at lip_round = 1
PRESS_OF_LIP_THICKNESS = 0.3  # lips thin by this at lip_press = 1
NECK_FALLOFF_OF_FACE_HEIGHT = 0.45  # head motion fades to zero over this much neck below the chin
# Blinks (``FaceRig._blink``), as fractions of the eye size (its open height, at least 0.3 x its
# width, so a squinting eye has ordinary lids).
LID_STRETCH_OF_EYE_SIZE = 1.0  # the upper lid skin that slides down starts this far above the margin
LID_MARGIN_OF_EYE_SIZE = 0.6  # ... of which the margin above the lashes slides rigidly
LOWER_LID_RISE_OF_OPENING = 0.3  # the lower lid rises this much of the opening when closed
LOWER_LID_BAND_OF_EYE_SIZE = 0.5  # ... compressing this much skin under it
LOWER_LID_RIM_OF_EYE_SIZE = 0.25  # the rising lid skin starts this far below the lower-lid landmarks
# Lower edge of each brow, in the order of ``FaceRig.eyes`` (right, left): lids never reach it.
BROWS_LOWER = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))
BROW_CLEARANCE_OF_EYE_SIZE = 0.15
# 3D head turns (``FaceRig._turn``): the face mesh's depth, nose tip to outline, is taken as this
# much of the face's width, on a grid of this step (px).
FACE_DEPTH_OF_WIDTH = 0.45
DEPTH_GRID_STEP = 4
NOSE_TIP = 1
FACE_OVAL = (
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
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)


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

    @property
    def size(self) -> float:
        return max(self.max_height, 0.3 * float(self.upper[0][-1] - self.upper[0][0]))


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
        self.brows = [_curve(local[list(brow)]) for brow in BROWS_LOWER]
        z = np.asarray(landmarks_xy, dtype=np.float64)
        self._depth_map(z[:, 2] if z.shape[1] > 2 else None)
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
        out[4] = self._close(x, y, lip_side)
        out[5] = self._blink(x, y, 0.5)
        out[6] = self._blink(x, y, 1.0)
        out[7], out[8], out[9] = self._head(points)
        out[10], out[11] = self._turn(points)
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

    def rest_gap(self, x: np.ndarray) -> np.ndarray:
        """Inner-lip gap at rest (px, face frame) along the mouth: teeth or cavity the photo shows."""
        return np.maximum(np.interp(x, *self.inner_lower) - np.interp(x, *self.inner_upper), 0.0)

    def _close(self, x: np.ndarray, y: np.ndarray, lip_side: np.ndarray | None) -> np.ndarray:
        """Lips meet at the mouth line however far apart the photo shows them (PP over a teeth
        smile): each lip's inner edge moves half the rest gap toward the line, the stretch
        spreading linearly over the lip and one lip thickness of skin beyond it (no fold: the
        ramp is longer than the move), so the teeth between them are covered by the lips' own
        skin, never painted over."""
        ym = self.mouth_line(x)
        half = 0.5 * self.rest_gap(x)
        top = np.interp(x, *self.outer_upper)
        bottom = np.interp(x, *self.outer_lower)
        top = top - np.maximum(ym - top, 2.0)
        bottom = bottom + np.maximum(bottom - ym, 2.0)
        upper = np.clip((y - top) / np.maximum(ym - top, 1.0), 0.0, 1.0)
        lower = np.clip((bottom - y) / np.maximum(bottom - ym, 1.0), 0.0, 1.0)
        below = y >= ym if lip_side is None else np.where(lip_side == 0, y >= ym, lip_side > 0)
        beyond = np.maximum(0.0, np.abs(x) - self.half_mouth) / (0.3 * self.half_mouth)
        dy = half * np.exp(-0.5 * beyond**2) * np.where(below, -lower, upper)
        return self._to_canvas_vectors(np.zeros_like(dy), dy)

    def _blink(self, x: np.ndarray, y: np.ndarray, level: float) -> np.ndarray:
        """The lids closing ``level`` of the way, by moving the person's own lid skin.

        Per column of each eye: the upper lid's skin from ``LID_STRETCH_OF_EYE_SIZE`` above the
        lid margin (the visible lid, lashes at its lower edge) is stretched down so the lash line
        lands at ``upper + level * (opening - rise)``; the lower lid and the skin under it rise by
        ``rise`` (compressed over the band below, so the cheek does not move); the eye between the
        two edges stays where it is, covered, not slid (its iris does not move). The edges are
        soft over a pixel and follow the lid's own curve. Fields are per level, not linear in
        the blink amount (the covered part does not scale), so a blink is the half-closed and
        the closed field in turn (``coefficients``).
        """
        dy = np.zeros_like(y)
        for eye, brow in zip(self.eyes, self.brows, strict=True):
            up = np.interp(x, *eye.upper)
            low = np.interp(x, *eye.lower)
            size = eye.size
            width = eye.upper[0][-1] - eye.upper[0][0]
            centre = 0.5 * (eye.upper[0][-1] + eye.upper[0][0])
            inside = _smoothstep((0.5 * width + 0.12 * width - np.abs(x - centre)) / (0.12 * width))
            opening = np.maximum(low - up, 0.0)
            rise = LOWER_LID_RISE_OF_OPENING * opening * level
            edge = up + level * (opening - rise)
            lower_edge = low - rise
            # The stretch never reaches the brow: it starts below its lower edge (plus a pixel and
            # a half for bilinear sampling's footprint), so the brows keep every pixel.
            clearance = np.interp(x, *brow) + BROW_CLEARANCE_OF_EYE_SIZE * size + 1.5
            top = np.maximum(up - LID_STRETCH_OF_EYE_SIZE * size, clearance)
            top = np.minimum(top, up - 1.0)
            base = low + LOWER_LID_BAND_OF_EYE_SIZE * size
            # The lower-lid landmarks lie on the wet line against the eye's white: the lid that
            # rises starts just below them, so no white comes up with it.
            rim = low + LOWER_LID_RIM_OF_EYE_SIZE * size * level
            # Output rows above the lid edge sample the lid skin between top and the margin.
            # The lid's margin (lashes, liner, the tarsal lid) slides down rigidly, keeping its
            # thickness; all the stretch is in the lighter skin above it (the skin that unfolds
            # from the crease as a real lid closes), so no dark line is widened into a band.
            margin = np.minimum(LID_MARGIN_OF_EYE_SIZE * size, 0.5 * (up - top))
            slide = edge - up
            stretched = top + (y - top) * (up - margin - top) / np.maximum(edge - margin - top, 1e-3)
            lid = y - np.where(y >= edge - margin, y - slide, stretched)
            cheek = y - (base - (base - y) * (base - rim) / np.maximum(base - lower_edge, 1e-3))
            upper_part = (y >= top) & (y < edge)
            lower_part = (y >= lower_edge) & (y < base)
            # Soft edges: a pixel-wide blend into the uncovered eye between the lids.
            t_up = np.clip((edge - y) + 0.5, 0.0, 1.0) if level < 1.0 else 1.0
            t_low = np.clip((y - lower_edge) + 0.5, 0.0, 1.0) if level < 1.0 else 1.0
            field = np.where(upper_part, lid * t_up, 0.0) + np.where(lower_part, cheek * t_low, 0.0)
            dy += field * inside * (opening > 0)
        return self._to_canvas_vectors(np.zeros_like(dy), dy)

    def _depth_map(self, landmarks_z: np.ndarray | None) -> None:
        """Dense relative depth of the face (px toward the camera; 0 on and outside the face's
        outline) on a coarse canvas grid, from the face mesh's own z (MediaPipe: smaller is
        nearer). The mesh's z scale varies between producers, so only its shape is used: 0 at
        the outline's median depth, 1 at the nose tip, times ``FACE_DEPTH_OF_WIDTH`` of the
        face's width (a face is about half as deep, nose tip to cheek outline, as it is wide)."""
        step = DEPTH_GRID_STEP
        ticks = np.arange(0, self.size + step, step, dtype=np.float64)
        gx, gy = np.meshgrid(ticks, ticks)
        self._depth = np.zeros_like(gx)
        if landmarks_z is None or np.ptp(landmarks_z) <= 0:
            return
        outline_z = float(np.median(landmarks_z[list(FACE_OVAL)]))
        nose_z = float(landmarks_z[NOSE_TIP])
        if nose_z >= outline_z:
            return
        relative = np.clip((outline_z - landmarks_z) / (outline_z - nose_z), 0.0, 1.2)
        oval = self.landmarks[list(FACE_OVAL)]
        width = float(np.ptp(oval[:, 0]))
        sigma = 0.06 * self.face_height
        grid = np.stack([gx.ravel(), gy.ravel()], axis=-1)
        near = (np.abs(grid[:, 0] - oval[:, 0].mean()) < width) & (np.abs(grid[:, 1] - oval[:, 1].mean()) < width * 1.5)
        d2 = ((grid[near, None, :] - self.landmarks[None, :, :]) ** 2).sum(-1)
        weights = np.exp(-0.5 * d2 / sigma**2) + 1e-12
        depth = np.zeros(len(grid))
        depth[near] = (weights @ relative) / weights.sum(axis=1)
        # Fades to 0 at the outline: the silhouette (and the alpha) stays, the face turns in it.
        inside = np.zeros((len(ticks), len(ticks)), np.uint8)
        cv2.fillPoly(inside, [np.round(oval / step).astype(np.int32)], 1)
        distance = cv2.distanceTransform(inside, cv2.DIST_L2, 3) * step
        fade = _smoothstep(distance / (0.15 * self.face_height))
        self._depth = depth.reshape(gx.shape) * fade * FACE_DEPTH_OF_WIDTH * width

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Relative face depth (px) at canvas ``points`` (M, 2), bilinear on the coarse grid."""
        grid = self._depth
        u = np.clip(points[:, 0] / DEPTH_GRID_STEP, 0, grid.shape[1] - 1.001)
        v = np.clip(points[:, 1] / DEPTH_GRID_STEP, 0, grid.shape[0] - 1.001)
        i, j = v.astype(int), u.astype(int)
        fv, fu = v - i, u - j
        top = grid[i, j] * (1 - fu) + grid[i, j + 1] * fu
        bottom = grid[i + 1, j] * (1 - fu) + grid[i + 1, j + 1] * fu
        return top * (1 - fv) + bottom * fv

    def _turn(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Small 3D yaw and pitch (per radian): a point of the face moves by its depth times the
        angle (the nose most, the outline not at all), along the eye line for yaw and down the
        face for pitch, so the face turns and nods inside its own silhouette."""
        depth = self.depth(points)[:, None]
        return depth * self.u, depth * self.v

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
        """Basis weights for a pose."""
        return np.array(
            [
                pose.jaw_open,
                pose.lip_spread,
                pose.lip_round,
                pose.lip_press,
                pose.lip_close,
                *FaceRig.blink_weights(pose.blink),
                math.radians(pose.head_roll_deg),
                pose.head_dx,
                pose.head_dy,
                math.radians(pose.head_yaw_deg),
                math.radians(pose.head_pitch_deg),
            ],
            dtype=np.float64,
        )

    @staticmethod
    def blink_weights(blink: float) -> tuple[float, float]:
        """(half-closed, closed) field weights: 0.5 is the half field alone, 1 the closed one."""
        b = min(max(blink, 0.0), 1.0)
        return (2.0 * b, 0.0) if b <= 0.5 else (2.0 * (1.0 - b), 2.0 * b - 1.0)

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

    def opening_edges(self, coefficients: np.ndarray) -> np.ndarray:
        """(F, 2M, 2) canvas positions of the mouth opening's edges in F frames of
        ``coefficients`` (F, K): the mouth line at the inner-lip landmarks' x, taken on its upper
        side then on its lower side and moved by each frame's fields. The jaw parts the face AT
        the mouth line, so this is exactly the gap the warp opens: on a closed mouth it is the
        inner lips, on a teeth smile it is the new gap between the person's own upper and lower
        teeth (which move with the upper lip and the jaw and stay visible)."""
        xs = np.linspace(self.inner_upper[0][0], self.inner_upper[0][-1], len(INNER_LIP_UPPER))
        line = self.origin + xs[:, None] * self.u + self.mouth_line(xs)[:, None] * self.v
        side = np.array([-1.0] * len(xs) + [1.0] * len(xs))
        side[[0, len(xs) - 1, len(xs), len(side) - 1]] = 0.0  # corners: by position
        return self.moved(np.concatenate([line, line]), coefficients, side)

    # --- layers ------------------------------------------------------------------------------

    def mouth_box(self, max_head_shift: float) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) canvas box that holds the mouth interior in every frame."""
        lips = self.landmarks[list(OUTER_LIP_UPPER + OUTER_LIP_LOWER)]
        margin = 0.25 * self.half_mouth + max_head_shift + 4
        x0 = lips[:, 0].min() - SPREAD_OF_HALF_MOUTH * self.half_mouth - margin
        x1 = lips[:, 0].max() + SPREAD_OF_HALF_MOUTH * self.half_mouth + margin
        y0 = lips[:, 1].min() - UPPER_LIP_RAISE_OF_JAW * self.jaw_drop - margin
        y1 = lips[:, 1].max() + self.jaw_drop + margin

        def clamp(v: float) -> int:
            return int(min(max(v, 0), self.size))

        return clamp(math.floor(x0)), clamp(math.floor(y0)), clamp(math.ceil(x1)), clamp(math.ceil(y1))

    def mouth_style(self, source_rgba: np.ndarray) -> MouthStyle:
        """How this picture's teeth and mouth look: measured once per avatar from the source.

        Own teeth: the photo shows them when the rest gap between the inner lips is wide and
        bright (the person's teeth then stay and move with lips and jaw; nothing is drawn over
        them). The synthesised teeth take their colour from the own teeth when shown, else from
        the picture's highlights (its illuminant's cast), and the picture's fine-grain noise.
        """
        rgb = source_rgba[..., :3].astype(np.float32) / 255.0
        lips = self.landmarks[list(INNER_LIP_UPPER) + list(INNER_LIP_LOWER)[::-1]]
        gap_mask = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillPoly(gap_mask, [np.round(lips).astype(np.int32)], 1)
        gap_mask = cv2.erode(gap_mask, np.ones((3, 3), np.uint8)) > 0
        face = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillConvexPoly(face, cv2.convexHull(self.landmarks.astype(np.float32)).astype(np.int32), 1)
        face = (face > 0) & (source_rgba[..., 3] > 200) & ~gap_mask
        luminance = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        skin = float(np.median(luminance[face])) if face.any() else 0.5
        gap = float(self.rest_gap(np.linspace(-self.half_mouth, self.half_mouth, 33)).max())
        own_teeth = bool(gap > 0.03 * self.face_height and gap_mask.sum() > 20)
        if own_teeth:
            bright = gap_mask & (luminance > max(skin, float(np.percentile(luminance[gap_mask], 60))))
            own_teeth = bool(bright.sum() >= 10)
        if own_teeth:
            teeth = np.median(rgb[bright], axis=0)
        else:
            highlights = face & (luminance >= np.percentile(luminance[face], 95)) if face.any() else face
            # The face's highlights carry the picture's light (and a painting's varnish): the
            # teeth are an ivory pulled halfway to that colour, no brighter than the picture's
            # own highlights (a dark, low-key or yellowed picture gets matching teeth).
            cast = rgb[highlights].mean(axis=0) if highlights.any() else np.full(3, 0.85, np.float32)
            brightest = float(cast.max())
            tint = cast / max(brightest, 1e-3)
            ivory = np.array([0.95, 0.93, 0.87], np.float32)
            teeth = (0.5 * ivory + 0.5 * ivory * tint) * min(0.95, brightest * 1.02)
        grey = luminance * 255.0
        detail = grey - cv2.GaussianBlur(grey, (0, 0), 1.5)
        noise = float(np.median(np.abs(detail[face])) * 1.4826 / 255.0) if face.any() else 0.0
        return MouthStyle(own_teeth, (float(teeth[0]), float(teeth[1]), float(teeth[2])), min(noise, 0.03))

    def mouth_interior(
        self,
        coefficients: np.ndarray,
        box: tuple[int, int, int, int],
        style: MouthStyle,
        edges: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Premultiplied RGBA float32 (4, h, w) of what shows in the gap the jaw opens, or None
        while the mouth is closed (an empty layer, which the renderer then skips).

        The gap is bounded by ``opening_edges`` (this frame's, when the caller computed them for
        many frames at once). Inside: a cavity shaded by depth (darkest furthest from the lips,
        the upper part in the upper teeth's shadow), a shaded tongue rising from the lower edge
        when the jaw is well open, and, unless the photo shows the person's own teeth, a soft
        teeth model: upper teeth hanging from the upper lip (they belong to the skull) with a gum
        shadow, rounded sides and faint gaps between teeth, lower teeth on a wide opening; in the
        picture's colour cast and grain, anti-aliased.
        """
        x0, y0, x1, y1 = box
        height, width = y1 - y0, x1 - x0
        if coefficients[BASIS_NAMES.index("jaw")] <= 0.0:  # the jaw alone opens the mouth
            return None
        if edges is None:
            edges = self.opening_edges(coefficients[None])[0]
        moved = edges - np.array([x0, y0])
        count = len(moved) // 2
        upper, lower = moved[:count], moved[count:]
        gap = float(np.max(lower[:, 1] - upper[:, 1]))
        if gap < 0.5:
            return None

        polygon = np.concatenate([upper, lower[::-1]])
        mask = np.zeros((height, width), dtype=np.uint8)
        shift = 4  # sub-pixel vertex precision
        cv2.fillPoly(mask, [np.round(polygon * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
        coverage = mask.astype(np.float32) / 255.0

        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        up_xs, up_ys = _curve(upper)
        low_xs, low_ys = _curve(lower)
        top = np.interp(cols, up_xs, up_ys)
        bottom = np.interp(cols, low_xs, low_ys)
        opening = np.maximum(bottom - top, 1e-3)
        centre_x = float(0.5 * (up_xs[0] + up_xs[-1]))
        half_width = max(float(0.5 * (up_xs[-1] - up_xs[0])), 1.0)
        across = np.abs(cols - centre_x) / half_width
        fh = self.face_height

        # Cavity: lit a little near the lips, darkening toward the back of the mouth (the
        # middle, and the further from both lips), the upper half in shadow.
        inside = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 3).astype(np.float32)
        depth = 1.0 - np.exp(-inside / max(0.12 * fh * min(gap / (0.09 * fh), 1.0), 1.0))
        depth = np.clip(depth * (1.15 - 0.5 * across**2), 0.0, 1.0)
        vertical = np.clip((rows - top) / opening, 0.0, 1.0)
        colour = np.empty((3, height, width), dtype=np.float32)
        for channel, (edge, deep) in enumerate(((0.24, 0.03), (0.085, 0.01), (0.085, 0.012))):
            colour[channel] = (edge + (deep - edge) * depth) * (0.8 + 0.2 * vertical)

        # Tongue: a rounded mound from the lower edge, lit on top, once the jaw is well open.
        show_tongue = float(np.clip((gap - 0.04 * fh) / (0.03 * fh), 0.0, 1.0))
        if show_tongue > 0:
            crown = bottom - 0.3 * opening * np.sqrt(np.clip(1.0 - (across / 0.65) ** 2, 0.0, 1.0))
            tongue = _smoothstep((rows - crown) / 2.0 + 0.5) * _smoothstep((0.65 - across) / 0.2)
            lit = np.exp(-0.5 * ((rows - crown - 0.25 * opening * 0.3) / np.maximum(0.12 * opening, 1.0)) ** 2)
            for channel, (base, light) in enumerate(((0.36, 0.58), (0.12, 0.27), (0.13, 0.28))):
                shade = (base + (light - base) * lit) * (1.0 - 0.5 * across**2)
                colour[channel] += (shade - colour[channel]) * tongue * show_tongue

        # Own teeth the photo shows move with the lips; the model continues them to a full
        # tooth length from the mouth line (nothing where the photo's teeth are already long).
        shown = np.zeros(width)
        if style.own_teeth:
            canvas_row = np.stack([cols[0] + x0, np.full(width, self.origin[1])], axis=-1)
            shown = 0.5 * self.rest_gap(self.to_local(canvas_row)[:, 0])
        self._teeth(colour, rows, cols, top, bottom, across, centre_x, half_width, gap, style, shown[None, :])

        # The lips' shadow on the opening's edges (a soft inner rim, no hard cut line).
        rim = np.exp(-inside / 1.2)
        colour *= 1.0 - 0.35 * rim
        if style.noise > 0:
            grain = np.random.default_rng(0).standard_normal((height, width)).astype(np.float32) * style.noise
            colour += grain * (colour > 0.15)
        colour = np.clip(colour, 0.0, 1.0)
        coverage *= float(np.clip(gap / 1.5, 0.0, 1.0))
        layer = np.empty((4, height, width), dtype=np.float32)
        layer[:3] = colour * coverage
        layer[3] = coverage
        return layer

    def _teeth(
        self,
        colour: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        top: np.ndarray,
        bottom: np.ndarray,
        across: np.ndarray,
        centre_x: float,
        half_width: float,
        gap: float,
        style: MouthStyle,
        shown: np.ndarray,
    ) -> None:
        """Soft upper (and on a wide opening lower) teeth drawn into ``colour`` in place."""
        fh = self.face_height
        length = np.maximum(0.042 * fh - shown, 0.0)
        # Tooth edges: a rounded lower edge, shorter toward the sides (the arch turns away).
        edge = top + length * np.sqrt(np.clip(1.0 - (across / 0.8) ** 2, 0.0, 1.0))
        upper = _smoothstep((edge - rows) / 1.2 + 0.5) * _smoothstep((0.8 - across) / 0.12)
        lower_reach = 0.022 * fh * float(np.clip((gap - 0.06 * fh) / (0.02 * fh), 0.0, 1.0))
        lower_length = np.maximum(lower_reach - shown, 0.0)
        lower_edge = bottom - lower_length * np.sqrt(np.clip(1.0 - (across / 0.6) ** 2, 0.0, 1.0))
        lower = _smoothstep((rows - lower_edge) / 1.2 + 0.5) * _smoothstep((0.6 - across) / 0.12)
        lower = lower * (lower_length > 0.5)
        upper = upper * (length > 0.5)
        # Faint gaps between teeth: incisors widest in the middle, narrower to the sides.
        tooth = 0.22 * half_width
        position = np.abs(cols - centre_x) / tooth
        separation = 1.0 - 0.1 * np.exp(-0.5 * (((position + 0.5) % 1.0 - 0.5) / 0.08) ** 2)
        # Light: the arch turns into shadow at the sides, the gums' shadow at the top.
        light = np.clip(1.0 - 0.7 * across**2, 0.25, 1.0) * separation
        gum = 0.7 + 0.3 * _smoothstep((rows - top) / np.maximum(0.35 * length, 1.0))
        for channel, value in enumerate(style.teeth_rgb):
            colour[channel] += (value * light * gum - colour[channel]) * upper
            colour[channel] += (0.8 * value * light - colour[channel]) * lower


@dataclass(frozen=True)
class MouthStyle:
    """How one picture's mouth looks (``FaceRig.mouth_style``)."""

    own_teeth: bool  # the photo shows teeth: they stay and move with lips and jaw
    teeth_rgb: tuple[float, float, float]  # straight 0..1
    noise: float  # the picture's grain (robust sigma of its fine detail), 0..1
