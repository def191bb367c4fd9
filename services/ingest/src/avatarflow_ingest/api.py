"""HTTP upload API: multipart upload and the presigned (direct-to-S3) flow."""

import uuid
from typing import Annotated, Literal

import jwt
from avatarflow_contracts import ImageUploaded, new_trace_id
from avatarflow_imaging.admission import Refusal, admit
from avatarflow_runtime.auth import AuthError, Principal
from avatarflow_runtime.errors import PermanentError, TransientError
from avatarflow_runtime.http_auth import editor_of
from avatarflow_runtime.keys import original_key
from avatarflow_runtime.logging import get_logger
from avatarflow_runtime.service import ServiceRuntime
from fastapi import APIRouter, Depends, File, Path, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .ratelimit import RateLimiter
from .settings import IngestSettings

log = get_logger("avatarflow.ingest")
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


ERROR_RESPONSES = {
    400: {"model": ErrorBody},
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    413: {"model": ErrorBody},
    415: {"model": ErrorBody},
    422: {"model": ErrorBody},
    429: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


def build_router(runtime: ServiceRuntime, settings: IngestSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["uploads"])
    limiter = RateLimiter(settings.ingest_rate_limit_per_minute)
    store = runtime.store
    assert store is not None

    def editor(request: Request, space_id: SpaceId) -> Principal:
        return editor_of(request, settings, space_id)

    def rate_limited(principal: Principal) -> JSONResponse | None:
        allowed, retry_after = limiter.allow(principal.subject)
        if allowed:
            return None
        return JSONResponse(
            {"error": "rate_limited", "detail": "Too many uploads; please wait a moment and try again."},
            status_code=429,
            headers={"Retry-After": str(max(1, int(retry_after + 0.999)))},
        )

    def refusal(exc: Refusal) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=exc.status_code)

    async def publish_or_undo(event: ImageUploaded) -> JSONResponse | None:
        """Publish image.uploaded; if that fails, delete the stored original so nothing is half-done."""
        try:
            await runtime.bus.publish(event)
            return None
        except Exception as exc:
            log.error("publish_failed_undoing_upload", upload_id=str(event.upload_id), error=type(exc).__name__)
            try:
                await store.delete(event.original.key)
            except Exception:
                log.error("undo_delete_failed", upload_id=str(event.upload_id))
            return JSONResponse(
                {"error": "temporarily_unavailable", "detail": "Upload service is busy; please try again."},
                status_code=503,
                headers={"Retry-After": "5"},
            )

    async def discard(key: str) -> None:
        """Delete a refused direct upload (its key is its ticket's alone). Best effort: a failure
        leaves an object no event refers to, and the refusal still reaches the client."""
        try:
            await store.delete(key)
        except Exception as exc:
            log.warning("discard_failed", error=type(exc).__name__)

    def accepted(event: ImageUploaded) -> JSONResponse:
        body = UploadAccepted(
            upload_id=event.upload_id,
            status_url=f"{settings.ingest_status_base_url}/v1/spaces/{event.space_id}/avatar-status",
            sha256=event.original.sha256,
            size=event.original.size,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=202)

    @router.post(
        "/spaces/{space_id}/uploads",
        status_code=202,
        response_model=UploadAccepted,
        responses=ERROR_RESPONSES,
        summary="Upload an avatar image for a space (multipart field 'file')",
    )
    async def upload(
        space_id: SpaceId,
        request: Request,
        principal: Annotated[Principal, Depends(editor)],
        file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or HEIC/HEIF, up to the size limit")],
    ) -> JSONResponse:
        if (limited := rate_limited(principal)) is not None:
            return limited
        # Read at most one byte past the limit: enough to know it is too large, never more.
        data = await file.read(settings.ingest_max_upload_bytes + 1)
        try:
            admitted = admit(data, **settings.admission_limits())
        except Refusal as exc:
            log.info("upload_refused", space_id=space_id, code=exc.code)
            return refusal(exc)
        upload_id = uuid.uuid4()
        try:
            ref = await store.put_bytes(original_key(upload_id, admitted.content_type), data, admitted.content_type)
        except (TransientError, PermanentError) as exc:
            log.error("store_failed", error=str(exc))
            return JSONResponse(
                {"error": "temporarily_unavailable", "detail": "Storage is unavailable; please try again."},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        event = ImageUploaded(
            upload_id=upload_id,
            space_id=space_id,
            editor_id=principal.subject,
            original=ref,
            source="ingest",
            trace_id=new_trace_id(),
        )
        if (failed := await publish_or_undo(event)) is not None:
            return failed
        log.info("upload_accepted", upload_id=str(upload_id), space_id=space_id, size=ref.size)
        return accepted(event)

    @router.post(
        "/spaces/{space_id}/uploads/presigned",
        response_model=PresignedUpload,
        responses=ERROR_RESPONSES,
        summary="Start a direct-to-storage upload for large files: PUT to put_url, then confirm",
    )
    async def presign(
        space_id: SpaceId, body: PresignRequest, principal: Annotated[Principal, Depends(editor)]
    ) -> JSONResponse:
        if (limited := rate_limited(principal)) is not None:
            return limited
        if body.size > settings.ingest_max_upload_bytes:
            return refusal(Refusal(413, "file_too_large", "The file is larger than the upload limit."))
        content_type = "image/heif" if body.content_type == "image/heic" else body.content_type
        upload_id = uuid.uuid4()
        key = original_key(upload_id, content_type)
        expires = settings.ingest_presigned_expiry_s
        ticket = jwt.encode(
            {
                "upload_id": str(upload_id),
                "space_id": space_id,
                "sub": principal.subject,
                "key": key,
                "content_type": content_type,
                "purpose": "presigned-upload",
                "exp": int(__import__("time").time()) + expires,
            },
            settings.jwt_secret.get_secret_value(),
            algorithm="HS256",
        )
        result = PresignedUpload(
            upload_id=upload_id,
            put_url=store.presign_put(key, content_type, expires),
            expires_in=expires,
            upload_ticket=ticket,
            confirm_url=f"/v1/spaces/{space_id}/uploads/{upload_id}/confirm",
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
        space_id: SpaceId,
        upload_id: uuid.UUID,
        body: ConfirmRequest,
        principal: Annotated[Principal, Depends(editor)],
    ) -> JSONResponse:
        try:
            ticket = jwt.decode(body.upload_ticket, settings.jwt_secret.get_secret_value(), algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise AuthError("invalid or expired upload ticket") from exc
        if (
            ticket.get("purpose") != "presigned-upload"
            or ticket.get("upload_id") != str(upload_id)
            or ticket.get("space_id") != space_id
            or ticket.get("sub") != principal.subject
        ):
            raise AuthError("upload ticket does not match this upload")
        key = str(ticket["key"])
        try:
            data = await store.read_untrusted(key, max_bytes=settings.ingest_max_upload_bytes)
        except PermanentError as exc:
            if exc.code == "object_too_large":
                await discard(key)
                return refusal(Refusal(413, exc.code, "The uploaded file is larger than the upload limit."))
            return refusal(Refusal(404, exc.code, "The uploaded file was not found; upload it again."))
        except TransientError:
            return JSONResponse({"error": "temporarily_unavailable", "detail": "Storage unavailable."}, status_code=503)
        try:
            admitted = admit(data, **settings.admission_limits())
        except Refusal as exc:
            await discard(key)
            return refusal(exc)
        # Re-store with our own metadata (sha256) so downstream integrity checks hold.
        ref = await store.put_bytes(key, data, admitted.content_type)
        event = ImageUploaded(
            upload_id=upload_id,
            space_id=space_id,
            editor_id=principal.subject,
            original=ref,
            source="presigned",
            event_id=uuid.uuid5(upload_id, "image.uploaded"),
        )
        if (failed := await publish_or_undo(event)) is not None:
            return failed
        return accepted(event)

    return router
