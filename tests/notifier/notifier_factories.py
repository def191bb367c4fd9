"""Valid contract events for the notifier tests (one pipeline run per upload)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from avatarflow_contracts import (
    AvatarFailed,
    AvatarMatted,
    AvatarRendered,
    Box,
    CheckResult,
    FaceGeometry,
    FaceRejected,
    FaceValidated,
    HeadPose,
    ImageUploaded,
    MattingQuality,
    ObjectRef,
    Point,
    ReasonCode,
    WarningCode,
    editor_message,
    order_reasons,
)

BUCKET = "avatarflow"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def ref(key: str, content_type: str = "image/png") -> ObjectRef:
    return ObjectRef(
        bucket=BUCKET,
        key=key,
        size=10,
        sha256=hashlib.sha256(key.encode()).hexdigest(),
        content_type=content_type,
    )


def geometry() -> FaceGeometry:
    return FaceGeometry(
        image_width=512,
        image_height=512,
        box=Box(x=150, y=120, width=200, height=240),
        landmarks=[(250.0, 240.0, 0.0)] * 468,
        left_eye=Point(x=210, y=200),
        right_eye=Point(x=290, y=200),
        mouth_center=Point(x=250, y=300),
        head_pose=HeadPose(yaw=0, pitch=0, roll=0),
        suggested_crop=Box(x=100, y=60, width=300, height=380),
        detection_score=0.97,
    )


class Run:
    """The events of one upload, each at a fixed offset from the upload time."""

    def __init__(self, space_id: str, uploaded_at: datetime, upload_id: uuid.UUID | None = None) -> None:
        self.upload_id = upload_id or uuid.uuid4()
        self.space_id = space_id
        self.t = uploaded_at
        self.original = ref(f"uploads/{space_id}/{self.upload_id}/original.jpg", "image/jpeg")

    def _common(self, seconds: float) -> dict:
        return {
            "upload_id": self.upload_id,
            "space_id": self.space_id,
            "editor_id": "editor-1",
            "occurred_at": self.t + timedelta(seconds=seconds),
        }

    def uploaded(self) -> ImageUploaded:
        return ImageUploaded(**self._common(0), original=self.original, source="ingest")

    def validated(self, warnings: tuple[WarningCode, ...] = ()) -> FaceValidated:
        return FaceValidated(
            **self._common(1), original=self.original, face=geometry(), checks=[], warnings=list(warnings)
        )

    def matted(self, warnings: tuple[WarningCode, ...] = ()) -> AvatarMatted:
        prefix = f"avatars/{self.space_id}/{self.upload_id}/"
        return AvatarMatted(
            **self._common(2),
            original=self.original,
            cutout=ref(prefix + "cutout.png"),
            preview_on_white=ref(prefix + "white.png"),
            preview_on_dark=ref(prefix + "dark.png"),
            canvas_width=512,
            canvas_height=512,
            face=geometry(),
            method="person_model",
            quality=MattingQuality(alpha_coverage=0.4, edge_band_px=2, residual_background=0.01, confidence=0.5),
            warnings=list(warnings),
        )

    def rendered(self, alternates: tuple[str, ...] = ()) -> AvatarRendered:
        prefix = f"avatars/{self.space_id}/{self.upload_id}/"
        return AvatarRendered(
            **self._common(3),
            manifest=ref(prefix + "manifest.json", "application/json"),
            idle_loop=ref(prefix + "idle.webm", "video/webm"),
            viseme_atlas=ref(prefix + "visemes.png"),
            preview_clip=ref(prefix + "preview.webm", "video/webm"),
            poster=ref(prefix + "poster.png"),
            alternates=[ref(prefix + name, "video/mp4") for name in alternates],
            execution_provider="CPUExecutionProvider",
            render_seconds=1.0,
            encode_seconds=0.5,
        )

    def rejected(self, reasons: tuple[ReasonCode, ...] = (ReasonCode.BLURRY,)) -> FaceRejected:
        ordered = order_reasons(list(reasons))
        checks = [
            CheckResult(name=c.value, code=c, score=0.1, threshold=0.5, fails_when="<", passed=False) for c in ordered
        ]
        return FaceRejected(
            **self._common(1),
            original=self.original,
            reasons=ordered,
            editor_messages=[editor_message(c) for c in ordered],
            checks=checks,
        )

    def failed(self, advice: str = "retry_upload") -> AvatarFailed:
        return AvatarFailed(
            **self._common(3),
            stage="animator",
            error_code="render_timeout",
            error="render timed out after 3 attempts",
            editor_message="We couldn't finish animating your avatar.",
            retry_advice=advice,
            attempts=3,
        )
