"""Named, pure checks: (measurements, thresholds) -> CheckResult. No models, no I/O.

Each function measures one rule on the working image and the main face's landmarks and returns
the CheckResult(s) with its score, the threshold and how they compare when the check fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from avatarflow_contracts import CheckResult, ReasonCode, WarningCode

from . import landmarks as lm
from . import measures as ms
from .face_analysis import FaceAnalysis
from .thresholds import ValidatorThresholds

FailsWhen = Literal["<", ">", "<=", ">="]
Severity = Literal["reject", "warning"]
_FAILS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda score, bar: score < bar,
    ">": lambda score, bar: score > bar,
    "<=": lambda score, bar: score <= bar,
    ">=": lambda score, bar: score >= bar,
}


def result(
    name: str,
    code: ReasonCode | WarningCode,
    score: float,
    threshold: float,
    fails_when: FailsWhen,
    severity: Severity = "reject",
) -> CheckResult:
    failed = bool(_FAILS[fails_when](score, threshold))
    return CheckResult(
        name=name,
        code=code,
        score=round(float(score), 4),
        threshold=float(threshold),
        fails_when=fails_when,
        passed=not failed,
        severity=severity,
    )


def check_face_present(analysis: FaceAnalysis, thresholds: ValidatorThresholds) -> CheckResult:
    score = analysis.main.score if analysis.main else 0.0
    return result("face_present", ReasonCode.NO_FACE, score, thresholds.detection_confidence, "<")


def is_head_like_graphic(shape: ms.GraphicShape, thresholds: ValidatorThresholds) -> bool:
    t = thresholds
    low_aspect, high_aspect = t.icon_aspect_range
    low_centre, high_centre = t.icon_centre_range
    return (
        shape.palette_share >= t.icon_min_palette_share
        and shape.plain_border >= t.icon_min_plain_border
        and shape.object_dominance >= t.icon_min_object_dominance
        and shape.object_share >= t.icon_min_object_share
        and shape.solidity >= t.icon_min_solidity
        and low_aspect <= shape.aspect <= high_aspect
        and all(low_centre <= c <= high_centre for c in shape.centre)
    )


def check_head_like_graphic(rgb: np.ndarray, thresholds: ValidatorThresholds) -> CheckResult:
    """Only when no face was detected: 1.0 for an icon of a head (features_missing), else 0.0."""
    score = 1.0 if is_head_like_graphic(ms.graphic_shape(rgb), thresholds) else 0.0
    return result("head_like_graphic", ReasonCode.FEATURES_MISSING, score, 0.5, ">=")


def face_confirmed(analysis: FaceAnalysis, thresholds: ValidatorThresholds) -> float:
    """Confidence that the main face is a human face: 1.0 when both detectors found it, else its score."""
    main = analysis.main
    if main is None:
        return 0.0
    cx, cy = main.center
    agreeing = {main.model}
    agreeing.update(
        d.model for d in analysis.raw_detections if d.x <= cx <= d.x + d.width and d.y <= cy <= d.y + d.height
    )
    return 1.0 if len(agreeing) >= 2 else main.score


def check_single_face(analysis: FaceAnalysis, thresholds: ValidatorThresholds) -> CheckResult:
    """Relative size of the largest *other* face to the main face (0 when alone)."""
    main = analysis.main
    others = [d.size / main.size for d in analysis.detections[1:]] if main and main.size > 0 else []
    score = max(others, default=0.0)
    return result("single_face", ReasonCode.MULTIPLE_FACES, score, thresholds.second_face_relative_size, ">=")


def check_pose(analysis: FaceAnalysis, thresholds: ValidatorThresholds) -> list[CheckResult]:
    pose = analysis.pose
    if pose:
        yaw, pitch, roll = abs(pose.yaw), abs(pose.pitch - thresholds.frontal_pitch_deg), abs(pose.roll)
    else:
        yaw, pitch, roll = 90.0, 90.0, 90.0
    return [
        result("head_yaw", ReasonCode.NOT_FRONTAL, yaw, thresholds.max_abs_yaw, ">"),
        result("head_pitch", ReasonCode.NOT_FRONTAL, pitch, thresholds.max_abs_pitch, ">"),
        result("head_roll", ReasonCode.NOT_FRONTAL, roll, thresholds.max_abs_roll, ">"),
    ]


def check_image_size(original_size: tuple[int, int], thresholds: ValidatorThresholds) -> CheckResult:
    """The upload's short side in ORIGINAL pixels: a property of the file, so it is measured
    whether or not a face was found (a tiny image is often why none was)."""
    return result(
        "image_short_side_px",
        ReasonCode.LOW_RESOLUTION,
        min(original_size),
        thresholds.min_image_short_side_px,
        "<",
    )


def check_resolution(
    landmarks: np.ndarray, scale: float, original_size: tuple[int, int], thresholds: ValidatorThresholds
) -> list[CheckResult]:
    """Inter-ocular distance and image short side, both in ORIGINAL image pixels."""
    iod_original = lm.inter_ocular(landmarks) / max(scale, 1e-9)
    return [
        result("inter_ocular_px", ReasonCode.LOW_RESOLUTION, iod_original, thresholds.min_inter_ocular_px, "<"),
        check_image_size(original_size, thresholds),
    ]


def check_detected_face_size(
    analysis: FaceAnalysis, scale: float, thresholds: ValidatorThresholds
) -> list[CheckResult]:
    """Inter-ocular distance (ORIGINAL pixels) from the detector's eye keypoints, for a face the
    mesh could not place: a face too small to mesh is a low-resolution face, and the editor can act
    on that. Same bar as the mesh's inter-ocular distance; [] when the detector gave no eyes."""
    main = analysis.main
    if main is None or len(main.keypoints) < 2:
        return []
    (rx, ry), (lx, ly) = main.keypoints[0], main.keypoints[1]
    iod_original = float(np.hypot(rx - lx, ry - ly)) / max(scale, 1e-9)
    return [
        result("detected_inter_ocular_px", ReasonCode.LOW_RESOLUTION, iod_original, thresholds.min_inter_ocular_px, "<")
    ]


