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

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from .reasons import ReasonCode, WarningCode
from .topics import Topic

SCHEMA_MAJOR = 1
SCHEMA_MINOR = 1  # 1.1: reason codes face_paint and helmet
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
    # Timezone required: a naive time is poison at decode (dead-lettered), never a TypeError later.
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
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


# Dead-letter headers (the Spring Kafka / Kafka Connect convention: the value stays the original
# bytes, the context travels in headers). The original record's own headers are kept as they were.
DLT_PREFIX = "dlt-"
DLT_ORIGINAL_TOPIC = "dlt-original-topic"
DLT_ORIGINAL_PARTITION = "dlt-original-partition"
DLT_ORIGINAL_OFFSET = "dlt-original-offset"
DLT_ORIGINAL_TIMESTAMP = "dlt-original-timestamp"
DLT_CONSUMER_GROUP = "dlt-original-consumer-group"
DLT_EXCEPTION_FQCN = "dlt-exception-fqcn"
DLT_EXCEPTION_MESSAGE = "dlt-exception-message"
DLT_ATTEMPTS = "dlt-attempts"
DLT_SERVICE = "dlt-service"
DLT_ID = "dlt-id"
DLT_FAILED_AT = "dlt-failed-at"
DLT_SCHEMA_VERSION = "dlt-schema-version"
# "inline": the record value is the original value; "s3": the value is an ObjectRef (JSON) of a copy.
DLT_VALUE_LOCATION = "dlt-value-location"
DLT_HEADERS_DROPPED = "dlt-original-headers-dropped"
DLT_NOTE = "dlt-note"
MAX_EXCEPTION_MESSAGE = 1000


class DeadLetter(_Model):
    """The context of a dead-letter record, carried in its ``dlt-*`` headers.

    The record's key is the original key and its value the original bytes (or, when those would not
    fit under the producer's request limit, a JSON :class:`ObjectRef` of a copy in S3), so a dead
    letter always fits and can be replayed byte for byte after a fix.
    """

    dead_letter_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: str = SCHEMA_VERSION
    failed_at: AwareDatetime = Field(default_factory=utcnow)
    service: str
    consumer_group: str
    topic: str = Field(description="the original topic")
    partition: int
    offset: int
    timestamp_ms: int | None = Field(default=None, description="the original record's timestamp")
    error_type: str = Field(description="exception class, fully qualified")
    error: str = Field(max_length=MAX_EXCEPTION_MESSAGE, description="exception message (truncated)")
    attempts: int = Field(ge=1)
    value_location: Literal["inline", "s3"] = "inline"
    headers_dropped: bool = Field(default=False, description="original headers too large to keep")
    note: str | None = Field(default=None, max_length=MAX_EXCEPTION_MESSAGE)

    def to_headers(self) -> list[tuple[str, bytes]]:
        pairs = [
            (DLT_ID, str(self.dead_letter_id)),
            (DLT_SCHEMA_VERSION, self.schema_version),
            (DLT_FAILED_AT, self.failed_at.isoformat()),
            (DLT_SERVICE, self.service),
            (DLT_CONSUMER_GROUP, self.consumer_group),
            (DLT_ORIGINAL_TOPIC, self.topic),
            (DLT_ORIGINAL_PARTITION, str(self.partition)),
            (DLT_ORIGINAL_OFFSET, str(self.offset)),
            (DLT_EXCEPTION_FQCN, self.error_type),
            (DLT_EXCEPTION_MESSAGE, self.error),
            (DLT_ATTEMPTS, str(self.attempts)),
            (DLT_VALUE_LOCATION, self.value_location),
        ]
        if self.timestamp_ms is not None:
            pairs.append((DLT_ORIGINAL_TIMESTAMP, str(self.timestamp_ms)))
        if self.headers_dropped:
            pairs.append((DLT_HEADERS_DROPPED, "true"))
        if self.note:
            pairs.append((DLT_NOTE, self.note))
        return [(k, v.encode()) for k, v in pairs]

    @classmethod
    def from_headers(cls, headers: Any) -> DeadLetter:
        """Parse the ``dlt-*`` headers of a dead-letter record (a mapping or (name, bytes) pairs)."""
        items = headers.items() if hasattr(headers, "items") else headers
        found = {k: (v or b"").decode("utf-8", "replace") for k, v in items if k.startswith(DLT_PREFIX)}
        timestamp = found.get(DLT_ORIGINAL_TIMESTAMP)
        return cls(
            dead_letter_id=uuid.UUID(found[DLT_ID]),
            schema_version=found.get(DLT_SCHEMA_VERSION, SCHEMA_VERSION),
            failed_at=datetime.fromisoformat(found[DLT_FAILED_AT]),
            service=found[DLT_SERVICE],
            consumer_group=found[DLT_CONSUMER_GROUP],
            topic=found[DLT_ORIGINAL_TOPIC],
            partition=int(found[DLT_ORIGINAL_PARTITION]),
            offset=int(found[DLT_ORIGINAL_OFFSET]),
            timestamp_ms=int(timestamp) if timestamp else None,
            error_type=found[DLT_EXCEPTION_FQCN],
            error=found[DLT_EXCEPTION_MESSAGE],
            attempts=int(found[DLT_ATTEMPTS]),
            # A str from the headers; the model validates it against its Literal (a bad value is a ValidationError).
            value_location=found.get(DLT_VALUE_LOCATION, "inline"),  # type: ignore[arg-type]
            headers_dropped=found.get(DLT_HEADERS_DROPPED) == "true",
            note=found.get(DLT_NOTE),
        )


class ReplayedRecord(_Model):
    dead_letter_id: uuid.UUID
    topic: str = Field(description="the event topic the record came from")
    partition: int
    offset: int
    error_type: str


class DlqReplay(_Model):
    """One ``avatarctl replay-dlq`` run, on ``avatarflow.dlq-replays``: what went back to which group."""

    replay_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: str = SCHEMA_VERSION
    replayed_at: AwareDatetime = Field(default_factory=utcnow)
    consumer_group: str
    dead_letter_topic: str
    retry_topic: str
    filters: dict[str, str] = Field(default_factory=dict, description="the selection the operator asked for")
    records: list[ReplayedRecord]


EVENT_MODELS: dict[Topic, type[Envelope]] = {
    Topic.IMAGE_UPLOADED: ImageUploaded,
    Topic.FACE_VALIDATED: FaceValidated,
    Topic.FACE_REJECTED: FaceRejected,
    Topic.AVATAR_MATTED: AvatarMatted,
    Topic.AVATAR_RENDERED: AvatarRendered,
    Topic.AVATAR_FAILED: AvatarFailed,
}

TERMINAL_EVENT_TYPES = frozenset({"face.rejected", "avatar.rendered", "avatar.failed"})
