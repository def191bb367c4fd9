"""The cut-out: coarse mask -> trimap -> soft alpha -> decontaminated colours -> framed canvas."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from avatarflow_contracts.events import FaceGeometry, MattingQuality
from avatarflow_contracts.reasons import WarningCode

from . import figure, kernels, quality
from .alpha import Band, image_on_grid, refine_on_grid, to_float_image, to_uint8_image
from .foreground import foreground_at
from .framing import CANVAS_SIZE, Framing, framing_from_face, framing_from_mask, map_face
from .grid import Grid
from .illustration import face_hull_mask, grabcut_mask
from .segmentation import MODEL_INPUT_SIZE, PersonSegmenter

Method = Literal["person_model", "illustration_grabcut"]

# Trimap band around the coarse mask's 0.5 outline, in pixels of the mask's own resolution
# (a 256 px model upsampled to the working image): inside, the mask's edge is off by up to ~2 model
# pixels; outside, hair and fur strands reach further than the model resolves, hence 3.
_BAND_INSIDE_MODEL_PX = 2.0
_BAND_OUTSIDE_MODEL_PX = 3.0
_BAND_MIN_PX = 3
# A person-model probability is "sure" outside [0.05, 0.95]; in between, within 6 model px of the
# 0.5 outline, the band solve decides from the image (against local subject and background
# colours). Chosen among 0.9/0.95 and 0.1/0.05 on the 18 end-to-end portraits of shared/matting:
# P3M halo 21.99 -> 21.13, bleed 10.93 -> 9.94 (docs/matting.md).
_SURE_SUBJECT = 0.95
_SURE_BACKGROUND = 0.05
_UNCERTAIN_REACH_MODEL_PX = 6.0
# Alpha of a painted or drawn edge (illustration hint) is stretched from this range to [0, 1].
_PAINTED_ALPHA_RANGE = (0.25, 0.75)
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
class _MatteFigures:
    """What a matte says about itself, whichever form it is kept in."""

    method: Method
    segmentation_confidence: float
    colour_separability: float
    residual_background: float

    @property
    def confidence(self) -> float:
        return min(self.segmentation_confidence, self.colour_separability)


@dataclass(frozen=True)
class Matte(_MatteFigures):
    """A matte in the pixels of the image it was computed on."""

    alpha: np.ndarray  # float32 HxW in [0,1]
    foreground: np.ndarray  # float32 HxWx3 in [0,1], decontaminated


@dataclass(frozen=True)
class _RegionMatte(_MatteFigures):
    """A matte kept sparse: the known masks, and the solved alpha and colours at the band only."""

    known_fg: np.ndarray  # bool HxW: alpha 1, original colour
    band: Band  # the unknown pixels and their alpha
    # Pixels given a solved colour: the band, then the known-background pixels touching it (a
    # resampled cut-out mixes those in at its edge).
    colour_ys: np.ndarray
    colour_xs: np.ndarray
    colours: np.ndarray  # float32 (M, 3), decontaminated
    alpha: np.ndarray  # float32 HxW


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


def trimap_from_mask(
    mask: np.ndarray, model_px: float, min_px: float = _BAND_MIN_PX, *, uncertain: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Known-foreground and known-background masks around the coarse mask's outline.

    ``model_px``: one segmentation-model pixel in pixels of ``mask``; ``min_px``: the narrowest
    band side, also in pixels of ``mask`` (a grid mask passes it in cells). ``uncertain``: the
    mask is a probability; near the outline, values between ``_SURE_BACKGROUND`` and
    ``_SURE_SUBJECT`` join the band.
    """
    solid = (mask > 0.5).astype(np.uint8)
    inside = max(1, round(max(min_px, _BAND_INSIDE_MODEL_PX * model_px)))
    outside = max(1, round(max(min_px, _BAND_OUTSIDE_MODEL_PX * model_px)))
    known_fg = cv2.erode(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inside + 1,) * 2)) > 0
    grown = cv2.dilate(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outside + 1,) * 2))
    known_bg = grown == 0
    if uncertain:
        # Where the model is unsure (hair on a busy background, a patch of backdrop it half
        # takes for the person), the band reaches as far as the uncertainty does, up to
        # _UNCERTAIN_REACH_MODEL_PX from the outline, and the image decides there.
        reach = max(1, round(max(min_px, _UNCERTAIN_REACH_MODEL_PX * model_px)))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
        deep_fg = cv2.erode(solid, disc) > 0
        far_bg = cv2.dilate(solid, disc) == 0
        known_fg &= (mask >= _SURE_SUBJECT) | deep_fg
        known_bg &= (mask <= _SURE_BACKGROUND) | far_bg
    return known_fg, known_bg