def check_sharpness(rgb: np.ndarray, landmarks: np.ndarray, thresholds: ValidatorThresholds) -> list[CheckResult]:
    grey = ms.grey(rgb)
    face = ms.square_face_crop(grey, landmarks)
    if face.size == 0:
        face = grey
    edge = ms.edge_width(ms.resampled(face, ms.FACE_CROP_SIZE))
    blocks = ms.blockiness(face)
    blurry = result("face_edge_width", ReasonCode.BLURRY, edge, thresholds.max_edge_width_px, ">")
    soft = result("face_edge_width_soft", WarningCode.SOFT_FOCUS, edge, thresholds.warn_edge_width_px, ">", "warning")
    if not blurry.passed:
        soft = soft.model_copy(update={"passed": True})  # the rejection says it already
    return [
        blurry,
        result("face_blockiness", ReasonCode.BLURRY, blocks, thresholds.max_blockiness, ">"),
        soft,
    ]


def check_lighting(rgb: np.ndarray, landmarks: np.ndarray, thresholds: ValidatorThresholds) -> list[CheckResult]:
    shadows, highlights = ms.face_lstar_percentiles(rgb, landmarks)
    light = ms.lighting(rgb, landmarks)
    return [
        result(
            "face_highlights_lstar",
            ReasonCode.POOR_LIGHTING,
            highlights,
            thresholds.min_face_highlight_lstar,
            "<",
        ),
        result("face_shadows_lstar", ReasonCode.POOR_LIGHTING, shadows, thresholds.max_face_shadow_lstar, ">"),
        result(
            "face_clipped",
            ReasonCode.POOR_LIGHTING,
            light.clipped_fraction,
            thresholds.max_clipped_fraction,
            ">",
        ),
        result(
            "face_side_balance",
            ReasonCode.POOR_LIGHTING,
            light.side_balance,
            thresholds.min_side_balance,
            "<",
        ),
    ]


def check_eyes(rgb: np.ndarray, landmarks: np.ndarray, thresholds: ValidatorThresholds) -> list[CheckResult]:
    """Eyes visible: structure inside the openings, and skin around them (no lens over both)."""
    return [
        result(
            "eye_contrast",
            ReasonCode.EYES_OCCLUDED,
            ms.eye_contrast(rgb, landmarks),
            thresholds.min_eye_contrast,
            "<",
        ),
        result(
            "eye_surround_delta_e",
            ReasonCode.EYES_OCCLUDED,
            ms.eye_surround_difference(rgb, landmarks),
            thresholds.max_eye_surround_delta_e,
            ">",
        ),
    ]


def check_mouth(rgb: np.ndarray, landmarks: np.ndarray, thresholds: ValidatorThresholds) -> CheckResult:
    """Mouth visible; if not: drawn without one (features_missing), masked, or a full face covering."""
    structure = ms.mouth_structure(rgb, landmarks)
    regions = ms.regions(rgb, landmarks)
    if regions.lower_delta_e < thresholds.covering_colour_delta_e:
        code = ReasonCode.FEATURES_MISSING
    elif regions.forehead_delta_e >= thresholds.covered_forehead_delta_e and (
        regions.forehead_lower_delta_e < thresholds.covering_colour_delta_e
    ):
        code = ReasonCode.FACE_COVERING
    else:
        code = ReasonCode.MOUTH_OCCLUDED
    return result("mouth_structure", code, structure, thresholds.min_mouth_structure, "<")


def check_background(rgb: np.ndarray, landmarks: np.ndarray, thresholds: ValidatorThresholds) -> CheckResult:
    return result(
        "background_edge_density",
        WarningCode.BUSY_BACKGROUND,
        ms.background_edge_density(rgb, landmarks),
        thresholds.max_background_edge_density,
        ">",
        severity="warning",
    )


def illustration_hint(rgb: np.ndarray, landmarks: np.ndarray, thresholds: ValidatorThresholds) -> tuple[bool, float]:
    face = ms.square_face_crop(ms.grey(rgb), landmarks)
    noise = ms.noise_level(ms.resampled(face, ms.FACE_CROP_SIZE)) if face.size else 0.0
    return noise < thresholds.illustration_max_noise, noise
