"""The validator: bytes or a decoded image in, a reproducible ValidationOutcome out. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from avatarflow_contracts import (
    Box,
    CheckResult,
    FaceGeometry,
    HeadPose,
    Point,
    ReasonCode,
    WarningCode,
    order_reasons,
)
from avatarflow_imaging import DecodedImage, ImageError, decode_image

from . import checks
from . import decision_model as dm
from . import landmarks as lm
from .face_analysis import FaceAnalysis, FaceAnalyzer
from .thresholds import ValidatorThresholds


@dataclass(frozen=True, eq=False)
class ValidationOutcome:
    accepted: bool
    reasons: list[ReasonCode]  # most actionable first (order_reasons)
    warnings: list[WarningCode]
    checks: list[CheckResult]  # every check run, passed or not
    # Geometry in pixels of the decoded working image (image.rgb: face.image_width x image_height).
    face: FaceGeometry | None
    illustration_hint: bool
    scores: dict[str, float] = field(default_factory=dict)
    image: DecodedImage | None = None
    # Hand checks measured but not deciding: the decision model replaced them (its inputs).
    superseded: list[CheckResult] = field(default_factory=list)

    def comparable(self) -> tuple[object, ...]:
        """Everything that defines the decision, for determinism checks."""
        return (
            self.accepted,
            tuple(self.reasons),
            tuple(self.warnings),
            tuple(c.model_dump_json() for c in self.checks),
            self.face.model_dump_json() if self.face else None,
            self.illustration_hint,
            tuple(sorted(self.scores.items())),
        )


def suggested_crop(box: tuple[float, float, float, float], width: int, height: int) -> Box:
    """Head-and-shoulders crop, 4:5 portrait: 2.4 face widths wide, face top 0.5 face heights down."""
    x, y, w, h = box
    crop_w = min(2.4 * w, float(width))
    crop_h = min(crop_w * 5 / 4, float(height))
    crop_w = min(crop_w, crop_h * 4 / 5) if crop_h < crop_w * 5 / 4 else crop_w
    left = float(np.clip(x + w / 2 - crop_w / 2, 0, width - crop_w))
    top = float(np.clip(y - 0.5 * h, 0, height - crop_h))
    return Box(x=left, y=top, width=crop_w, height=crop_h)


def face_region(rgb: np.ndarray, mesh: np.ndarray, margin: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """The face oval's box grown by ``margin`` per side, and the landmarks shifted into it."""
    x, y, w, h = lm.face_box(mesh)
    x0 = max(0, int(np.floor(x - margin * w)))
    y0 = max(0, int(np.floor(y - margin * h)))
    x1 = min(rgb.shape[1], int(np.ceil(x + w * (1 + margin))))
    y1 = min(rgb.shape[0], int(np.ceil(y + h * (1 + margin))))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return rgb, mesh
    shifted = mesh.copy()
    shifted[:, 0] -= x0
    shifted[:, 1] -= y0
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), shifted


def face_geometry(analysis: FaceAnalysis, score: float) -> FaceGeometry:
    assert analysis.landmarks is not None and analysis.pose is not None
    mesh = analysis.landmarks
    left, right = lm.eye_centres(mesh)
    box = lm.face_box(mesh)
    mouth = lm.points(mesh, lm.LIPS_OUTER).mean(axis=0)
    pose = analysis.pose
    return FaceGeometry(
        image_width=analysis.image_width,
        image_height=analysis.image_height,
        box=Box(x=box[0], y=box[1], width=box[2], height=box[3]),
        landmarks=[(round(float(p[0]), 2), round(float(p[1]), 2), round(float(p[2]), 2)) for p in mesh],
        left_eye=Point(x=float(left[0]), y=float(left[1])),
        right_eye=Point(x=float(right[0]), y=float(right[1])),
        mouth_center=Point(x=float(mouth[0]), y=float(mouth[1])),
        head_pose=HeadPose(yaw=round(pose.yaw, 2), pitch=round(pose.pitch, 2), roll=round(pose.roll, 2)),
        suggested_crop=suggested_crop(box, analysis.image_width, analysis.image_height),
        detection_score=float(min(max(score, 0.0), 1.0)),
    )


def _rejection(reason: ReasonCode, checks_run: list[CheckResult], image: DecodedImage | None) -> ValidationOutcome:
    extra = [ReasonCode(c.code) for c in checks_run if not c.passed and c.severity == "reject"]
    return ValidationOutcome(
        accepted=False,
        reasons=order_reasons([reason, *extra]),
        warnings=[],
        checks=checks_run,
        face=None,
        illustration_hint=False,
        scores={c.name: c.score for c in checks_run},
        image=image,
    )


