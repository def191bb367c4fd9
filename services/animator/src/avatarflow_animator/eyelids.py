"""Closed and closing eyelids as a composited skin layer (not a warp of the face).

A closed eye is one continuous skin surface with a single lash line where the lids meet. Sliding
the upper-lid skin down over the eye (a warp) drags whatever lies above the lid with it: a dark
crease, drawn eyeliner or a low brow is stretched into a dark band over the eye, which still
looks (and measures, under MediaPipe) like an open eye. So the lid is drawn instead:

- **upper lid**: inside the eye opening, from above the upper-lid landmarks (covering the drawn
  or shadowed lid margin) down to its edge ``upper + blink * eye height``: at ``blink = 1`` it
  meets the lower lid at the lower-lid landmarks, where one thin dark lash line runs from corner
  to corner;
- **lower lid**: once the lids meet (the second half of a blink) the layer also covers the lower
  lid's rim below that line (wet line, lower lashes, the bright or shadowed band under the eye)
  with skin in the shade of the lashes; left visible, the rim is a second lid line under the lashes, and
  two lines read as an open eye. Below the rim the cover fades out, so it has no edge of its own;
- **skin**: the avatar's own lid skin colour, sampled once per avatar per column of the eye from
  bands above the lid margin and below the lower lid, keeping the brighter half of each column
  (skin, not the crease, lashes, brow hairs or a glasses rim, which are all darker), smoothed
  along the eye; with the skin's fine texture (pores, grain, craquelure), taken from just below
  the eye, laid over it, since a flat fill reads as a pasted patch;
- **shading**: a little darker toward the lash line (the lid curves away from the light) and
  under it (the lashes' shadow), a soft
  top edge blending into the real lid skin (always below the brow's lower edge, so a brow close
  to the eye is never touched).

Sizes are fractions of the eye's *size*: its open height, but at least that of a typical open
eye of its width, because a squinting or smiling eye has ordinary lids and lashes, and sizes
taken from its narrow opening would leave its lower rim and lash band uncovered.

The layer is evaluated in *source* coordinates and sampled through the frame's own backward field
(head roll/shift), so it rides with the head. Only frames with ``blink > 0`` pay for it: the
layer is a few thousand pixels around the eyes, composited in the ONNX graph like the mouth.
Nothing here moves the brows or the skin above the eye, so no blink can drag them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .rig import FaceRig, _curve, _Eye, _smoothstep

# Lower edge of each brow (MediaPipe face mesh), in the order of ``FaceRig.eyes`` (right, left).
BROWS_LOWER = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))
BROW_CLEARANCE_OF_EYE_SIZE = 0.15  # the lid layer stops at least this far below the brow

# An open eye is about 0.3 as high as it is wide (open eye aspect ratios are 0.2-0.4): the least
# eye size, as a fraction of the eye's width (see the module docstring).
OPEN_EYE_HEIGHT_OF_WIDTH = 0.3
# All sizes below are fractions of the eye size, so any portrait scale works.
LID_COVER_ABOVE_OF_EYE_SIZE = 0.6  # the layer also covers the drawn/dark lid margin above the landmarks
LID_FEATHER_OF_EYE_SIZE = 0.4  # its top edge fades into the real lid skin over this much
LID_PAST_CORNERS_OF_EYE_SIZE = 0.4  # ... and past the eye corners (covering lashes/liner there)
# The lower lid's rim and the band under it (wet line, lower lashes, tear trough shadow) reach
# this far below the lower-lid landmarks.
LOWER_LID_COVER_OF_EYE_SIZE = 0.8
LOWER_LID_FEATHER_OF_COVER = 0.4  # ... and then fades out over 40 % more (no edge of its own)
LID_EDGE_DARKENING = 0.18  # the lid is this much darker at the lash line (and under it) than at its top
# The lash line keeps 10 % of the lid colour at its centre: lashes are the darkest thing around
# the eye, and a grey line next to a dark lower rim still reads as an opening.
LASH_DARKNESS = 0.9
LASH_WIDTH_OF_EYE_SIZE = 0.1  # half-width (sigma) of the lash line, at least LASH_MIN_PX
LASH_MIN_PX = 0.6
# The lash line thins to nothing only where the opening is this thin (the last few pixels at
# the corners): the lashes of a closed eye run all the way to both corners.
LASH_TAPER_OF_EYE_SIZE = 0.05
COLOUR_SAMPLES = 24  # columns per eye at which the lid colour is sampled
SKIN_ABOVE_OF_EYE_SIZE = (0.5, 1.3)  # lid skin is sampled this far above the upper margin
SKIN_BELOW_OF_EYE_SIZE = (0.4, 1.0)  # ... and this far below the lower lid (same skin tone)
SKIN_BRIGHTEST = 1 / 2  # of each column's samples, the brighter half is skin
# Fine texture = skin minus its Gaussian blur at this sigma (px at the output size): pores and
# grain, not the shading (which the lid colour carries).
TEXTURE_SIGMA_PX = 1.5
# Texture deviations are clipped at this many robust standard deviations of their band, so an
# edge crossing it (a glasses rim, a deep wrinkle) does not come along as a line.
TEXTURE_CLIP_SIGMAS = 2.0


def eye_size(eye: _Eye) -> float:
    """The eye's open height, at least that of a typical open eye of the same width (px)."""
    return max(eye.max_height, OPEN_EYE_HEIGHT_OF_WIDTH * float(eye.upper[0][-1] - eye.upper[0][0]))


