"""Pydantic v2 models for every event on the avatarflow topics.

Versioning rule (see docs/contracts.md): ``schema_version`` is ``MAJOR.MINOR``. Within a major
version changes are additive only (new optional fields, new enum members); consumers ignore
fields they do not know. A consumer that meets an unknown MAJOR version sends the record to the
dead-letter topic and carries on; it never crashes.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .reasons import ReasonCode, WarningCode
from .topics import Topic

SCHEMA_MAJOR = 1
SCHEMA_MINOR = 0
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]


EventT = TypeVar("EventT", bound="Envelope")


def new_trace_id() -> str:
    return secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    # Unknown fields are ignored so that a newer minor version never breaks an older consumer.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ObjectRef(_Model):
    """A typed reference to an object in S3-compatible storage."""

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0)
    sha256: str
    content_type: str = Field(min_length=3, max_length=127)

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("sha256 must be 64 lowercase hex characters")
        return value


class Box(_Model):
    """Axis-aligned box in pixels of the (EXIF-upright) image it refers to."""

    x: float
    y: float
    width: float = Field(ge=0)
    height: float = Field(ge=0)


class Point(_Model):
    x: float
    y: float


class HeadPose(_Model):
    """Head rotation in degrees: yaw (left/right), pitch (up/down), roll (in-plane tilt)."""

    yaw: float
    pitch: float
    roll: float


class FaceGeometry(_Model):
    """What the validator measured about the face, so later stages need not detect it again.

    Coordinates are pixels in the upright image of ``image_width`` x ``image_height``.
    ``landmarks`` are the 478 MediaPipe face-mesh points (x, y, z), z in the mesh's relative scale.
    """

    image_width: int = Field(gt=0)
    image_height: int = Field(gt=0)
    box: Box
    landmarks: list[tuple[float, float, float]] = Field(min_length=468, max_length=478)
    left_eye: Point
    right_eye: Point
    mouth_center: Point
    head_pose: HeadPose
    suggested_crop: Box
    detection_score: float = Field(ge=0, le=1)


class CheckResult(_Model):
    """One named check: its score, the threshold it was compared with, and the outcome."""

    name: str
    code: ReasonCode | WarningCode
    score: float
    threshold: float
    # How score is compared with threshold for the check to fail, e.g. "<" means "fails when
    # score < threshold".
    fails_when: Literal["<", ">", "<=", ">="]
    passed: bool
    severity: Literal["reject", "warning"] = "reject"


class Envelope(_Model):
    """Fields every event carries."""

    EVENT_TYPE: ClassVar[str] = ""
    TOPIC: ClassVar[Topic]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    schema_version: str = SCHEMA_VERSION
    occurred_at: datetime = Field(default_factory=utcnow)
    upload_id: uuid.UUID
    space_id: Identifier
    editor_id: Identifier
    # Correlation id shared by every event of one upload; also sent as W3C traceparent header.
    trace_id: str = Field(default_factory=new_trace_id)

    @field_validator("schema_version")
    @classmethod
    def _version_format(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("schema_version must look like MAJOR.MINOR")
        return value

    @field_validator("trace_id")
    @classmethod
    def _trace_format(cls, value: str) -> str:
        if not _TRACE_ID.match(value) or value == "0" * 32:
            raise ValueError("trace_id must be 32 lowercase hex characters, not all zero")
        return value

    @property
    def schema_major(self) -> int:
        return int(self.schema_version.split(".", 1)[0])

    def follow_up(self, cls: type[EventT], **fields: Any) -> EventT:
        """Build the next event of the same upload, carrying the correlation fields forward.

        The new event's id is derived from this event's id, so reprocessing a redelivered event
        republishes the very same event (consumers deduplicate by ``event_id``).
        """
        return cls(
            event_id=uuid.uuid5(self.event_id, cls.EVENT_TYPE),
            event_type=cls.EVENT_TYPE,
            upload_id=self.upload_id,
            space_id=self.space_id,
            editor_id=self.editor_id,
            trace_id=self.trace_id,
            **fields,
        )


class ImageUploaded(Envelope):
    EVENT_TYPE: ClassVar[str] = "image.uploaded"
    TOPIC: ClassVar[Topic] = Topic.IMAGE_UPLOADED

    event_type: Literal["image.uploaded"] = "image.uploaded"
    original: ObjectRef
    # Who produced the event: our HTTP ingest, the presigned flow, or the platform's own upload flow.
    source: Literal["ingest", "presigned", "platform"] = "platform"


class FaceValidated(Envelope):
    EVENT_TYPE: ClassVar[str] = "face.validated"
    TOPIC: ClassVar[Topic] = Topic.FACE_VALIDATED

    event_type: Literal["face.validated"] = "face.validated"
    original: ObjectRef
    face: FaceGeometry
    checks: list[CheckResult]
    warnings: list[WarningCode] = Field(default_factory=list)
    # True when the face looks drawn/painted rather than photographed (matting picks its path).
    illustration_hint: bool = False


class FaceRejected(Envelope):
    EVENT_TYPE: ClassVar[str] = "face.rejected"
    TOPIC: ClassVar[Topic] = Topic.FACE_REJECTED

    event_type: Literal["face.rejected"] = "face.rejected"
    original: ObjectRef
    # Every failed check's code, most actionable first (see reasons.REASON_PRIORITY).
    reasons: list[ReasonCode] = Field(min_length=1)
    editor_messages: list[str] = Field(min_length=1)
    checks: list[CheckResult]
    warnings: list[WarningCode] = Field(default_factory=list)


class MattingQuality(_Model):
    alpha_coverage: float = Field(ge=0, le=1, description="fraction of canvas pixels with alpha > 0.5")
    edge_band_px: float = Field(ge=0, description="mean width of the soft (0 < alpha < 1) edge band")
    residual_background: float = Field(
        ge=0, description="estimated background colour left in the edge band (0 = none, 1 = all)"
    )
    confidence: float = Field(ge=0, le=1)


class AvatarMatted(Envelope):
    EVENT_TYPE: ClassVar[str] = "avatar.matted"
    TOPIC: ClassVar[Topic] = Topic.AVATAR_MATTED

    event_type: Literal["avatar.matted"] = "avatar.matted"
    original: ObjectRef
    cutout: ObjectRef  # RGBA PNG, straight alpha, decontaminated colours
    preview_on_white: ObjectRef
    preview_on_dark: ObjectRef
    canvas_width: int = Field(gt=0)
    canvas_height: int = Field(gt=0)
    # The face geometry mapped into the cut-out's canvas coordinates.
    face: FaceGeometry
    method: Literal["person_model", "illustration_grabcut"]
    quality: MattingQuality
    warnings: list[WarningCode] = Field(default_factory=list)


class AvatarRendered(Envelope):
    EVENT_TYPE: ClassVar[str] = "avatar.rendered"
    TOPIC: ClassVar[Topic] = Topic.AVATAR_RENDERED

    event_type: Literal["avatar.rendered"] = "avatar.rendered"
    manifest: ObjectRef
    idle_loop: ObjectRef
    viseme_atlas: ObjectRef
    preview_clip: ObjectRef
    poster: ObjectRef  # a still PNG of the rest frame: what end users see before playback
    # The manifest's ``alternates`` (other encodings, e.g. H.264 MP4 for Safari), one object per file,
    # in the manifest's order; each key ends in the file name the manifest gives. Optional and
    # additive: a consumer that does not know the field sees the same pack without alternates.
    alternates: list[ObjectRef] = Field(default_factory=list)
    execution_provider: str
    render_seconds: float = Field(ge=0)
    encode_seconds: float = Field(ge=0)


class AvatarFailed(Envelope):
    """Terminal processing failure after retries (not a rejection of the image itself)."""

    EVENT_TYPE: ClassVar[str] = "avatar.failed"
    TOPIC: ClassVar[Topic] = Topic.AVATAR_FAILED

    event_type: Literal["avatar.failed"] = "avatar.failed"
    stage: Literal["ingest", "validator", "matting", "animator"]
    error_code: str = Field(min_length=1, max_length=64)
    error: str = Field(max_length=2000, description="operator-facing error text (no personal data)")
    editor_message: str
    retry_advice: Literal["retry_upload", "upload_different_image", "contact_support"]
    attempts: int = Field(ge=1)


class DeadLetter(_Model):
    """A record that could not be processed: kept byte for byte so it can be replayed after a fix."""

    dead_letter_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: str = SCHEMA_VERSION
    failed_at: datetime = Field(default_factory=utcnow)
    service: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None = None
    value_b64: str = Field(description="the original record value, base64")
    headers: list[tuple[str, str]] = Field(default_factory=list, description="header values base64")
    error_type: str
    error: str = Field(max_length=4000)
    attempts: int = Field(ge=1)


EVENT_MODELS: dict[Topic, type[Envelope]] = {
    Topic.IMAGE_UPLOADED: ImageUploaded,
    Topic.FACE_VALIDATED: FaceValidated,
    Topic.FACE_REJECTED: FaceRejected,
    Topic.AVATAR_MATTED: AvatarMatted,
    Topic.AVATAR_RENDERED: AvatarRendered,
    Topic.AVATAR_FAILED: AvatarFailed,
}

TERMINAL_EVENT_TYPES = frozenset({"face.rejected", "avatar.rendered", "avatar.failed"})
