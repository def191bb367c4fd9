"""Per-frame poses for the idle loop and the lip-synced preview.

Idle motion is a sum of sines whose periods divide the loop length, so frame N would equal
frame 0 and the loop has no seam. The loop starts where that motion is slowest: a player jumps
from the last frame back to the first, a video's first frame is its key frame, coded apart from
the rest, so the loop point carries a small coding difference on top of its pose step; at the
slowest moment the pose step is the smallest of the loop and the sum stays an ordinary step.
Blinks follow a fixed profile (half, closed, half: 120 ms at 25 fps, a natural blink) at
irregular intervals, away from the loop point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from .poses import REST, VISEME_POSES, FacePose, blend

BLINK_PROFILE = (0.5, 1.0, 0.5)
# Blink starts in the idle loop (those that fit its length): intervals of 3.7 s and 4.3 s
# around an 8 s loop, so the rhythm is not a metronome.
IDLE_BLINKS_AT_S = (1.4, 5.1)
PREVIEW_BLINK_EVERY_S = 2.9
PREVIEW_FIRST_BLINK_S = 0.9
# Subtle head motion: degrees of roll and canvas pixels of sway / breathing rise (at 512 px).
ROLL_DEG = 0.9
SWAY_PX = 1.6
BREATH_PX = 1.2
# Small 3D turns and nods from the face mesh's depth (degrees; the rig supports about +-8 / +-5).
YAW_DEG = 3.0
PITCH_DEG = 1.8
# A turn moves the nose tip by about this lever times the angle (radians): the face's depth
# (0.45 of its width, about 150 px on the 512 canvas).
TURN_LEVER_PX = 65.0
# Head roll moves the face by this lever times the angle (radians): the eyes sit about 0.85
# face heights above the neck pivot (rig) and a face is about a third of the 512 px canvas. Only
# used to weigh roll against sway when finding the slowest moment (levers of 100-250 px all
# give the same moment to within a frame).
ROLL_LEVER_PX = 150.0
# Viseme transitions: neighbouring frames blend (coarticulation); closures still close.
SMOOTHING_KERNEL = (0.25, 0.5, 0.25)
LIP_CLOSURES = frozenset({"PP", "FF"})


@dataclass(frozen=True)
class Blink:
    start_frame: int
    closed_frames: tuple[int, ...]
    end_frame: int


def head_motion(t: float, period: float) -> FacePose:
    """Idle head pose at ``t`` of a loop of ``period`` seconds. Roll, sway and breathing run twice
    per (8 s) loop, about one breath per 4 s, the turn and nod once and three times: the periods
    all divide the loop, so it has no seam, and the mixture does not repeat within it."""
    phase = 2.0 * math.pi * t / period
    return FacePose(
        head_roll_deg=ROLL_DEG * math.sin(2 * phase) + 0.3 * ROLL_DEG * math.sin(3 * phase + 0.7),
        head_dx=SWAY_PX * math.sin(2 * phase + 1.1),
        # Rising with the in-breath and settling back.
        head_dy=-BREATH_PX * 0.5 * (1.0 - math.cos(2 * phase)),
        head_yaw_deg=YAW_DEG * math.sin(phase + 2.3),
        head_pitch_deg=PITCH_DEG * math.sin(3 * phase + 0.4),
    )


def _speed(phase: float) -> float:
    """Canvas pixels per radian of phase that ``head_motion`` moves the face at ``phase``."""
    step = 1e-4
    a, b = head_motion(phase - step, 2.0 * math.pi), head_motion(phase + step, 2.0 * math.pi)
    roll = math.radians(b.head_roll_deg - a.head_roll_deg) * ROLL_LEVER_PX
    yaw = math.radians(b.head_yaw_deg - a.head_yaw_deg) * TURN_LEVER_PX
    pitch = math.radians(b.head_pitch_deg - a.head_pitch_deg) * TURN_LEVER_PX
    return math.hypot(roll, yaw, pitch, b.head_dx - a.head_dx, b.head_dy - a.head_dy) / (2.0 * step)


def slowest_phase(samples: int = 3600) -> float:
    """Phase (0..1 of a loop) where the idle head motion is slowest."""
    return min(range(samples), key=lambda i: _speed(2.0 * math.pi * i / samples)) / samples


@cache
def loop_start() -> float:
    """The loop's first frame (0..1 of a loop): the slowest moment of the head motion (see the
    module docstring). Computed on first use (about 15 ms) rather than at import, and kept: it
    depends on nothing but this module's constants."""
    return slowest_phase()


def idle_head(index: int, fps: int, period: float) -> FacePose:
    """Head pose of frame ``index`` of a loop of ``period`` seconds (idle and preview alike)."""
    return head_motion(index / fps + loop_start() * period, period)


def _apply_blinks(poses: list[FacePose], starts: list[int]) -> list[Blink]:
    blinks = []
    for start in starts:
        if start + len(BLINK_PROFILE) > len(poses):
            continue
        for offset, amount in enumerate(BLINK_PROFILE):
            poses[start + offset] = replace(poses[start + offset], blink=amount)
        closed = tuple(start + i for i, amount in enumerate(BLINK_PROFILE) if amount >= 1.0)
        blinks.append(Blink(start, closed, start + len(BLINK_PROFILE) - 1))
    return blinks


def idle_poses(fps: int, seconds: float) -> tuple[list[FacePose], list[Blink]]:
    count = round(fps * seconds)
    period = count / fps
    poses = [idle_head(index, fps, period) for index in range(count)]
    blinks = _apply_blinks(poses, [round(at * fps) for at in IDLE_BLINKS_AT_S])
    return poses, blinks


def preview_poses(
    track: list[tuple[str, float, float]], fps: int, idle_period: float
) -> tuple[list[FacePose], list[Blink]]:
    """Mouth from the viseme track, eyes and head from the idle motion, blinks every few s."""
    count = max(1, round(track[-1][2] * fps)) if track else 1
    targets: list[str] = []
    for index in range(count):
        t = (index + 0.5) / fps
        viseme = next((v for v, start, end in track if start <= t < end), "sil")
        targets.append(viseme)
    mouths = [VISEME_POSES[v] for v in targets]
    smoothed = []
    for index, viseme in enumerate(targets):
        left, centre, right = SMOOTHING_KERNEL
        before = mouths[max(index - 1, 0)]
        after = mouths[min(index + 1, count - 1)]
        pose = blend(blend(before, after, right / (left + right)), mouths[index], centre)
        if viseme in LIP_CLOSURES:  # a closure must really close, whatever surrounds it
            pose = mouths[index]
        smoothed.append(pose)
    poses = [mouth.with_head(idle_head(i, fps, idle_period)) for i, mouth in enumerate(smoothed)]
    starts = [round(s * fps) for s in np.arange(PREVIEW_FIRST_BLINK_S, count / fps, PREVIEW_BLINK_EVERY_S)]
    blinks = _apply_blinks(poses, starts)
    return poses, blinks


def rest_pose() -> FacePose:
    return REST
