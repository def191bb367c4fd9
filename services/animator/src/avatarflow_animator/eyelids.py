"""Closed and closing eyelids as a composited skin layer (not a warp of the face).

A closed eye is one continuous skin surface with a single lash line where the lids meet. Sliding
the upper-lid skin down over the eye (a warp) drags whatever lies above the lid with it: a dark
crease, drawn eyeliner or a low brow is stretched into a dark band over the eye, which still
looks (and measures, under MediaPipe) like an open eye. So the lid is drawn instead:

- **where**: inside the eye opening, from above the upper-lid landmarks (covering the drawn or
  shadowed lid margin) down to the lid edge
  ``upper + blink * (eye height + overshoot)``, so at ``blink = 1`` it reaches a little past the
  lower-lid landmarks (tapering to nothing at the corners, like the eye opening itself);
- **colour**: the avatar's own upper-lid skin, sampled once per avatar per column of the eye from
  bands above the lid margin and below the lower lid, keeping the brighter half of each column
  (skin, not the crease, lashes, brow hairs or a glasses rim, which are all darker), smoothed
  along the eye;
- **shading**: a little darker toward the lid edge (the lid curves away from the light), a soft
  top edge blending into the real lid skin (always below the brow's lower edge, so a brow close
  to the eye is never touched), and one thin dark lash curve along the lid edge.

The layer is evaluated in *source* coordinates and sampled through the frame's own backward field
(head roll/shift), so it rides with the head. Only frames with ``blink > 0`` pay for it: the
layer is a few thousand pixels around the eyes, composited in the ONNX graph like the mouth.
Nothing here moves the brows or the skin above the eye, so no blink can drag them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .rig import FaceRig, _curve, _smoothstep

# Lower edge of each brow (MediaPipe face mesh), in the order of ``FaceRig.eyes`` (right, left).
BROWS_LOWER = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))
BROW_CLEARANCE_OF_EYE_HEIGHT = 0.15  # the lid layer stops at least this far below the brow

# All sizes are fractions of the eye's own (largest open) height, so any portrait scale works.
LID_OVERSHOOT_OF_EYE_HEIGHT = 0.15  # a closed lid reaches this far past the lower-lid landmarks
LID_COVER_ABOVE_OF_EYE_HEIGHT = 0.6  # the layer also covers the drawn/dark lid margin above the landmarks
LID_FEATHER_OF_EYE_HEIGHT = 0.4  # its top edge fades into the real lid skin over this much
LID_PAST_CORNERS_OF_EYE_HEIGHT = 0.4  # ... and past the eye corners (covering lashes/liner there)
SKIN_ABOVE_OF_EYE_HEIGHT = (0.5, 1.3)  # lid skin is sampled this far above the upper margin
SKIN_BELOW_OF_EYE_HEIGHT = (0.4, 1.0)  # ... and this far below the lower lid (same skin tone)
SKIN_BRIGHTEST = 1 / 2  # of each column's samples, the brighter half is skin
LID_EDGE_DARKENING = 0.18  # the lid is this much darker at its edge than at its top
LASH_DARKNESS = 0.7  # the lash line keeps 30 % of the lid colour at its centre
LASH_WIDTH_OF_EYE_HEIGHT = 0.1  # half-width (sigma) of the lash line, at least LASH_MIN_PX
LASH_MIN_PX = 0.6
COLOUR_SAMPLES = 24  # columns per eye at which the lid colour is sampled


class EyelidLayer:
    """Per-avatar eyelid geometry and skin colour; per-frame premultiplied RGBA layers."""

    def __init__(self, rig: FaceRig, source_rgba: np.ndarray) -> None:
        """``source_rgba``: the cut-out at output size (H x W x 4 uint8), as the rig's canvas."""
        self.rig = rig
        rgb = np.asarray(source_rgba)[..., :3].astype(np.float32) / 255.0
        self.colours = [self._lid_colour(eye, rgb) for eye in rig.eyes]
        local = rig.to_local(rig.landmarks)
        self.brows = [_curve(local[list(brow)]) for brow in BROWS_LOWER]

    def _lid_colour(self, eye, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(xs, colours (n, 3)) of the upper-lid skin along the eye, straight RGB 0..1."""
        rig = self.rig
        xs = np.linspace(eye.upper[0][0], eye.upper[0][-1], COLOUR_SAMPLES)
        above = np.linspace(*SKIN_ABOVE_OF_EYE_HEIGHT, 9) * eye.max_height
        below = np.linspace(*SKIN_BELOW_OF_EYE_HEIGHT, 6) * eye.max_height
        ys = np.concatenate(
            [np.interp(xs, *eye.upper)[:, None] - above[None, :], np.interp(xs, *eye.lower)[:, None] + below[None, :]],
            axis=1,
        )  # (n, rows) local
        local = np.stack(np.broadcast_arrays(xs[:, None], ys), axis=-1)
        canvas = rig.origin + local[..., :1] * rig.u + local[..., 1:] * rig.v
        samples = cv2.remap(
            rgb,
            canvas[..., 0].astype(np.float32),
            canvas[..., 1].astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )  # (n, rows, 3)
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

    def box(self, max_shift: float) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) canvas box that holds both lids in every frame."""
        rig = self.rig
        corners = []
        for eye in rig.eyes:
            top = eye.max_height * (LID_COVER_ABOVE_OF_EYE_HEIGHT + LID_FEATHER_OF_EYE_HEIGHT)
            bottom = eye.max_height * (1.0 + LID_OVERSHOOT_OF_EYE_HEIGHT)
            past = LID_PAST_CORNERS_OF_EYE_HEIGHT * eye.max_height
            for x in (eye.upper[0][0] - past, eye.upper[0][-1] + past):
                for y in (float(np.interp(x, *eye.upper)) - top - eye.max_height, np.interp(x, *eye.lower) + bottom):
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

    def layer(self, blink: float, sampled_at: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Premultiplied RGBA float32 (4, h, w) of the lids at ``blink`` (0 open .. 1 closed).

        ``sampled_at`` (h*w, 2) are the source positions the frame's pixels sample (canvas px).
        """
        height, width = shape
        out = np.zeros((4, height * width), dtype=np.float32)
        if blink <= 0.0:
            return out.reshape(4, height, width)
        local = self.rig.to_local(sampled_at)
        x, y = local[:, 0], local[:, 1]
        for eye, (xs, colours), brow in zip(self.rig.eyes, self.colours, self.brows, strict=True):
            h = eye.max_height
            past = LID_PAST_CORNERS_OF_EYE_HEIGHT * h
            left, right = eye.upper[0][0], eye.upper[0][-1]
            inside = (x >= left - past) & (x <= right + past)
            if not inside.any():
                continue
            along = _smoothstep((x - (left - past)) / past) * _smoothstep((right + past - x) / past)
            margin = np.interp(x, *eye.upper)
            opening = np.maximum(np.interp(x, *eye.lower) - margin, 0.0)
            overshoot = LID_OVERSHOOT_OF_EYE_HEIGHT * np.sqrt(opening * h)
            edge = margin + blink * (opening + overshoot)
            top = margin - LID_COVER_ABOVE_OF_EYE_HEIGHT * h * min(blink / 0.25, 1.0)
            # The feathered top never reaches the brow (brows close to the eyes stay untouched).
            start = np.maximum(
                top - LID_FEATHER_OF_EYE_HEIGHT * h, np.interp(x, *brow) + BROW_CLEARANCE_OF_EYE_HEIGHT * h
            )
            start = np.minimum(start, margin - 1.0)
            top = np.maximum(top, start + 1.0)
            # Coverage: 1 px anti-aliased lid edge, feathered top, feathered past the corners.
            below_edge = np.clip(edge - y + 0.5, 0.0, 1.0)
            under_top = _smoothstep((y - start) / (top - start))
            coverage = np.where(inside, below_edge * under_top * along, 0.0)
            # Lid skin, darker toward its edge, and the lash line along the edge.
            depth = np.clip((y - top) / np.maximum(edge - top, 1.0), 0.0, 1.0)
            shade = 1.0 - LID_EDGE_DARKENING * depth**2
            sigma = max(LASH_MIN_PX, LASH_WIDTH_OF_EYE_HEIGHT * h)
            taper = np.clip(opening / (0.25 * h), 0.0, 1.0)  # thinner toward the corners
            lash = LASH_DARKNESS * taper * np.exp(-0.5 * ((edge - sigma - y) / sigma) ** 2)
            shade = shade * (1.0 - lash)
            colour = np.stack([np.interp(x, xs, colours[:, c]) for c in range(3)]) * shade
            # Eyes do not overlap: the larger coverage wins (premultiplied colour with it).
            take = coverage > out[3]
            out[:3] = np.where(take, colour * coverage, out[:3])
            out[3] = np.where(take, coverage, out[3])
        return out.reshape(4, height, width)
