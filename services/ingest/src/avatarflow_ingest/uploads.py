"""The upload application layer: the multipart upload and the presigned (direct-to-S3) flow, without HTTP.

:class:`UploadService` works with an object store, an event bus and a clock (the ports in
``core/ports.py``); the router (``handlers.py``) turns its answers into responses. It sequences the
pure rules (``core/``) with the record helpers (``adapters/records.py``); it logs, mints upload ids
and keeps the per-editor rate limit, which is why it is not in ``core/`` itself.

An upload ends :class:`~.core.outcomes.Accepted`, or raises a
:class:`~avatarflow_imaging.admission.Refusal` (a 4xx the client can act on),
:class:`~.core.outcomes.RateLimited` (429), :class:`~.core.outcomes.Unavailable` (503, retry) or
:class:`~avatarflow_runtime.auth.AuthError` (a bad upload ticket). Storage faults are ``Unavailable``
too, except where a confirm could not read its own record (it propagates, as before).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import jwt
from avatarflow_contracts import ImageUploaded, new_trace_id
from avatarflow_imaging.admission import Refusal, admit
from avatarflow_runtime.auth import AuthError, Principal
from avatarflow_runtime.errors import PermanentError, TransientError
from avatarflow_runtime.keys import confirm_record_key, idempotency_record_key, original_key
from avatarflow_runtime.logging import get_logger, security_event
from avatarflow_runtime.ratelimit import RateLimiter
from avatarflow_runtime.storage import sha256_hex
from avatarflow_runtime.tracing import current_trace_id

from .adapters.records import discard, load_record, mark_record, put_record
from .core.idempotency import KEY_PATTERN, Decision, IdempotencyRecord, confirm_may_republish, decide
from .core.outcomes import BUSY, STORAGE_DOWN, Accepted, PresignGrant, RateLimited, Unavailable
from .core.ports import Clock, EventPublisher, ReadBody, UploadStore
from .settings import IngestSettings

log = get_logger("avatarflow.ingest")
# Longest one publish try can take: the producer's 15 s request timeout plus backoff (service.py).
PUBLISH_TRY_S = 20


class UploadService:
    def __init__(self, store: UploadStore, bus: EventPublisher, clock: Clock, settings: IngestSettings) -> None:
        self.store, self.bus, self.clock, self.settings = store, bus, clock, settings
        self.limiter = RateLimiter(settings.ingest_rate_limit_per_minute)

    # ---- the three operations ----------------------------------------------------------------

    async def upload(
        self, space_id: str, principal: Principal, read: ReadBody, idempotency_key: str | None = None
    ) -> Accepted:
        """Admit the file ``read`` returns (read only once the key and the rate allow it) and make, or
        replay, the upload its Idempotency-Key (or, without one, its sha256) binds."""
        if idempotency_key is not None and not KEY_PATTERN.fullmatch(idempotency_key):
            raise Refusal(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII characters.")
        self.check_rate(principal)
        # Read at most one byte past the limit: enough to know it is too large, never more.
        data = await read(self.settings.ingest_max_upload_bytes + 1)
        try:
            admitted = admit(data, **self.settings.admission_limits())
        except Refusal as exc:
            log.info("upload_refused", space_id=space_id, code=exc.code)
            raise
        try:
            return await self._idempotent_upload(idempotency_key, space_id, principal, data, admitted.content_type)
        except (TransientError, PermanentError) as exc:
            log.error("store_failed", error=str(exc))
            raise Unavailable(STORAGE_DOWN) from exc

    def presign(self, space_id: str, principal: Principal, content_type: str, size: int) -> PresignGrant:
        """A presigned PUT URL for a fresh original key and the ticket its confirm must bring back."""
        self.check_rate(principal)
        if size > self.settings.ingest_max_upload_bytes:
            raise Refusal(413, "file_too_large", "The file is larger than the upload limit.")
        content_type = "image/heif" if content_type == "image/heic" else content_type
        upload_id = uuid.uuid4()
        key = original_key(upload_id, content_type)
        expires = self.settings.ingest_presigned_expiry_s
        ticket = self._ticket(upload_id, space_id, principal, key, content_type, expires)
        security_event("presign_granted", upload_id=str(upload_id), space_id=space_id, subject=principal.subject,
                       size=size)  # fmt: skip
        put_url = self.store.presign_put(key, content_type, expires)
        return PresignGrant(upload_id=upload_id, put_url=put_url, expires_in=expires, upload_ticket=ticket)

    async def confirm(self, space_id: str, upload_id: uuid.UUID, principal: Principal, upload_ticket: str) -> Accepted:
        """Check the presigned upload's file and publish it, once per grant (409 for a spent ticket)."""
        ticket = self._verify_ticket(upload_ticket, space_id, upload_id, principal)
        self.check_rate(principal)
        record_key = confirm_record_key(upload_id)
        record, present = await load_record(self.store, record_key)
        if record is None:
            staged_key = str(ticket["key"])
            created = await self._first_confirm(record_key, present, staged_key, space_id, upload_id, principal)
            if created is not None:
                return await self._replay(record_key, created, replayed=False)
            # None: a concurrent confirm spent the ticket first (record stays None: refused below).
        # Each publish would run the whole pipeline again: only a confirm whose publish outcome is
        # unknown (503, or a confirm that died) is published once more, with the same event id.
        in_flight = timedelta(seconds=PUBLISH_TRY_S * self.settings.ingest_publish_attempts)
        if record is None or not confirm_may_republish(record, self.clock(), in_flight):
            raise self._already_confirmed(space_id, upload_id, principal)
        # Confirmed before but its publish outcome was unknown (503): publish that same event again.
        return await self._replay(record_key, record, replayed=True)

    def check_rate(self, principal: Principal) -> None:
        allowed, retry_after = self.limiter.allow(principal.subject)
        if allowed:
            return
        security_event("rate_limited", status=429, subject=principal.subject, space_id=principal.space_id,
                       retry_after=retry_after)  # fmt: skip
        raise RateLimited(retry_after)

    # ---- the multipart upload ----------------------------------------------------------------

    async def _idempotent_upload(
        self, idempotency_key: str | None, space_id: str, principal: Principal, data: bytes, content_type: str
    ) -> Accepted:
        """Make or replay the upload bound to the client's key, or (``None``) to a key derived from the
        file. A derived key binds only while its publish outcome is unknown: once the broker confirmed
        the event, the same file uploaded again is a new upload, as a client without a key expects."""
        digest = sha256_hex(data)
        derived = idempotency_key is None
        # No client key contains a space (KEY_PATTERN), so a derived key never shares a client's record.
        client_key = f"derived sha256 {digest}" if idempotency_key is None else idempotency_key
        key = idempotency_record_key(space_id, principal.subject, client_key)
        window = timedelta(seconds=self.settings.ingest_idempotency_window_s)
        record, present = await load_record(self.store, key)
        decision = decide(record, digest, self.clock(), window)
        if derived and record is not None and record.published:
            decision = Decision.NEW  # replaced: the earlier upload of this file is settled
        if decision is Decision.NEW:
            # An object there that binds nothing (expired, unreadable) is stale: replaced, not raced.
            created = await self._create_upload(key, present, space_id, principal, data, content_type, digest)
            if created is not None:
                return await self._replay(key, created, replayed=False)
            record, _ = await load_record(self.store, key)
            # A concurrent upload won: with a derived key that is this same file, so this answers with it.
            decision = decide(record, digest, self.clock(), window)
        if decision is Decision.CONFLICT:
            raise Refusal(422, "idempotency_key_reused", "This Idempotency-Key was already used for another file.")
        if record is None or decision is not Decision.REPLAY:
            raise Unavailable("Another request with this Idempotency-Key is in progress; please try again.")
        return await self._replay(key, record, replayed=True, announce=not derived)

    async def _create_upload(
        self, key: str, stale: bool, space_id: str, principal: Principal, data: bytes, content_type: str, digest: str
    ) -> IdempotencyRecord | None:
        """Store the file and its record; None when a concurrent request with this key created the
        record first. Only an absent record may be created; a ``stale`` one (expired, unreadable)
        is replaced."""
        event = await self._store_original(space_id, principal, data, content_type)
        created = IdempotencyRecord.for_event(event, digest, self.clock())
        try:
            await put_record(self.store, key, created, if_absent=not stale)
            return created
        except (TransientError, PermanentError) as exc:
            # No record, no upload: our copy of the file is not needed. Either S3 failed (the client
            # gets 503 and retries) or a concurrent request with this key won the race.
            await discard(self.store, event.original.key)
            if isinstance(exc, PermanentError) and exc.code == "object_exists":
                return None
            raise

    async def _store_original(
        self, space_id: str, principal: Principal, data: bytes, content_type: str
    ) -> ImageUploaded:
        """Store the admitted file under a fresh upload id; the event that announces it (unpublished)."""
        upload_id = uuid.uuid4()
        ref = await self.store.put_bytes(original_key(upload_id, content_type), data, content_type)
        return ImageUploaded(
            upload_id=upload_id,
            space_id=space_id,
            editor_id=principal.subject,
            original=ref,
            source="ingest",
            trace_id=current_trace_id() or new_trace_id(),  # the request's trace when tracing is on
            # Derived, so every publish of this upload (retries, replays) carries one event id.
            event_id=uuid.uuid5(upload_id, "image.uploaded"),
        )

    # ---- the presigned flow --------------------------------------------------------------------

    def _ticket(
        self, upload_id: uuid.UUID, space_id: str, principal: Principal, key: str, content_type: str, expires: int
    ) -> str:
        claims = {
            "upload_id": str(upload_id),
            "space_id": space_id,
            "sub": principal.subject,
            "key": key,
            "content_type": content_type,
            "purpose": "presigned-upload",
            "exp": int(self.clock().timestamp()) + expires,
        }
        return jwt.encode(claims, self.settings.jwt_secret.get_secret_value(), algorithm="HS256")

    def _verify_ticket(
        self, upload_ticket: str, space_id: str, upload_id: uuid.UUID, principal: Principal
    ) -> dict[str, Any]:
        try:
            ticket = jwt.decode(upload_ticket, self.settings.jwt_secret.get_secret_value(), algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise AuthError("invalid or expired upload ticket") from exc
        if (
            ticket.get("purpose") != "presigned-upload"
            or ticket.get("upload_id") != str(upload_id)
            or ticket.get("space_id") != space_id
            or ticket.get("sub") != principal.subject
        ):
            raise AuthError("upload ticket does not match this upload")
        return ticket

    def _already_confirmed(self, space_id: str, upload_id: uuid.UUID, principal: Principal) -> Refusal:
        """One grant, one upload: the ticket was spent by an earlier (or concurrent) confirm."""
        security_event("confirm_refused", status=409, reason="already_confirmed", upload_id=str(upload_id),
                       space_id=space_id, subject=principal.subject)  # fmt: skip
        return Refusal(
            409,
            "upload_already_confirmed",
            "This upload was already confirmed; its status is at the status URL. Start a new upload for another file.",
        )

    async def _first_confirm(
        self, record_key: str, stale: bool, staged_key: str, space_id: str, upload_id: uuid.UUID, principal: Principal
    ) -> IdempotencyRecord | None:
        """Check the staged file, copy it where the grant cannot write, and spend the ticket (conditional
        create of the confirm record). The record, or None when a concurrent confirm won."""
        data = await self._read_staged(record_key, staged_key)
        if data is None:
            return None
        try:
            admitted = admit(data, **self.settings.admission_limits())
        except Refusal:
            await discard(self.store, staged_key)
            raise
        try:
            # A fresh key the presigned PUT URL (valid until it expires) cannot overwrite: what the
            # pipeline reads is what was checked here.
            key = original_key(upload_id, admitted.content_type)
            ref = await self.store.put_bytes(key, data, admitted.content_type)
        except (TransientError, PermanentError) as exc:
            log.error("store_failed", error=str(exc))
            raise Unavailable(STORAGE_DOWN) from exc
        event = ImageUploaded(
            upload_id=upload_id,
            space_id=space_id,
            editor_id=principal.subject,
            original=ref,
            source="presigned",
            event_id=uuid.uuid5(upload_id, "image.uploaded"),
        )
        created = await self._spend_ticket(record_key, stale, event)
        if created is not None:
            await discard(self.store, staged_key)  # the grant's object is spent; a later PUT there names no upload
            security_event("upload_confirmed", upload_id=str(upload_id), space_id=space_id,
                           subject=principal.subject, size=ref.size)  # fmt: skip
        return created

    async def _read_staged(self, record_key: str, staged_key: str) -> bytes | None:
        """The presigned PUT's bytes; None when a concurrent confirm already spent the ticket."""
        try:
            return await self.store.read_untrusted(staged_key, max_bytes=self.settings.ingest_max_upload_bytes)
        except PermanentError as exc:
            if exc.code == "object_too_large":
                await discard(self.store, staged_key)
                raise Refusal(413, exc.code, "The uploaded file is larger than the upload limit.") from None
            if (await load_record(self.store, record_key))[1]:
                return None  # a concurrent confirm spent the ticket (and moved the file) first
            raise Refusal(404, exc.code, "The uploaded file was not found; upload it again.") from None
        except TransientError as exc:
            raise Unavailable(STORAGE_DOWN) from exc

    async def _spend_ticket(self, record_key: str, stale: bool, event: ImageUploaded) -> IdempotencyRecord | None:
        created = IdempotencyRecord.for_event(event, event.original.sha256, self.clock())
        try:
            await put_record(self.store, record_key, created, if_absent=not stale)
            return created
        except (TransientError, PermanentError) as exc:
            await discard(self.store, event.original.key)
            if isinstance(exc, PermanentError) and exc.code == "object_exists":
                return None
            log.error("store_failed", error=str(exc))
            raise Unavailable(STORAGE_DOWN) from exc

    # ---- publishing ----------------------------------------------------------------------------

    async def _replay(self, key: str, record: IdempotencyRecord, *, replayed: bool, announce: bool = True) -> Accepted:
        """Answer with the recorded upload; publish its event again unless the broker confirmed it."""
        event = record.image_uploaded()
        if not record.published:
            if not await self._publish(event):
                await mark_record(self.store, key, record.model_copy(update={"publish_failed": True}))
                raise Unavailable(BUSY)
            # A failed update is harmless: a later retry publishes the same event id again and the stages drop it.
            await mark_record(self.store, key, record.model_copy(update={"published": True}))
        log.info("upload_accepted", upload_id=str(event.upload_id), space_id=event.space_id,
                 size=event.original.size, replayed=replayed)  # fmt: skip
        return Accepted(event, replayed=replayed and announce)

    async def _publish(self, event: ImageUploaded) -> bool:
        """Publish image.uploaded; True once the broker confirmed it.

        A failed publish never deletes the stored original: the broker may have stored the record even
        though the publish raised (a stalled broker answers after our timeout). Every upload is keyed
        (the client's Idempotency-Key, else one derived from the file), so the retry publishes this
        same event id again and converges on this upload instead of orphaning its event."""
        try:
            await self.bus.publish(event, attempts=self.settings.ingest_publish_attempts)
            return True
        except Exception as exc:
            log.error("publish_failed", upload_id=str(event.upload_id), error=type(exc).__name__)
            return False