class Validator:
    """Decides over one :class:`FaceAnalyzer`'s findings; owns (and closes) the analyzer.

    The analyzer's models are not thread-safe, so create one validator per worker and reuse it
    (the service's, with MediaPipe: :func:`avatarflow_validator.bootstrap.open_validator`).
    """

    def __init__(
        self,
        analyzer: FaceAnalyzer,
        thresholds: ValidatorThresholds | None = None,
        decision_model: dm.DecisionModel | str | None = "packaged",
    ) -> None:
        """``analyzer`` should detect with ``thresholds.detection_confidence``; ``decision_model``:
        "packaged" (the fitted model shipped in the package), a model, or None for the hand-set
        thresholds alone."""
        self.thresholds = thresholds or ValidatorThresholds()
        if isinstance(decision_model, str) and decision_model != "packaged":
            raise ValueError(f"decision_model: {decision_model!r}")
        self.decision_model: dm.DecisionModel | None = (
            dm.load_packaged() if isinstance(decision_model, str) else decision_model
        )
        self._analyzer = analyzer

    def close(self) -> None:
        self._analyzer.close()

    def __enter__(self) -> Validator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def validate_bytes(self, data: bytes) -> ValidationOutcome:
        """Never raises for bad input: anything we cannot decode is rejected as unreadable_image."""
        try:
            image = decode_image(
                data, max_pixels=self.thresholds.max_pixels, max_long_side=self.thresholds.working_long_side
            )
        except ImageError as exc:
            decoded = checks.result("decodable", ReasonCode.UNREADABLE_IMAGE, 0.0, 1.0, "<")
            outcome = _rejection(ReasonCode.UNREADABLE_IMAGE, [decoded], None)
            outcome.scores["error_" + exc.code] = 1.0
            return outcome
        return self.validate_image(image)

    def validate_image(self, image: DecodedImage) -> ValidationOutcome:
        t = self.thresholds
        analysis = self._analyzer.analyse(np.asarray(image.rgb))
        present = checks.check_face_present(analysis, t)
        if not present.passed:
            # No face, but an icon of a head (emoji, silhouette, robot) is a face shape without
            # human features: say so as well, so the editor knows why it is not a face to us.
            icon = checks.check_head_like_graphic(np.asarray(image.rgb), t)
            size = checks.check_image_size((image.original_width, image.original_height), t)
            return _rejection(ReasonCode.NO_FACE, [present, icon, size], image)
        run: list[CheckResult] = [present, checks.check_single_face(analysis, t)]
        confirmed = checks.face_confirmed(analysis, t)
        mesh = analysis.landmarks
        if mesh is None or analysis.pose is None:
            # A face-like shape the detector found but whose eyes, nose and mouth the mesh cannot
            # place: a blank, an emoji, a helmet. Unconfirmed ones are more likely not faces at all.
            code = ReasonCode.FEATURES_MISSING if confirmed >= t.confirmed_face_score else ReasonCode.NO_FACE
            run.append(checks.result("face_mesh", code, 0.0, 1.0, "<"))
            # Size is still measurable: the file's, and the face's from the detector's eye points.
            run.append(checks.check_image_size((image.original_width, image.original_height), t))
            run.extend(checks.check_detected_face_size(analysis, image.scale, t))
            return self._decide(run, image, analysis, illustration=False, confirmed=confirmed, extra={})
        rgb = image.rgb
        run.extend(checks.check_pose(analysis, t))
        run.extend(checks.check_resolution(mesh, image.scale, (image.original_width, image.original_height), t))
        # Face checks only look at the face: measure on its neighbourhood (same pixels, far cheaper).
        face_rgb, face_mesh = face_region(rgb, mesh)
        run.extend(checks.check_sharpness(face_rgb, face_mesh, t))
        run.extend(checks.check_lighting(face_rgb, face_mesh, t))
        run.extend(checks.check_eyes(face_rgb, face_mesh, t))
        run.append(checks.check_mouth(face_rgb, face_mesh, t))
        run.append(checks.check_background(rgb, mesh, t))
        illustration, noise = checks.illustration_hint(face_rgb, face_mesh, t)
        extra = {"face_noise": round(noise, 4)}
        return self._decide(run, image, analysis, illustration=illustration, confirmed=confirmed, extra=extra)

    def _apply_model(
        self, run: list[CheckResult], extra: dict[str, float]
    ) -> tuple[list[CheckResult], list[CheckResult]]:
        """Replace the hand checks the decision model answers for by its own checks; (run, superseded)."""
        model = self.decision_model
        if model is None:
            return run, []
        measured = {**extra, **{c.name: c.score for c in run}}
        answered = dm.verdicts(model, measured, {c.name: c for c in run})
        replaced = dm.superseded(model, [c.name for c in run], answered)
        kept = [c for c in run if c.name not in replaced]
        for v in answered:
            m = v.model
            kept.append(checks.result(m.check_name, ReasonCode(v.code), v.probability, m.reject_at, ">="))
            if m.warn_at is not None and m.warn_code is not None:
                warn = checks.result(
                    m.check_name + "_warn", WarningCode(m.warn_code), v.probability, m.warn_at, ">=", "warning"
                )
                # A rejection for the same reason says it already.
                kept.append(warn.model_copy(update={"passed": warn.passed or v.fails}))
        return kept, [c for c in run if c.name in replaced]

    def _decide(
        self,
        run: list[CheckResult],
        image: DecodedImage,
        analysis: FaceAnalysis,
        *,
        illustration: bool,
        confirmed: float,
        extra: dict[str, float],
    ) -> ValidationOutcome:
        t = self.thresholds
        run, superseded = self._apply_model(run, extra)
        failed = [c for c in run if not c.passed and c.severity == "reject"]
        reasons = order_reasons([ReasonCode(c.code) for c in failed])
        # Weak-detection rule: a face only one detector saw, with moderate confidence, that passes
        # every other check is most likely not a human face at all (an animal, a pattern).
        confirmation = checks.result("face_confirmed", ReasonCode.NO_FACE, confirmed, t.confirmed_face_score, "<")
        if not reasons and not confirmation.passed:
            reasons = [ReasonCode.NO_FACE]
        run = [*run, confirmation.model_copy(update={"passed": confirmation.passed or bool(failed)})]
        warnings = [WarningCode(c.code) for c in run if not c.passed and c.severity == "warning"]
        face = None
        main = analysis.main
        if analysis.landmarks is not None and analysis.pose is not None and main is not None:
            face = face_geometry(analysis, main.score)
        return ValidationOutcome(
            accepted=not reasons,
            reasons=reasons,
            warnings=warnings,
            checks=run,
            face=face,
            illustration_hint=illustration,
            scores={**{c.name: c.score for c in [*superseded, *run]}, **extra},
            image=image,
            superseded=superseded,
        )
