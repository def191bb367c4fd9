"""The cut-out: coarse mask -> trimap -> soft alpha -> decontaminated colours -> framed canvas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from avatarflow_contracts.events import FaceGeometry, MattingQuality
from avatarflow_contracts.reasons import WarningCode

from . import quality
from .alpha import refine, to_float_image
from .foreground import estimate_foreground
from .framing import CANVAS_SIZE, Framing, framing_from_face, framing_from_mask, map_face
from .illustration import face_hull_mask, grabcut_mask
from .segmentation import MODEL_INPUT_SIZE, Matter

Method = Literal["person_model", "illustration_grabcut"]

# Trimap band around the coarse mask's 0.5 outline, in pixels of the mask's own resolution
# (a 256 px model upsampled to the working image): inside, the mask's edge is off by up to ~2 model
# pixels; outside, hair and fur strands reach further than the model resolves, hence 3.
_BAND_INSIDE_MODEL_PX = 2.0
_BAND_OUTSIDE_MODEL_PX = 3.0
_BAND_MIN_PX = 3
# Below this person-model confidence a drawing goes to GrabCut; a face the person model barely
# covers at all (support under ``_FACE_MISSED``) goes to GrabCut whatever the hint says, since
# the model has then plainly not seen the subject.
_WEAK_PERSON_MODEL = 0.5
_FACE_MISSED = 0.3
# Context kept around the framed region so the filters see real pixels at the canvas edges.
_CONTEXT_PX = 32
PREVIEW_WHITE = (255, 255, 255)
PREVIEW_DARK = (30, 30, 38)


@dataclass(frozen=True)
class Matte:
    """A matte in the pixels of the image it was computed on."""

    alpha: np.ndarray  # float32 HxW in [0,1]
    foreground: np.ndarray  # float32 HxWx3 in [0,1], decontaminated
    method: Method
    segmentation_confidence: float
    colour_separability: float
    residual_background: float

    @property
    def confidence(self) -> float:
        return min(self.segmentation_confidence, self.colour_separability)


@dataclass(frozen=True)
class CutOut:
    rgba: np.ndarray  # CANVAS_SIZE x CANVAS_SIZE x 4 uint8, straight alpha, decontaminated
    preview_on_white: np.ndarray  # CANVAS_SIZE x CANVAS_SIZE x 3 uint8
    preview_on_dark: np.ndarray
    # The input geometry in canvas pixels; None only when cut_out was given no face.
    face: FaceGeometry | None
    method: Method
    quality: MattingQuality
    warnings: list[WarningCode]


def trimap_from_mask(mask: np.ndarray, model_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Known-foreground and known-background masks around the coarse mask's outline."""
    solid = (mask > 0.5).astype(np.uint8)
    inside = max(_BAND_MIN_PX, round(_BAND_INSIDE_MODEL_PX * model_px))
    outside = max(_BAND_MIN_PX, round(_BAND_OUTSIDE_MODEL_PX * model_px))
    known_fg = cv2.erode(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inside + 1,) * 2)) > 0
    grown = cv2.dilate(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outside + 1,) * 2))
    return known_fg, grown == 0


def _matte_region(
    image_u8: np.ndarray,
    person: np.ndarray,
    landmarks_xy: np.ndarray | None,
    illustration_hint: bool,
) -> Matte:
    """Matte one image region given its coarse person mask and (optional) face landmarks."""
    height, width = person.shape
    model_px = max(height, width) / MODEL_INPUT_SIZE
    hull = face_hull_mask(person.shape, landmarks_xy) if landmarks_xy is not None else None
    face_support = quality.face_support(person, hull)
    person_confidence = min(
        quality.face_support_confidence(face_support), quality.segmentation_decisiveness(person, model_px)
    )

    method: Method = "person_model"
    mask = person
    segmentation_confidence = person_confidence
    weak = person_confidence < _WEAK_PERSON_MODEL
    if weak and (illustration_hint or face_support < _FACE_MISSED):
        method = "illustration_grabcut"
        mask = grabcut_mask(image_u8, landmarks_xy, person)
        model_px = max(height, width) / min(max(height, width), 512)
        # GrabCut has no probability to judge itself by: trust it as far as it keeps the face.
        segmentation_confidence = (
            quality.face_support_confidence(quality.face_support(mask, hull)) if hull is not None else 0.5
        )

    image = to_float_image(image_u8)
    known_fg, known_bg = trimap_from_mask(mask, model_px)
    solved = refine(image, known_fg, known_bg)
    foreground = estimate_foreground(image, solved.alpha)
    return Matte(
        alpha=solved.alpha,
        foreground=foreground,
        method=method,
        segmentation_confidence=segmentation_confidence,
        colour_separability=quality.colour_separability(solved.unknown, solved.fg_colour, solved.bg_colour),
        residual_background=quality.residual_background(
            solved.alpha, foreground, solved.unknown, solved.fg_colour, solved.bg_colour
        ),
    )


def _landmarks_xy(face: FaceGeometry, width: int, height: int) -> np.ndarray:
    points = np.asarray(face.landmarks, np.float64)[:, :2]
    return points * [width / face.image_width, height / face.image_height]