def _lid_reach(eye: _Eye) -> tuple[float, float]:
    """(above, below): how far the lid layer reaches above the upper and below the lower landmarks."""
    size = eye_size(eye)
    below = LOWER_LID_COVER_OF_EYE_SIZE * (1.0 + LOWER_LID_FEATHER_OF_COVER) * size
    return (LID_COVER_ABOVE_OF_EYE_SIZE + LID_FEATHER_OF_EYE_SIZE) * size, below


class EyelidLayer:
    """Per-avatar eyelid geometry and lid skin; per-frame premultiplied RGBA layers."""

    def __init__(self, rig: FaceRig, source_rgba: np.ndarray) -> None:
        """``source_rgba``: the cut-out at output size (H x W x 4 uint8), as the rig's canvas."""
        self.rig = rig
        local = rig.to_local(rig.landmarks)
        self.brows = [_curve(local[list(brow)]) for brow in BROWS_LOWER]
        self.skin_box = self.box(0.0)
        rgb = np.asarray(source_rgba)[..., :3].astype(np.float32) / 255.0
        self.skin = self._lid_skin(rgb)

    # --- geometry ------------------------------------------------------------------------------

    def _eye_lid(
        self, eye: _Eye, brow: tuple[np.ndarray, np.ndarray], blink: float, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(coverage, shade) of one eye's lids at local points ``x``, ``y``; shade multiplies the skin."""
        size = eye_size(eye)
        past = LID_PAST_CORNERS_OF_EYE_SIZE * size
        left, right = eye.upper[0][0], eye.upper[0][-1]
        inside = (x >= left - past) & (x <= right + past)
        along = _smoothstep((x - (left - past)) / past) * _smoothstep((right + past - x) / past)
        margin = np.interp(x, *eye.upper)
        opening = np.maximum(np.interp(x, *eye.lower) - margin, 0.0)
        lash_y = margin + blink * opening  # the upper lid's edge; the lower landmarks when closed
        top = margin - LID_COVER_ABOVE_OF_EYE_SIZE * size * min(blink / 0.25, 1.0)
        # The feathered top never reaches the brow (brows close to the eyes stay untouched).
        start = np.maximum(
            top - LID_FEATHER_OF_EYE_SIZE * size, np.interp(x, *brow) + BROW_CLEARANCE_OF_EYE_SIZE * size
        )
        start = np.minimum(start, margin - 1.0)
        top = np.maximum(top, start + 1.0)
        # Upper lid: anti-aliased edge 1 px past the lash line, feathered top.
        upper = np.clip(lash_y + 1.0 - y, 0.0, 1.0) * _smoothstep((y - start) / (top - start))
        # Lower-lid cover: appears over the second half of the blink (once the lids meet), fully
        # down to ``below`` (shallower toward the corners, like the opening itself), then fading
        # out: a hard lower edge of the shaded cover reads as a drawn crescent under the eye.
        below = LOWER_LID_COVER_OF_EYE_SIZE * size * np.sqrt(np.clip(opening / size, 0.0, 1.0))
        fade = np.maximum(LOWER_LID_FEATHER_OF_COVER * below, 1.0)
        lower = np.clip(2.0 * blink - 1.0, 0.0, 1.0) * _smoothstep((lash_y + below + fade - y) / fade) * (y > lash_y)
        coverage = np.where(inside, np.maximum(upper, lower) * along, 0.0)
        # Upper-lid skin darker toward the lash line, and the skin under the lashes in their (and
        # the closed lid's) shadow; the lash line itself.
        depth = np.clip((y - top) / np.maximum(lash_y - top, 1.0), 0.0, 1.0)
        shade = 1.0 - LID_EDGE_DARKENING * depth**2
        sigma = max(LASH_MIN_PX, LASH_WIDTH_OF_EYE_SIZE * size)
        taper = np.clip(opening / (LASH_TAPER_OF_EYE_SIZE * size), 0.0, 1.0)
        lash = LASH_DARKNESS * taper * np.exp(-0.5 * ((lash_y - y) / sigma) ** 2)
        return coverage, shade * (1.0 - lash)

    def _lids(self, blink: float, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coverage, shade) of both lids at canvas ``points`` (M, 2); eyes never overlap, so
        where both layers reach, the larger coverage wins."""
        local = self.rig.to_local(points)
        x, y = local[:, 0], local[:, 1]
        coverage = np.zeros(len(points))
        shade = np.ones(len(points))
        for eye, brow in zip(self.rig.eyes, self.brows, strict=True):
            eye_coverage, eye_shade = self._eye_lid(eye, brow, blink, x, y)
            take = eye_coverage > coverage
            coverage = np.where(take, eye_coverage, coverage)
            shade = np.where(take, eye_shade, shade)
        return coverage, shade

    def box(self, max_shift: float) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) canvas box that holds both lids in every frame."""
        rig = self.rig
        corners = []
        for eye in rig.eyes:
            above, below = _lid_reach(eye)
            past = LID_PAST_CORNERS_OF_EYE_SIZE * eye_size(eye)
            for x in (eye.upper[0][0] - past, eye.upper[0][-1] + past):
                top = float(np.interp(x, *eye.upper)) - above - eye.max_height  # the upper curve may dip
                for y in (top, float(np.interp(x, *eye.lower)) + below + eye.max_height):
                    corners.append(rig.origin + x * rig.u + y * rig.v)
        pts = np.array(corners)
        margin = max_shift + 3.0
        clamp = lambda v: int(min(max(v, 0), rig.size))  # noqa: E731
        return (
            clamp(math.floor(pts[:, 0].min() - margin)),
            clamp(math.floor(pts[:, 1].min() - margin)),
            clamp(math.ceil(pts[:, 0].max() + margin)),
            clamp(math.ceil(pts[:, 1].max() + margin)),
        )

    # --- skin ----------------------------------------------------------------------------------

    def _lid_skin(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w, 3) float32 straight RGB 0..1 over ``skin_box``: lid colour plus fine texture."""
        rig = self.rig
        x0, y0, x1, y1 = self.skin_box
        shape = (y1 - y0, x1 - x0)
        pixels = rig.pixel_centres(self.skin_box)
        along = rig.to_local(pixels)[:, 0]
        # Each pixel takes the colour of the nearer eye (the eyes are split halfway between them).
        split = 0.5 * (rig.eyes[0].upper[0][-1] + rig.eyes[1].upper[0][0])
        colour = np.empty((len(pixels), 3), np.float32)
        for eye, side in zip(rig.eyes, (along < split, along >= split), strict=True):
            xs, colours = self._lid_colour(eye, rgb)
            for channel in range(3):
                colour[side, channel] = np.interp(along[side], xs, colours[:, channel])
        return colour.reshape(*shape, 3) + self._texture(rgb, pixels, shape)

    def _lid_colour(self, eye: _Eye, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(xs, colours (n, 3)) of the lid skin along the eye, straight RGB 0..1."""
        rig = self.rig
        size = eye_size(eye)
        xs = np.linspace(eye.upper[0][0], eye.upper[0][-1], COLOUR_SAMPLES)
        above = np.linspace(*SKIN_ABOVE_OF_EYE_SIZE, 9) * size
        below = np.linspace(*SKIN_BELOW_OF_EYE_SIZE, 6) * size
        ys = np.concatenate(
            [np.interp(xs, *eye.upper)[:, None] - above[None, :], np.interp(xs, *eye.lower)[:, None] + below[None, :]],
            axis=1,
        )  # (n, rows) local
        local = np.stack(np.broadcast_arrays(xs[:, None], ys), axis=-1)
        canvas = rig.origin + local[..., :1] * rig.u + local[..., 1:] * rig.v
        samples = _sample(rgb, canvas[..., 0], canvas[..., 1])  # (n, rows, 3)
        luma = samples @ np.array([0.299, 0.587, 0.114], np.float32)
        brightest = max(1, round(SKIN_BRIGHTEST * luma.shape[1]))
        keep = np.argsort(luma, axis=1, kind="stable")[:, -brightest:]
        colour = np.take_along_axis(samples, keep[..., None], axis=1).mean(axis=1)
        # Smooth along the eye: the lid is one surface, not a column-by-column copy.
        kernel = np.exp(-0.5 * (np.arange(-4, 5) / 2.0) ** 2)
        kernel /= kernel.sum()
        padded = np.pad(colour, ((4, 4), (0, 0)), mode="edge")
        smooth = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(3)], axis=-1)
        return xs, smooth

    def _texture(self, rgb: np.ndarray, pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """(h, w, 3) fine skin texture at ``pixels``, from the skin just below the lids.

        Taken one whole lid depth further down the face (so from below the lower lid's rim,
        never from the eye itself), clipped to the band's own robust spread.
        """
        rig = self.rig
        depth = max(sum(_lid_reach(eye)) + eye.max_height for eye in rig.eyes)
        detail = rgb - cv2.GaussianBlur(rgb, (0, 0), TEXTURE_SIGMA_PX)
        below = pixels + depth * rig.v
        band = _sample(detail, below[:, 0].reshape(shape), below[:, 1].reshape(shape))
        # 1.4826 x the median absolute deviation: the standard deviation of Gaussian grain,
        # unaffected by the few strong edges that are to be clipped.
        spread = 1.4826 * np.median(np.abs(band), axis=(0, 1))
        limit = TEXTURE_CLIP_SIGMAS * np.maximum(spread, 1e-6)
        return np.clip(band, -limit, limit)

    # --- per frame -----------------------------------------------------------------------------

    def layer(self, blink: float, sampled_at: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Premultiplied RGBA float32 (4, h, w) of the lids at ``blink`` (0 open .. 1 closed).

        ``sampled_at`` (h*w, 2) are the source positions the frame's pixels sample (canvas px).
        """
        height, width = shape
        out = np.zeros((4, height * width), dtype=np.float32)
        if blink <= 0.0:
            return out.reshape(4, height, width)
        coverage, shade = self._lids(blink, sampled_at)
        x0, y0 = self.skin_box[:2]
        xs, ys = (sampled_at[:, 0] - x0).reshape(shape), (sampled_at[:, 1] - y0).reshape(shape)
        skin = _sample(self.skin, xs, ys).reshape(-1, 3)
        out[:3] = np.clip(skin.T * shade, 0.0, 1.0) * coverage
        out[3] = coverage
        return out.reshape(4, height, width)


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` (H, W, C) at pixel positions ``xs``, ``ys`` (same 2-D shape)."""
    return cv2.remap(
        image, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
