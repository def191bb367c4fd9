"""The pure core: how events change one upload's status, and what a space shows.

No I/O here. Everything is a function of values so the rules can be tested exhaustively.

Per upload the status only moves forward::

    processing(uploaded) < processing(validated) < processing(matted) < terminal

A terminal status (ready, rejected, failed) never changes once set; the first terminal event
applied wins (a valid pipeline run emits exactly one terminal outcome per upload, possibly
redelivered). Facts that do not decide the status (the upload time, warnings, the original
object key) are merged from every event, so a late ``image.uploaded`` still tells us when the
upload happened even after the upload already ended.

Per space, THE LATEST UPLOAD WINS: the latest upload is the one with the greatest
``(order_at, upload_id)`` where ``order_at`` is the ``occurred_at`` of its ``image.uploaded`` event
(or, until that event is seen, the earliest ``occurred_at`` of any of its events). Ties on the
timestamp are broken by the upload_id string, so every replica picks the same upload.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from avatarflow_contracts import (
    SUPPORT_TICKET_URL,
    AvatarFailed,
    AvatarMatted,
    AvatarRendered,
    Envelope,
    FaceRejected,
    FaceValidated,
    ImageUploaded,
    ReasonCode,
    WarningCode,
    editor_message,
    order_reasons,
)

UploadStatus = Literal["processing", "ready", "rejected", "failed"]
Stage = Literal["uploaded", "validated", "matted"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"ready", "rejected", "failed"})

# Processing stages in pipeline order; the index is the stage's rank.
STAGE_ORDER: tuple[Stage, ...] = ("uploaded", "validated", "matted")

# The avatar pack's asset names, in the order a viewer needs them.
PACK_ASSETS: tuple[str, ...] = ("poster", "idle_loop", "manifest", "viseme_atlas", "preview_clip")
# A pack's alternate encodings are stored as "alternate:<file name>" entries after PACK_ASSETS.
ALTERNATE_PREFIX = "alternate:"


def file_name(ref: AssetRef) -> str:
    """The pack file an object holds (its key's last segment, the name the manifest uses)."""
    return ref.key.rsplit("/", 1)[-1]


PROMPT_TEMPLATE = (
    "Your avatar image couldn't be used: {message} Upload a different image or choose one of the pre-generated avatars."
)
FACE_COVERING_TEMPLATE = (
    "Your avatar image couldn't be used: {message} "
    "You can also choose one of the pre-generated avatars in the meantime."
)
FAILED_ADVICE: dict[str, str] = {
    "retry_upload": "Please upload the image again, or choose one of the pre-generated avatars.",
    "upload_different_image": "Upload a different image or choose one of the pre-generated avatars.",
    "contact_support": "Please open a support ticket, or choose one of the pre-generated avatars.",
}
FAILED_TEMPLATE = "Your avatar image couldn't be processed: {message} {advice}"


@dataclass(frozen=True)
class AssetRef:
    """An object of an avatar pack: where it lives and its digest (used as cache buster)."""

    bucket: str
    key: str
    content_type: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Failure:
    stage: str
    error_code: str
    editor_message: str
    retry_advice: str


@dataclass(frozen=True)
class UploadState:
    upload_id: str
    space_id: str
    editor_id: str
    status: UploadStatus
    stage: Stage | None
    # occurred_at of image.uploaded; None until that event is seen.
    uploaded_at: datetime | None
    # The earliest occurred_at of any event seen for this upload (ordering fallback).
    first_seen_at: datetime
    # occurred_at of the event that set the current status.
    status_at: datetime
    original_key: str | None = None
    terminal_event_type: str | None = None
    reasons: tuple[str, ...] = ()
    editor_messages: tuple[str, ...] = ()
    checks: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    pack: tuple[tuple[str, AssetRef], ...] = ()
    failure: Failure | None = None

    @property
    def order_at(self) -> datetime:
        return self.uploaded_at if self.uploaded_at is not None else self.first_seen_at

    @property
    def order_key(self) -> tuple[datetime, str]:
        return (self.order_at, self.upload_id)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def pack_assets(self) -> dict[str, AssetRef]:
        return dict(self.pack)


def _rank(state: UploadState) -> int:
    if state.is_terminal:
        return len(STAGE_ORDER)
    return STAGE_ORDER.index(state.stage) if state.stage else -1


def _asset(ref: Any) -> AssetRef:
    return AssetRef(bucket=ref.bucket, key=ref.key, content_type=ref.content_type, sha256=ref.sha256, size=ref.size)


def _merge_warnings(current: Iterable[str], new: Iterable[str]) -> tuple[str, ...]:
    # Sorted set: the same result whatever order the events came in.
    return tuple(sorted({*current, *(str(w) for w in new)}))


def _event_outcome(event: Envelope) -> dict[str, Any]:
    """The status-deciding fields an event would set on its own."""
    if isinstance(event, ImageUploaded):
        return {"status": "processing", "stage": "uploaded"}
    if isinstance(event, FaceValidated):
        return {"status": "processing", "stage": "validated"}
    if isinstance(event, AvatarMatted):
        return {"status": "processing", "stage": "matted"}
    if isinstance(event, AvatarRendered):
        pack = (
            ("poster", _asset(event.poster)),
            ("idle_loop", _asset(event.idle_loop)),
            ("manifest", _asset(event.manifest)),
            ("viseme_atlas", _asset(event.viseme_atlas)),
            ("preview_clip", _asset(event.preview_clip)),
            *((ALTERNATE_PREFIX + file_name(_asset(ref)), _asset(ref)) for ref in event.alternates),
        )
        return {"status": "ready", "stage": None, "pack": pack}
    if isinstance(event, FaceRejected):
        reasons = tuple(str(r) for r in order_reasons(list(event.reasons)))
        checks = tuple(
            c.model_dump(mode="json")
            for c in sorted(event.checks, key=lambda c: (c.passed, c.name))  # failed checks first
        )
        return {
            "status": "rejected",
            "stage": None,
            "reasons": reasons,
            "editor_messages": tuple(event.editor_messages),
            "checks": checks,
        }
    if isinstance(event, AvatarFailed):
        failure = Failure(
            stage=event.stage,
            error_code=event.error_code,
            editor_message=event.editor_message,
            retry_advice=event.retry_advice,
        )
        return {"status": "failed", "stage": None, "failure": failure}
    raise TypeError(f"the notifier does not handle {type(event).__name__}")


def _event_warnings(event: Envelope) -> tuple[str, ...]:
    warnings = getattr(event, "warnings", None) or ()
    return tuple(str(w) for w in warnings)


def _event_original_key(event: Envelope) -> str | None:
    original = getattr(event, "original", None)
    return original.key if original is not None else None


def apply_event(state: UploadState | None, event: Envelope) -> UploadState:
    """Fold one event into an upload's state. Idempotent, and order-independent for a valid run.

    ``state`` must be None or the state of ``event.upload_id``.
    """
    outcome = _event_outcome(event)
    uploaded_at = event.occurred_at if isinstance(event, ImageUploaded) else None
    if state is None:
        return UploadState(
            upload_id=str(event.upload_id),
            space_id=event.space_id,
            editor_id=event.editor_id,
            uploaded_at=uploaded_at,
            first_seen_at=event.occurred_at,
            status_at=event.occurred_at,
            original_key=_event_original_key(event),
            terminal_event_type=event.event_type if outcome["status"] in TERMINAL_STATUSES else None,
            warnings=_merge_warnings((), _event_warnings(event)),
            **outcome,
        )
    if state.upload_id != str(event.upload_id) or state.space_id != event.space_id:
        # An upload id never moves between spaces; such an event is a bug or forged.
        raise ValueError("event does not belong to this upload")

    # Facts merged from every event, whatever the status does.
    merged = dataclasses.replace(
        state,
        uploaded_at=_min_time(state.uploaded_at, uploaded_at),
        first_seen_at=min(state.first_seen_at, event.occurred_at),
        original_key=state.original_key or _event_original_key(event),
        warnings=_merge_warnings(state.warnings, _event_warnings(event)),
    )
    if merged.is_terminal:
        return merged  # terminal never changes once set
    candidate = dataclasses.replace(
        merged,
        status_at=event.occurred_at,
        terminal_event_type=event.event_type if outcome["status"] in TERMINAL_STATUSES else None,
        **outcome,
    )
    if _rank(candidate) > _rank(merged):
        return candidate
    return merged


def _min_time(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def fold_events(events: Iterable[Envelope]) -> dict[str, UploadState]:
    """Apply events in the given order; returns the state of every upload seen."""
    states: dict[str, UploadState] = {}
    for event in events:
        key = str(event.upload_id)
        states[key] = apply_event(states.get(key), event)
    return states


# ---- the space-level rule -------------------------------------------------------------------


def latest_upload(uploads: Iterable[UploadState]) -> UploadState | None:
    """The space's latest upload: greatest (order_at, upload_id)."""
    return max(uploads, key=lambda u: u.order_key, default=None)


def newest_ready_upload(uploads: Iterable[UploadState]) -> UploadState | None:
    return latest_upload(u for u in uploads if u.status == "ready")


@dataclass(frozen=True)
class Pick:
    """An editor's choice of a pre-generated avatar, at server time ``picked_at``."""

    avatar_id: str
    picked_at: datetime


@dataclass(frozen=True)
class CurrentAvatar:
    """What end users see. ``kind`` is never derived from a rejection or a failure."""

    kind: Literal["custom", "pregenerated", "default"]
    avatar_id: str | None = None  # the catalogue id for pregenerated avatars
    upload_id: str | None = None  # the ready upload for custom avatars (never shown publicly)
    assets: tuple[tuple[str, AssetRef], ...] = ()


DEFAULT_AVATAR = CurrentAvatar(kind="default")


def choose_avatar(newest_ready: UploadState | None, pick: Pick | None) -> CurrentAvatar:
    """The newest editor intent that produced a usable avatar wins.

    Candidates are the newest READY upload (timed by its upload time) and the latest pick of a
    pre-generated avatar (timed by when it was picked). A newer upload that was rejected or failed
    does not remove an older ready avatar: end users keep seeing the last good one, and whether a
    rejection exists stays invisible to them. An upload finishing late becomes the avatar only if
    nothing newer is ready, which is the same outcome as if it had finished on time.
    """
    upload_candidate = newest_ready
    if pick is not None and (upload_candidate is None or pick.picked_at >= upload_candidate.order_at):
        return CurrentAvatar(kind="pregenerated", avatar_id=pick.avatar_id)
    if upload_candidate is not None:
        return CurrentAvatar(kind="custom", upload_id=upload_candidate.upload_id, assets=upload_candidate.pack)
    return DEFAULT_AVATAR


@dataclass(frozen=True)
class ReasonView:
    code: str
    message: str


@dataclass(frozen=True)
class Prompt:
    """The editor prompt: stays until the editor re-uploads, picks an avatar or dismisses it."""

    upload_id: str
    kind: Literal["rejected", "failed"]
    message: str
    reasons: tuple[ReasonView, ...]
    actions: tuple[str, ...]
    support_ticket_url: str | None = None
    retry_advice: str | None = None


@dataclass(frozen=True)
class Hint:
    code: str
    message: str


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def _reason_message(code: str, fallback: str | None) -> str:
    try:
        return editor_message(code)
    except KeyError:
        return fallback or code


def build_prompt(latest: UploadState | None, dismissed_upload_id: str | None, *, support_url: str) -> Prompt | None:
    """The prompt for the space's latest upload, or None.

    Only the latest upload can raise it (an older upload's rejection is moot once the editor
    re-uploaded), and only until the editor acted on that upload (dismissed it, or picked a
    pre-generated avatar while it was the latest upload).
    """
    if latest is None or latest.status not in ("rejected", "failed"):
        return None
    if dismissed_upload_id == latest.upload_id:
        return None
    if latest.status == "failed":
        assert latest.failure is not None
        advice = latest.failure.retry_advice
        actions = ["upload_different_image", "choose_pregenerated", "dismiss"]
        if advice == "contact_support":
            actions.insert(0, "open_support_ticket")
        message = FAILED_TEMPLATE.format(
            message=_sentence(latest.failure.editor_message),
            advice=FAILED_ADVICE.get(advice, FAILED_ADVICE["retry_upload"]),
        )
        return Prompt(
            upload_id=latest.upload_id,
            kind="failed",
            message=message,
            reasons=(),
            actions=tuple(actions),
            support_ticket_url=support_url if advice == "contact_support" else None,
            retry_advice=advice,
        )
    fallbacks = dict(zip(latest.reasons, latest.editor_messages, strict=False))
    reasons = tuple(ReasonView(code=c, message=_reason_message(c, fallbacks.get(c))) for c in latest.reasons)
    if ReasonCode.FACE_COVERING in latest.reasons:
        # A face covering is the editor's choice, not a wrong image: offer help, not a re-upload.
        covering = next(r for r in reasons if r.code == ReasonCode.FACE_COVERING)
        return Prompt(
            upload_id=latest.upload_id,
            kind="rejected",
            message=FACE_COVERING_TEMPLATE.format(message=_sentence(covering.message)),
            reasons=(covering, *(r for r in reasons if r.code != ReasonCode.FACE_COVERING)),
            actions=("open_support_ticket", "choose_pregenerated", "dismiss"),
            support_ticket_url=SUPPORT_TICKET_URL,
        )
    first = reasons[0] if reasons else ReasonView(code="unknown", message="")
    return Prompt(
        upload_id=latest.upload_id,
        kind="rejected",
        message=PROMPT_TEMPLATE.format(message=_sentence(first.message)),
        reasons=reasons,
        actions=("upload_different_image", "choose_pregenerated", "dismiss"),
    )


HINT_CODES: tuple[str, ...] = (WarningCode.LOW_MATTE_CONFIDENCE, WarningCode.SOFT_FOCUS, WarningCode.BUSY_BACKGROUND)


def build_hints(latest: UploadState | None) -> tuple[Hint, ...]:
    """Non-blocking hints (matting warnings, soft focus, busy background) for the latest upload."""
    if latest is None:
        return ()
    return tuple(Hint(code=c, message=editor_message(c)) for c in HINT_CODES if c in latest.warnings)


@dataclass(frozen=True)
class SpaceView:
    """Everything an editor sees about a space; derived, never stored by itself."""

    space_id: str
    latest: UploadState | None
    avatar: CurrentAvatar
    prompt: Prompt | None
    hints: tuple[Hint, ...] = field(default=())


def space_view(
    space_id: str,
    uploads: Iterable[UploadState],
    *,
    pick: Pick | None,
    dismissed_upload_id: str | None,
    support_url: str,
) -> SpaceView:
    """The space-level rule over all of a space's uploads (the store evaluates it with queries)."""
    uploads = list(uploads)
    latest = latest_upload(uploads)
    return SpaceView(
        space_id=space_id,
        latest=latest,
        avatar=choose_avatar(newest_ready_upload(uploads), pick),
        prompt=build_prompt(latest, dismissed_upload_id, support_url=support_url),
        hints=build_hints(latest),
    )


def parse_upload_id(value: str) -> str:
    """Canonical text form of an upload id (raises ValueError for anything else)."""
    return str(uuid.UUID(value))
