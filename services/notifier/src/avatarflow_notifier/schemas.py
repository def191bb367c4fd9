"""HTTP response and request models (the OpenAPI schema). Built from the pure core's values."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from avatarflow_contracts import editor_message
from pydantic import BaseModel, Field

from .core.status import CurrentAvatar, Hint, Prompt, SpaceView, UploadState


class ErrorOut(BaseModel):
    error: str = Field(description="machine-readable code, e.g. unauthorized, not_found")
    detail: str


class AssetOut(BaseModel):
    url: str = Field(description="same-origin URL streaming the asset from S3")
    content_type: str


class PublicAvatarOut(BaseModel):
    """What end users see: the current ready avatar or the default one, nothing else."""

    kind: Literal["custom", "pregenerated", "default"]
    poster: AssetOut | None
    idle_loop: AssetOut | None
    manifest: AssetOut | None
    viseme_atlas: AssetOut | None = None
    preview_clip: AssetOut | None = None
    alternates: list[AssetOut] = Field(default_factory=list, description="the manifest's alternates, in its order")
    files: dict[str, AssetOut] = Field(
        default_factory=dict,
        description="every file of the pack by the name manifest.json gives it (resolve manifest file names here)",
    )


class EditorAvatarOut(PublicAvatarOut):
    avatar_id: str | None = Field(description="catalogue id when kind is pregenerated")
    upload_id: str | None = Field(description="the ready upload when kind is custom")


class CodeMessageOut(BaseModel):
    code: str
    message: str


class CheckOut(BaseModel):
    name: str
    code: str
    score: float
    threshold: float
    fails_when: str
    passed: bool
    severity: str = "reject"


class FailureOut(BaseModel):
    stage: str
    error_code: str
    editor_message: str
    retry_advice: str


class PackAssetOut(BaseModel):
    key: str
    content_type: str
    size: int
    sha256: str


class UploadOut(BaseModel):
    upload_id: str
    status: Literal["processing", "ready", "rejected", "failed"]
    stage: Literal["uploaded", "validated", "matted"] | None
    uploaded_at: datetime | None = Field(description="occurred_at of image.uploaded, once seen")
    status_changed_at: datetime
    reasons: list[CodeMessageOut] = Field(description="rejection reasons, most actionable first")
    checks: list[CheckOut] = Field(description="the validator's scores (rejections), failed first")
    warnings: list[CodeMessageOut]
    failure: FailureOut | None
    pack: dict[str, PackAssetOut] | None = Field(description="avatar pack object keys when ready")


class PromptOut(BaseModel):
    upload_id: str
    kind: Literal["rejected", "failed"]
    message: str
    reasons: list[CodeMessageOut]
    actions: list[Literal["upload_different_image", "choose_pregenerated", "dismiss", "open_support_ticket"]]
    support_ticket_url: str | None
    retry_advice: str | None


class AvatarStatusOut(BaseModel):
    space_id: str
    version: int = Field(description="increases with every change; SSE event ids carry it")
    status: Literal["none", "processing", "ready", "rejected", "failed"] = Field(
        description="the latest upload's status"
    )
    avatar: EditorAvatarOut
    latest_upload: UploadOut | None
    prompt: PromptOut | None
    hints: list[CodeMessageOut] = Field(description="non-blocking hints (busy background, rough edges)")


class UploadsPageOut(BaseModel):
    items: list[UploadOut]
    next_cursor: str | None


class CatalogueItemOut(BaseModel):
    avatar_id: str
    name: str
    poster: AssetOut
    is_default: bool


class CatalogueOut(BaseModel):
    items: list[CatalogueItemOut]


class ChoosePregeneratedIn(BaseModel):
    avatar_id: str = Field(min_length=1, max_length=64)


def _message_or_code(code: str) -> str:
    try:
        return editor_message(code)
    except KeyError:
        return code


def upload_out(state: UploadState) -> UploadOut:
    return UploadOut(
        upload_id=state.upload_id,
        status=state.status,
        stage=state.stage,
        uploaded_at=state.uploaded_at,
        status_changed_at=state.status_at,
        reasons=[CodeMessageOut(code=c, message=_message_or_code(c)) for c in state.reasons],
        checks=[CheckOut.model_validate(c) for c in state.checks],
        warnings=[CodeMessageOut(code=c, message=_message_or_code(c)) for c in state.warnings],
        failure=FailureOut(**vars(state.failure)) if state.failure else None,
        pack={
            name: PackAssetOut(key=ref.key, content_type=ref.content_type, size=ref.size, sha256=ref.sha256)
            for name, ref in state.pack
        }
        or None,
    )


def prompt_out(prompt: Prompt | None) -> PromptOut | None:
    if prompt is None:
        return None
    return PromptOut(
        upload_id=prompt.upload_id,
        kind=prompt.kind,
        message=prompt.message,
        reasons=[CodeMessageOut(code=r.code, message=r.message) for r in prompt.reasons],
        actions=list(prompt.actions),  # type: ignore[arg-type]
        support_ticket_url=prompt.support_ticket_url,
        retry_advice=prompt.retry_advice,
    )


def hints_out(hints: tuple[Hint, ...]) -> list[CodeMessageOut]:
    return [CodeMessageOut(code=h.code, message=h.message) for h in hints]


def status_out(version: int, view: SpaceView, avatar: EditorAvatarOut) -> AvatarStatusOut:
    return AvatarStatusOut(
        space_id=view.space_id,
        version=version,
        status=view.latest.status if view.latest else "none",
        avatar=avatar,
        latest_upload=upload_out(view.latest) if view.latest else None,
        prompt=prompt_out(view.prompt),
        hints=hints_out(view.hints),
    )


def editor_avatar(avatar: CurrentAvatar, public: PublicAvatarOut) -> EditorAvatarOut:
    return EditorAvatarOut(**public.model_dump(), avatar_id=avatar.avatar_id, upload_id=avatar.upload_id)