def _as_rgb_u8(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.ndim != 3 or image_rgb.shape[2] < 3:
        raise ValueError("expected an HxWx3 RGB image")
    image = image_rgb[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def matte(
    image_rgb: np.ndarray,
    face: FaceGeometry | None = None,
    *,
    illustration_hint: bool = False,
    matter: Matter | None = None,
) -> Matte:
    """Matte the whole image at its own resolution (no framing): what the evaluation compares."""
    image = _as_rgb_u8(image_rgb)
    height, width = image.shape[:2]
    own = matter is None
    matter = matter or Matter()
    try:
        person = matter.person_mask(image)
    finally:
        if own:
            matter.close()
    landmarks = _landmarks_xy(face, width, height) if face is not None else None
    return _matte_region(image, person, landmarks, illustration_hint)


def _composite(rgba: np.ndarray, colours: list[tuple[int, int, int]]) -> list[np.ndarray]:
    """``rgba`` over each solid colour, rounded to 8 bits in exact integer arithmetic.

    Opaque pixels are copied and transparent ones filled; only the (few) soft edge pixels are
    blended, so the cost is two copies per preview rather than per-pixel arithmetic.
    """
    alpha = rgba[..., 3]
    opaque = (alpha == 255).view(np.uint8)
    soft = np.nonzero((alpha > 0) & (alpha < 255))
    soft_alpha = alpha[soft].astype(np.uint16)[:, None]
    soft_fg = rgba[..., :3][soft] * soft_alpha
    previews = []
    for colour in colours:
        out = np.empty((*alpha.shape, 3), np.uint8)
        out[:] = colour
        cv2.copyTo(rgba[..., :3], opaque, out)
        mixed = soft_fg + np.array(colour, np.uint16) * (255 - soft_alpha) + 128  # <= 255 * 255 + 128
        out[soft] = (mixed + (mixed >> 8)) >> 8  # round(mixed / 255), exact in this range
        previews.append(out)
    return previews


def _working_region(framing: Framing, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) of the working image that lands on the canvas, plus context."""
    x0 = int(np.floor(-framing.shift_x / framing.scale)) - _CONTEXT_PX
    y0 = int(np.floor(-framing.shift_y / framing.scale)) - _CONTEXT_PX
    x1 = int(np.ceil((CANVAS_SIZE - framing.shift_x) / framing.scale)) + _CONTEXT_PX
    y1 = int(np.ceil((CANVAS_SIZE - framing.shift_y) / framing.scale)) + _CONTEXT_PX
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def cut_out(
    image_rgb: np.ndarray,
    face: FaceGeometry | None,
    *,
    illustration_hint: bool = False,
    matter: Matter | None = None,
) -> CutOut:
    """Cut the subject out and frame it on the avatar canvas (see framing.py for the rules).

    The matte is computed at the smaller of the image's and the canvas's scale: a large photo is
    first reduced (area filter) to canvas scale, so the work is bounded by the canvas size; a small
    one is matted at its own size and the result enlarged.
    """
    image = _as_rgb_u8(image_rgb)
    height, width = image.shape[:2]
    own = matter is None
    matter = matter or Matter()
    try:
        person = matter.person_mask(image)
    finally:
        if own:
            matter.close()
    framing = framing_from_face(face, width, height) if face is not None else framing_from_mask(person)

    # Reduce to canvas scale first when the frame shrinks the image.
    work_scale = min(1.0, framing.scale)
    work_image, work_person = image, person
    if work_scale < 1.0:
        size = (max(1, round(width * work_scale)), max(1, round(height * work_scale)))
        work_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        work_person = cv2.resize(person, size, interpolation=cv2.INTER_AREA)
    wh, ww = work_image.shape[:2]
    fx = ww / width  # the exact factor after rounding (the other axis differs by < 1 px)
    to_canvas = Framing(framing.scale / fx, framing.shift_x, framing.shift_y)
    x0, y0, x1, y1 = _working_region(to_canvas, ww, wh)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the framed region does not overlap the image")

    landmarks = None
    if face is not None:
        landmarks = _landmarks_xy(face, ww, wh) - [x0, y0]
    region = _matte_region(work_image[y0:y1, x0:x1], work_person[y0:y1, x0:x1], landmarks, illustration_hint)

    # Region pixel -> canvas pixel. When the region is already at canvas scale the warp is a pure
    # shift: round it so no resampling softens the matte.
    scale = to_canvas.scale
    shift_x = to_canvas.shift_x + scale * x0
    shift_y = to_canvas.shift_y + scale * y0
    if abs(scale - 1.0) < 1e-3:
        scale, shift_x, shift_y = 1.0, float(round(shift_x)), float(round(shift_y))
    matrix = np.float32([[scale, 0.0, shift_x], [0.0, scale, shift_y]])
    canvas = (CANVAS_SIZE, CANVAS_SIZE)
    alpha = cv2.warpAffine(
        region.alpha, matrix, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    colours = cv2.warpAffine(region.foreground, matrix, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Rounded and saturated to 8 bits in one pass each (values are in [0,1]).
    rgba = cv2.merge([*cv2.split(cv2.convertScaleAbs(colours, alpha=255.0)), cv2.convertScaleAbs(alpha, alpha=255.0)])

    alpha_u8 = rgba[..., 3].astype(np.float32) / 255.0
    confidence = float(np.clip(region.confidence, 0.0, 1.0))
    matting_quality = MattingQuality(
        alpha_coverage=float((alpha_u8 > 0.5).mean()),
        edge_band_px=quality.mean_edge_band_px(alpha_u8),
        residual_background=region.residual_background,
        confidence=confidence,
    )
    warnings = [WarningCode.LOW_MATTE_CONFIDENCE] if confidence < quality.LOW_CONFIDENCE else []
    canvas_face = None
    if face is not None:
        canvas_face = map_face(face, Framing(framing.scale, framing.shift_x, framing.shift_y), width, height)
    on_white, on_dark = _composite(rgba, [PREVIEW_WHITE, PREVIEW_DARK])
    return CutOut(
        rgba=rgba,
        preview_on_white=on_white,
        preview_on_dark=on_dark,
        face=canvas_face,
        method=region.method,
        quality=matting_quality,
        warnings=warnings,
    )