def _matte_region(
    image_u8: np.ndarray,
    person_cells: np.ndarray,
    landmarks_xy: np.ndarray | None,
    illustration_hint: bool,
    seeds_xy: np.ndarray,
    cleanup: bool = True,
) -> _RegionMatte:
    """Matte one image region given its coarse person mask and (optional) face landmarks.

    The trimap and the segmentation's confidence are worked out on the coarse grid: the person
    mask comes from a 256 px model, so the grid (a 4 px cell) loses nothing of it. ``seeds_xy``:
    (x, y) region pixels of the subject (figure.py keeps what connects to them); ``cleanup``
    False skips this issue's edge steps (figure.py, the uncertain band, the painted-edge stretch):
    the pipeline as it was before them, for before/after figures.
    """
    height, width = image_u8.shape[:2]
    grid = Grid(height, width)
    grid_w, grid_h = grid.size
    if person_cells.shape != (grid_h, grid_w):
        raise ValueError("the person mask must be given on the region's grid")
    to_cells = np.array([grid_w / width, grid_h / height])
    model_cells = max(grid_h, grid_w) / MODEL_INPUT_SIZE  # one model pixel, in cells
    hull = face_hull_mask(person_cells.shape, landmarks_xy * to_cells) if landmarks_xy is not None else None
    face_support = quality.face_support(person_cells, hull)
    person_confidence = min(
        quality.face_support_confidence(face_support), quality.segmentation_decisiveness(person_cells, model_cells)
    )

    method: Method = "person_model"
    mask_cells = person_cells
    segmentation_confidence = person_confidence
    weak = person_confidence < _WEAK_PERSON_MODEL
    if weak and (illustration_hint or face_support < _FACE_MISSED):
        method = "illustration_grabcut"
        mask_cells = grid.down(grabcut_mask(image_u8, landmarks_xy, person_cells))
        # GrabCut works at <= 512 px: one of its pixels, in cells.
        model_cells = max(grid_h, grid_w) / min(max(height, width), 512)
        # GrabCut has no probability to judge itself by: trust it as far as it keeps the face.
        segmentation_confidence = (
            quality.face_support_confidence(quality.face_support(mask_cells, hull)) if hull is not None else 0.5
        )

    image_cells = image_on_grid(grid, image_u8)
    if cleanup:
        seeds_cells = np.minimum(np.floor(seeds_xy * to_cells).astype(np.int64), [grid_w - 1, grid_h - 1])
        mask_cells = figure.connected_mask(mask_cells, image_cells, seeds_cells)
    fg_cells, bg_cells = trimap_from_mask(
        mask_cells, model_cells, _BAND_MIN_PX / grid.scale, uncertain=cleanup and method == "person_model"
    )
    solved = refine_on_grid(image_u8, fg_cells, bg_cells, image_cells)
    band = solved.band
    if cleanup and illustration_hint:
        _clean_painted_edge(solved.alpha, band)
    if cleanup:
        figure.drop_band_islands(solved.alpha, solved.known_fg, band)
    colour_ys = np.concatenate([band.ys, solved.ring_ys])
    colour_xs = np.concatenate([band.xs, solved.ring_xs])
    colours = foreground_at(image_u8, solved.alpha, colour_ys, colour_xs, solved.image_cells, band.colour)
    return _RegionMatte(
        known_fg=solved.known_fg,
        band=band,
        colour_ys=colour_ys,
        colour_xs=colour_xs,
        colours=colours,
        alpha=solved.alpha,
        method=method,
        segmentation_confidence=segmentation_confidence,
        colour_separability=quality.colour_separability(band.fg_colour, band.bg_colour),
        residual_background=quality.residual_background(
            band.alpha, colours[: len(band)], band.fg_colour, band.bg_colour
        ),
    )


