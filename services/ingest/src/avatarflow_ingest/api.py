"""HTTP upload API: multipart upload and the presigned (direct-to-S3) flow."""

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import jwt
from avatarflow_contracts import ImageUploaded, new_trace_id
from avatarflow_imaging.admission import Refusal, admit
from avatarflow_runtime.auth import AuthError, Principal
from avatarflow_runtime.errors import PermanentError, TransientError
from avatarflow_runtime.http_auth import editor_of
from avatarflow_runtime.keys import confirm_record_key, idempotency_record_key, original_key
from avatarflow_runtime.logging import get_logger, security_event
from avatarflow_runtime.ratelimit import RateLimiter
from avatarflow_runtime.service import ServiceRuntime
from avatarflow_runtime.storage import sha256_hex
from avatarflow_runtime.tracing import current_trace_id
from fastapi import APIRouter, Depends, File, Header, Path, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .idempotency import KEY_PATTERN, Decision, IdempotencyRecord, confirm_may_republish, decide
from .settings import IngestSettings

log = get_logger("avatarflow.ingest")
MAX_RECORD_BYTES = 64 * 1024  # an idempotency record is ~1 KB
# Longest one publish try can take: the producer's 15 s request timeout plus backoff (service.py).
PUBLISH_TRY_S = 20
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
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
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
        security_event(
            "rate_limited", status=429, subject=principal.subject, space_id=principal.space_id, retry_after=retry_after
        )
        return JSONResponse(
            {"error": "rate_limited", "detail": "Too many uploads; please wait a moment and try again."},
            status_code=429,
            headers={"Retry-After": str(max(1, int(retry_after + 0.999)))},
        )

    def refusal(exc: Refusal) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=exc.status_code)

    def unavailable(detail: str) -> JSONResponse:
        return JSONResponse(
            {"error": "temporarily_unavailable", "detail": detail}, status_code=503, headers={"Retry-After": "5"}
        )

    async def publish(event: ImageUploaded) -> JSONResponse | None:
        """Publish image.uploaded; None once the broker confirmed it, else a 503 to answer.

        A failed publish never deletes the stored original: the broker may have stored the record even
        though the publish raised (a stalled broker answers after our timeout). Every upload is keyed
        (the client's Idempotency-Key, else one derived from the file), so the retry publishes this
        same event id again and converges on this upload instead of orphaning its event."""
        try:
            await runtime.bus.publish(event, attempts=settings.ingest_publish_attempts)
            return None
        except Exception as exc:
            log.error("publish_failed", upload_id=str(event.upload_id), error=type(exc).__name__)
            return unavailable("Upload service is busy; please try again.")

    async def load_record(key: str) -> tuple[IdempotencyRecord | None, bool]:
        """(the record if this version can read it, whether an object is there at all)."""
        try:
            raw = await store.read_untrusted(key, max_bytes=MAX_RECORD_BYTES)
        except PermanentError as exc:
            if exc.code == "object_missing":
                return None, False
            raise TransientError(f"idempotency record unreadable: {exc.code}") from exc
        record = IdempotencyRecord.from_bytes(raw)
        if record is None:
            log.warning("idempotency_record_unreadable")
        return record, True

    async def replay(key: str, record: IdempotencyRecord, *, replayed: bool, announce: bool = True) -> JSONResponse:
        """Answer with the recorded upload; publish its event again unless the broker confirmed it."""
        event = record.image_uploaded()
        if not record.published:
            if (failed := await publish(event)) is not None:
                await mark(key, record.model_copy(update={"publish_failed": True}))
                return failed
            try:
                published = record.model_copy(update={"published": True})
                await store.put_bytes(key, published.to_bytes(), "application/json")
            except (TransientError, PermanentError) as exc:
                # Harmless: a later retry publishes the same event id again and the stages drop it.
                log.warning("idempotency_record_not_updated", error=str(exc))
        log.info(
            "upload_accepted",
            upload_id=str(event.upload_id),
            space_id=event.space_id,
            size=event.original.size,
            replayed=replayed,
        )
        response = accepted(event)
        if replayed and announce:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    async def mark(key: str, record: IdempotencyRecord) -> None:
        """Best effort: a record left unmarked only delays a presigned retry until the in-flight bound."""
        try:
            await store.put_bytes(key, record.to_bytes(), "application/json")
        except (TransientError, PermanentError) as exc:
            log.warning("idempotency_record_not_updated", error=str(exc))

    async def create_upload(
        key: str, stale: bool, space_id: str, principal: Principal, data: bytes, content_type: str, digest: str
    ) -> IdempotencyRecord | None:
        """Store the file and its record; None when a concurrent request with this key created the
        record first. Only an absent record may be created; a ``stale`` one (expired, unreadable)
        is replaced."""
        event = await store_original(space_id, principal, data, content_type)
        created = IdempotencyRecord.for_event(event, digest, datetime.now(UTC))
        try:
            await store.put_bytes(key, created.to_bytes(), "application/json", if_absent=not stale)
            return created
        except (TransientError, PermanentError) as exc:
            # No record, no upload: our copy of the file is not needed. Either S3 failed (the client
            # gets 503 and retries) or a concurrent request with this key won the race.
            await discard(event.original.key)
            if isinstance(exc, PermanentError) and exc.code == "object_exists":
                return None
            raise

    async def idempotent_upload(
        idempotency_key: str | None, space_id: str, principal: Principal, data: bytes, content_type: str
    ) -> JSONResponse:
        """Make or replay the upload bound to the client's key, or (``None``) to a key derived from the
        file. A derived key binds only while its publish outcome is unknown: once the broker confirmed
        the event, the same file uploaded again is a new upload, as a client without a key expects."""
        digest = sha256_hex(data)
        derived = idempotency_key is None
        # No client key contains a space (KEY_PATTERN), so a derived key never shares a client's record.
        client_key = f"derived sha256 {digest}" if idempotency_key is None else idempotency_key
        key = idempotency_record_key(space_id, principal.subject, client_key)
        window = timedelta(seconds=settings.ingest_idempotency_window_s)
        record, present = await load_record(key)
        decision = decide(record, digest, datetime.now(UTC), window)
        if derived and record is not None and record.published:
            decision = Decision.NEW  # replaced: the earlier upload of this file is settled
        if decision is Decision.NEW:
            # An object there that binds nothing (expired, unreadable) is stale: replaced, not raced.
            created = await create_upload(key, present, space_id, principal, data, content_type, digest)
            if created is not None:
                return await replay(key, created, replayed=False)
            record, _ = await load_record(key)
            # A concurrent upload won: with a derived key that is this same file, so this answers with it.
            decision = decide(record, digest, datetime.now(UTC), window)
        if decision is Decision.CONFLICT:
            return refusal(
                Refusal(422, "idempotency_key_reused", "This Idempotency-Key was already used for another file.")
            )
        if record is None or decision is not Decision.REPLAY:
            return unavailable("Another request with this Idempotency-Key is in progress; please try again.")
        return await replay(key, record, replayed=True, announce=not derived)

    async def store_original(space_id: str, principal: Principal, data: bytes, content_type: str) -> ImageUploaded:
        """Store the admitted file under a fresh upload id; the event that announces it (unpublished)."""
        upload_id = uuid.uuid4()
        ref = await store.put_bytes(original_key(upload_id, content_type), data, content_type)
        return ImageUploaded(
            upload_id=upload_id,
            space_id=space_id,
            editor_id=principal.subject,
            original=ref,
            source="ingest",
            # The request's trace (tracing on, or a caller's traceparent): one upload, one trace.
            trace_id=current_trace_id() or new_trace_id(),
            # Derived, so every publish of this upload (retries, replays) carries one event id.
            event_id=uuid.uuid5(upload_id, "image.uploaded"),
        )

    async def discard(key: str) -> None:
        """Delete an object no event will name (a refused direct upload, the copy of a request that
        lost an Idempotency-Key race). Best effort: a failure leaves an orphan, and the answer still
        reaches the client."""
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
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Any unique string (a UUID): a retry with the same key and file gets the same "
                "upload instead of a new one; the same key with another file gets 422",
            ),
        ] = None,
    ) -> JSONResponse:
        if idempotency_key is not None and not KEY_PATTERN.fullmatch(idempotency_key):
            return refusal(
                Refusal(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII characters.")
            )
        if (limited := rate_limited(principal)) is not None:
            return limited
        # Read at most one byte past the limit: enough to know it is too large, never more.
        data = await file.read(settings.ingest_max_upload_bytes + 1)
        try:
            admitted = admit(data, **settings.admission_limits())
        except Refusal as exc:
            log.info("upload_refused", space_id=space_id, code=exc.code)
            return refusal(exc)
        try:
            return await idempotent_upload(idempotency_key, space_id, principal, data, admitted.content_type)
        except (TransientError, PermanentError) as exc:
            log.error("store_failed", error=str(exc))
            return unavailable("Storage is unavailable; please try again.")

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
                "exp": int(time.time()) + expires,
            },
            settings.jwt_secret.get_secret_value(),
            algorithm="HS256",
        )
        security_event(
            "presign_granted", upload_id=str(upload_id), space_id=space_id, subject=principal.subject, size=body.size
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
        if (limited := rate_limited(principal)) is not None:
            return limited
        record_key = confirm_record_key(upload_id)
        record, present = await load_record(record_key)
        if record is None:
            outcome = await first_confirm(record_key, present, str(ticket["key"]), space_id, upload_id, principal)
            if isinstance(outcome, JSONResponse):
                return outcome
            if outcome is not None:
                return await replay(record_key, outcome, replayed=False)
            # None: a concurrent confirm spent the ticket first (record stays None: refused below).
        # Each publish would run the whole pipeline again: only a confirm whose publish outcome is
        # unknown (503, or a confirm that died) is published once more, with the same event id.
        in_flight = timedelta(seconds=PUBLISH_TRY_S * settings.ingest_publish_attempts)
        if record is None or not confirm_may_republish(record, datetime.now(UTC), in_flight):
            # One grant, one upload: the ticket was spent by an earlier (or concurrent) confirm.
            security_event(
                "confirm_refused",
                status=409,
                reason="already_confirmed",
                upload_id=str(upload_id),
                space_id=space_id,
                subject=principal.subject,
            )
            return refusal(
                Refusal(
                    409,
                    "upload_already_confirmed",
                    "This upload was already confirmed; its status is at the status URL. Start a new upload "
                    "for another file.",
                )
            )
        # Confirmed before but its publish outcome was unknown (503): publish that same event again.
        return await replay(record_key, record, replayed=True)

    async def first_confirm(
        record_key: str, stale: bool, staged_key: str, space_id: str, upload_id: uuid.UUID, principal: Principal
    ) -> IdempotencyRecord | JSONResponse | None:
        """Check the staged file, copy it where the grant cannot write, and spend the ticket (conditional
        create of the confirm record). The record; a refusal; or None when a concurrent confirm won."""
        try:
            data = await store.read_untrusted(staged_key, max_bytes=settings.ingest_max_upload_bytes)
        except PermanentError as exc:
            if exc.code == "object_too_large":
                await discard(staged_key)
                return refusal(Refusal(413, exc.code, "The uploaded file is larger than the upload limit."))
            if (await load_record(record_key))[1]:
                return None  # a concurrent confirm spent the ticket (and moved the file) first
            return refusal(Refusal(404, exc.code, "The uploaded file was not found; upload it again."))
        except TransientError:
            return unavailable("Storage is unavailable; please try again.")
        try:
            admitted = admit(data, **settings.admission_limits())
        except Refusal as exc:
            await discard(staged_key)
            return refusal(exc)
        try:
            # A fresh key the presigned PUT URL (valid until it expires) cannot overwrite: what the
            # pipeline reads is what was checked here.
            ref = await store.put_bytes(original_key(upload_id, admitted.content_type), data, admitted.content_type)
        except (TransientError, PermanentError) as exc:
            log.error("store_failed", error=str(exc))
            return unavailable("Storage is unavailable; please try again.")
        event = ImageUploaded(
            upload_id=upload_id,
            space_id=space_id,
            editor_id=principal.subject,
            original=ref,
            source="presigned",
            event_id=uuid.uuid5(upload_id, "image.uploaded"),
        )
        created = IdempotencyRecord.for_event(event, ref.sha256, datetime.now(UTC))
        try:
            await store.put_bytes(record_key, created.to_bytes(), "application/json", if_absent=not stale)
        except (TransientError, PermanentError) as exc:
            await discard(ref.key)
            if isinstance(exc, PermanentError) and exc.code == "object_exists":
                return None
            log.error("store_failed", error=str(exc))
            return unavailable("Storage is unavailable; please try again.")
        await discard(staged_key)  # the grant's object is spent; a later PUT there names no upload
        security_event(
            "upload_confirmed", upload_id=str(upload_id), space_id=space_id, subject=principal.subject, size=ref.size
        )
        return created

    return router
