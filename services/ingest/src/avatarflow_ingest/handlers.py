"""HTTP upload API, the service's handlers: a thin router over :class:`~.uploads.UploadService`
(multipart upload and the presigned, direct-to-S3 flow). Routes parse the request, call the service
and turn its outcome into the one error shape (``{error, detail}``); the rules live in the service
and its core."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Literal

from avatarflow_imaging.admission import Refusal
from avatarflow_runtime.auth import Principal
from avatarflow_runtime.http_auth import editor_of
from avatarflow_runtime.service import error_response
from fastapi import APIRouter, Depends, File, Header, Path, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .core.outcomes import Accepted, RateLimited, Unavailable
from .uploads import UploadService

SpaceId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class UploadAccepted(BaseModel):
    upload_id: uuid.UUID
    status_url: str
    sha256: str
    size: int


class ErrorBody(BaseModel):
    error: str
    detail: str


class PresignRequest(BaseModel):
    content_type: Literal["image/jpeg", "image/png", "image/webp", "image/heif", "image/heic"]
    size: int = Field(gt=0)


class PresignedUpload(BaseModel):
    upload_id: uuid.UUID
    put_url: str = Field(description="PUT the file here with the same Content-Type, before expires_in seconds")
    expires_in: int
    upload_ticket: str = Field(description="send back to the confirm endpoint")
    confirm_url: str


class ConfirmRequest(BaseModel):
    upload_ticket: str


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}
router = APIRouter(prefix="/v1", tags=["uploads"])


def upload_service(request: Request) -> UploadService:
    """The app's :class:`UploadService` (``app.state.uploads``, set by the wiring)."""
    return request.app.state.uploads  # type: ignore[no-any-return]


Uploads = Annotated[UploadService, Depends(upload_service)]


def editor(request: Request, space_id: SpaceId, uploads: Uploads) -> Principal:
    return editor_of(request, uploads.settings, space_id)


Editor = Annotated[Principal, Depends(editor)]


def refused(exc: Refusal | RateLimited | Unavailable) -> JSONResponse:
    """The service's refusals in the one error shape, with Retry-After where a retry will do."""
    if isinstance(exc, RateLimited):
        retry_after = str(max(1, int(exc.retry_after_s + 0.999)))
        detail = "Too many uploads; please wait a moment and try again."
        return error_response(429, "rate_limited", detail, {"Retry-After": retry_after})
    if isinstance(exc, Unavailable):
        return error_response(503, "temporarily_unavailable", exc.detail, {"Retry-After": "5"})
    return error_response(exc.status_code, exc.code, exc.message)


async def accepted_answer(uploads: UploadService, outcome: Awaitable[Accepted]) -> JSONResponse:
    """202 with the upload (``Idempotent-Replayed: true`` for an earlier upload of the key), or the refusal."""
    try:
        accepted = await outcome
    except (Refusal, RateLimited, Unavailable) as exc:
        return refused(exc)
    event = accepted.event
    body = UploadAccepted(
        upload_id=event.upload_id,
        status_url=f"{uploads.settings.ingest_status_base_url}/v1/spaces/{event.space_id}/avatar-status",
        sha256=event.original.sha256,
        size=event.original.size,
    )
    response = JSONResponse(body.model_dump(mode="json"), status_code=202)
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.post(
    "/spaces/{space_id}/uploads",
    status_code=202,
    response_model=UploadAccepted,
    responses=ERROR_RESPONSES,
    summary="Upload an avatar image for a space (multipart field 'file')",
)
async def upload(
    space_id: SpaceId,
    principal: Editor,
    uploads: Uploads,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or HEIC/HEIF, up to the size limit")],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Any unique string (a UUID): a retry with the same key and file gets the same "
            "upload instead of a new one; the same key with another file gets 422",
        ),
    ] = None,
) -> JSONResponse:
    return await accepted_answer(uploads, uploads.upload(space_id, principal, file.read, idempotency_key))


@router.post(
    "/spaces/{space_id}/uploads/presigned",
    response_model=PresignedUpload,
    responses=ERROR_RESPONSES,
    summary="Start a direct-to-storage upload for large files: PUT to put_url, then confirm",
)
async def presign(space_id: SpaceId, body: PresignRequest, principal: Editor, uploads: Uploads) -> JSONResponse:
    try:
        grant = uploads.presign(space_id, principal, body.content_type, body.size)
    except (Refusal, RateLimited) as exc:
        return refused(exc)
    result = PresignedUpload(
        upload_id=grant.upload_id,
        put_url=grant.put_url,
        expires_in=grant.expires_in,
        upload_ticket=grant.upload_ticket,
        confirm_url=f"/v1/spaces/{space_id}/uploads/{grant.upload_id}/confirm",
    )
    return JSONResponse(result.model_dump(mode="json"))


@router.post(
    "/spaces/{space_id}/uploads/{upload_id}/confirm",
    status_code=202,
    response_model=UploadAccepted,
    responses=ERROR_RESPONSES,
    summary="Confirm a presigned upload: the stored file is checked, then enters the pipeline",
)
async def confirm(
    space_id: SpaceId, upload_id: uuid.UUID, body: ConfirmRequest, principal: Editor, uploads: Uploads
) -> JSONResponse:
    # A bad or foreign upload ticket raises AuthError: the runtime's 401.
    return await accepted_answer(uploads, uploads.confirm(space_id, upload_id, principal, body.upload_ticket))