def _clean_painted_edge(alpha: np.ndarray, band: Band) -> None:
    """A drawn or painted figure has a hard outline (brush strokes, flat fills), not strands the
    background shows through: partial alpha there is the solve mixing in texture of a painted
    background, seen as faint streaks. Alpha is stretched from ``_PAINTED_ALPHA_RANGE`` to [0, 1]
    (in place, band and full matte), so those streaks go and the outline stays anti-aliased."""
    low, high = _PAINTED_ALPHA_RANGE
    stretched = np.clip((band.alpha - np.float32(low)) * np.float32(1.0 / (high - low)), 0.0, 1.0)
    band.alpha[:] = stretched
    alpha[band.ys, band.xs] = stretched


def _landmarks_xy(face: FaceGeometry, width: int, height: int) -> np.ndarray:
    points = np.asarray(face.landmarks, np.float64)[:, :2]
    return points * [width / face.image_width, height / face.image_height]


def _as_rgb_u8(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.ndim != 3 or image_rgb.shape[2] < 3:
        raise ValueError("expected an HxWx3 RGB image")
    return to_uint8_image(image_rgb)


def matte(
    image_rgb: np.ndarray,
    face: FaceGeometry | None = None,
    *,
    illustration_hint: bool = False,
    matter: PersonSegmenter,
    cleanup: bool = True,
) -> Matte:
    """Matte the whole image at its own resolution (no framing): what the evaluation compares.
    ``cleanup=False``: without the figure and edge steps (see ``_matte_region``), for comparisons."""
    image = _as_rgb_u8(image_rgb)
    height, width = image.shape[:2]
    person = matter.person_mask(image)
    landmarks = _landmarks_xy(face, width, height) if face is not None else None
    seeds = figure.seed_points(landmarks, (height, width))
    region = _matte_region(
        image, Grid(height, width).down(person), landmarks, illustration_hint, seeds, cleanup=cleanup
    )
    foreground = to_float_image(image) * region.known_fg[..., None]
    foreground[region.colour_ys, region.colour_xs] = region.colours
    return Matte(
        alpha=region.alpha,
        foreground=foreground,
        method=region.method,
        segmentation_confidence=region.segmentation_confidence,
        colour_separability=region.colour_separability,
        residual_background=region.residual_background,
    )


def _straight_rgba(image_u8: np.ndarray, region: _RegionMatte) -> np.ndarray:
    """8-bit straight RGBA of the region: original colour where known subject, solved alpha and
    colours on the band and its ring, black where transparent and out of reach of resampling."""
    rgba = cv2.cvtColor(image_u8, cv2.COLOR_RGB2RGBA)  # alpha 255
    rgba = cv2.bitwise_and(rgba, rgba, mask=region.known_fg.view(np.uint8))
    kernels.paint_edge(rgba, region.colour_ys, region.colour_xs, region.band.alpha, region.colours)
    return rgba


@dataclass(frozen=True)
class _Canvas:
    rgba: np.ndarray
    on_white: np.ndarray
    on_dark: np.ndarray
    covered_pixels: int  # alpha >= 128
    soft_pixels: int  # 0 < alpha < 255
    outline_pixels: int  # alpha >= 128 with a 4-neighbour below


@functools.cache
def _solid_canvas(colour: tuple[int, int, int]) -> np.ndarray:
    """A read-only canvas of one colour, made once: copying it is several times cheaper than
    filling a fresh array with a 3-channel colour."""
    solid = cv2.merge([np.full((CANVAS_SIZE, CANVAS_SIZE), channel, np.uint8) for channel in colour])
    solid.flags.writeable = False
    return solid


def _finish_canvas(image_u8: np.ndarray, region: _RegionMatte, scale: float, shift_x: float, shift_y: float) -> _Canvas:
    """The region's cut-out (``image_u8`` with ``region``'s matte) mapped onto the canvas (region
    pixel p -> scale*p + shift), its previews and the counts behind the quality figures.

    A pure integer shift is placed as it is (no resampling to soften the matte), straight from the
    image: the known subject is one masked copy into the canvas and each preview, the edge is
    painted and blended per pixel on the band only (``paint_placed_edge``, ``finish_band``); the
    region's own RGBA is never built. Otherwise the region's RGBA (``_straight_rgba``) is warped
    (bilinear) and ``finish_canvas`` visits every canvas pixel; the region is first given a
    one-pixel frame of its own edge colours at zero alpha, so a subject cut by the image edge keeps
    its colour where the resampled alpha fades (past the image the canvas is transparent).
    """
    colours = np.array(PREVIEW_WHITE, np.uint8), np.array(PREVIEW_DARK, np.uint8)
    band = region.band
    if scale == 1.0 and shift_x.is_integer() and shift_y.is_integer():
        dx, dy = int(shift_x), int(shift_y)
        height, width = image_u8.shape[:2]
        y0, x0 = max(0, dy), max(0, dx)
        y1, x1 = min(CANVAS_SIZE, height + dy), min(CANVAS_SIZE, width + dx)
        canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)
        rect = (y0, x0, y1, x1) if y1 > y0 and x1 > x0 else (0, 0, 0, 0)
        y0, x0, y1, x1 = rect
        previews = [_solid_canvas(colour).copy() for colour in (PREVIEW_WHITE, PREVIEW_DARK)]
        opaque_pixels = 0
        if y1 > y0:
            # Only the part of the canvas the region covers (the rest is transparent, the previews'
            # fill): the known subject, opaque and in its own colours, is a masked copy.
            subject = region.known_fg[y0 - dy : y1 - dy, x0 - dx : x1 - dx].view(np.uint8)
            placed = image_u8[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
            cv2.copyTo(cv2.cvtColor(placed, cv2.COLOR_RGB2RGBA), subject, canvas[y0:y1, x0:x1])
            for preview in previews:
                cv2.copyTo(placed, subject, preview[y0:y1, x0:x1])  # writes into the view
            opaque_pixels = cv2.countNonZero(subject)
            kernels.paint_placed_edge(
                canvas, dy, dx, rect, region.alpha, region.colour_ys, region.colour_xs, band.alpha, region.colours
            )
        soft, soft_covered, outline, band_opaque = kernels.finish_band(
            canvas, band.ys + dy, band.xs + dx, rect, *previews, *colours
        )
        on_white, on_dark = previews
        return _Canvas(canvas, on_white, on_dark, opaque_pixels + band_opaque + soft_covered, soft, outline)
    rgba = _straight_rgba(image_u8, region)
    framed = cv2.copyMakeBorder(rgba, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    framed[[0, -1], :, 3] = 0
    framed[:, [0, -1], 3] = 0
    matrix = np.array([[scale, 0.0, shift_x - scale], [0.0, scale, shift_y - scale]], dtype=np.float32)
    size = (CANVAS_SIZE, CANVAS_SIZE)
    warped = cv2.warpAffine(framed, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return _Canvas(*kernels.finish_canvas(warped, 0, 0, CANVAS_SIZE, *colours))


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
    matter: PersonSegmenter,
    cleanup: bool = True,
) -> CutOut:
    """Cut the subject out and frame it on the avatar canvas (see framing.py for the rules).

    The matte is computed at the smaller of the image's and the canvas's scale: a large photo is
    first reduced (area filter) to canvas scale, so the work is bounded by the canvas size; a small
    one is matted at its own size and the result enlarged. ``cleanup=False``: without the
    figure and edge steps (see ``_matte_region``), for before/after comparisons.
    """
    image = _as_rgb_u8(image_rgb)
    height, width = image.shape[:2]
    person = matter.person_mask(image)
    framing = framing_from_face(face, width, height) if face is not None else framing_from_mask(person)

    # Reduce to canvas scale first when the frame shrinks the image.
    work_scale = min(1.0, framing.scale)
    work_image = image
    if work_scale < 1.0:
        size = (max(1, round(width * work_scale)), max(1, round(height * work_scale)))
        # Area averaging where the reduction is 2x or more (bilinear would alias); above that,
        # bilinear already reads every source pixel and is several times cheaper than OpenCV's
        # fractional area filter.
        reduction = cv2.INTER_AREA if work_scale <= 0.5 else cv2.INTER_LINEAR
        work_image = cv2.resize(image, size, interpolation=reduction)
    wh, ww = work_image.shape[:2]
    fx = ww / width  # the exact factor after rounding (the other axis differs by < 1 px)
    to_canvas = Framing(framing.scale / fx, framing.shift_x, framing.shift_y)
    x0, y0, x1, y1 = _working_region(to_canvas, ww, wh)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the framed region does not overlap the image")

    landmarks = None
    if face is not None:
        landmarks = _landmarks_xy(face, ww, wh) - [x0, y0]
    region_image = work_image[y0:y1, x0:x1]
    # The person mask goes from the image's pixels straight to the region's grid: it is a smooth
    # field (a 256 px model's output), so one bilinear resize of the matching crop loses nothing.
    grid_size = Grid(y1 - y0, x1 - x0).size
    crop = person[round(y0 / fx) : round(y1 / fx), round(x0 / fx) : round(x1 / fx)]
    person_cells = cv2.resize(crop, grid_size, interpolation=cv2.INTER_LINEAR)
    seeds = figure.seed_points(landmarks, region_image.shape[:2])
    region = _matte_region(region_image, person_cells, landmarks, illustration_hint, seeds, cleanup=cleanup)

    # Region pixel -> canvas pixel. When the region is already at canvas scale the warp is a pure
    # shift: round it so no resampling softens the matte.
    scale = to_canvas.scale
    shift_x = to_canvas.shift_x + scale * x0
    shift_y = to_canvas.shift_y + scale * y0
    if abs(scale - 1.0) < 1e-3:
        scale, shift_x, shift_y = 1.0, float(round(shift_x)), float(round(shift_y))
    canvas = _finish_canvas(region_image, region, scale, shift_x, shift_y)

    confidence = float(np.clip(region.confidence, 0.0, 1.0))
    matting_quality = MattingQuality(
        alpha_coverage=canvas.covered_pixels / (CANVAS_SIZE * CANVAS_SIZE),
        edge_band_px=quality.mean_edge_band_px(canvas.soft_pixels, canvas.outline_pixels),
        residual_background=region.residual_background,
        confidence=confidence,
    )
    warnings = [WarningCode.LOW_MATTE_CONFIDENCE] if confidence < quality.LOW_CONFIDENCE else []
    canvas_face = None
    if face is not None:
        canvas_face = map_face(face, Framing(framing.scale, framing.shift_x, framing.shift_y), width, height)
    return CutOut(
        rgba=canvas.rgba,
        preview_on_white=canvas.on_white,
        preview_on_dark=canvas.on_dark,
        face=canvas_face,
        method=region.method,
        quality=matting_quality,
        warnings=warnings,
    )
