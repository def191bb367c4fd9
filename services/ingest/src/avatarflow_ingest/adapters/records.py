"""Idempotency and confirm records in the object store: read, best-effort update, and the
best-effort deletion of objects no event will name.

The rules that decide what a record means are pure (``..core.idempotency``); these helpers are the
storage side, over the :class:`~avatarflow_ingest.core.ports.UploadStore` port.
"""

from __future__ import annotations

from avatarflow_runtime.errors import PermanentError, TransientError
from avatarflow_runtime.logging import get_logger

from ..core.idempotency import IdempotencyRecord
from ..core.ports import UploadStore

log = get_logger("avatarflow.ingest")
MAX_RECORD_BYTES = 64 * 1024  # an idempotency record is ~1 KB


async def load_record(store: UploadStore, key: str) -> tuple[IdempotencyRecord | None, bool]:
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


async def put_record(store: UploadStore, key: str, record: IdempotencyRecord, *, if_absent: bool) -> None:
    """Write ``record`` (``if_absent``: only where no object is; a ``PermanentError`` with code
    ``object_exists`` says a concurrent request created it first)."""
    await store.put_bytes(key, record.to_bytes(), "application/json", if_absent=if_absent)


async def mark_record(store: UploadStore, key: str, record: IdempotencyRecord) -> None:
    """Best effort: a record left unmarked only delays a presigned retry until the in-flight bound."""
    try:
        await store.put_bytes(key, record.to_bytes(), "application/json")
    except (TransientError, PermanentError) as exc:
        log.warning("idempotency_record_not_updated", error=str(exc))


async def discard(store: UploadStore, key: str) -> None:
    """Delete an object no event will name (a refused direct upload, the copy of a request that
    lost an Idempotency-Key race). Best effort: a failure leaves an orphan, and the answer still
    reaches the client."""
    try:
        await store.delete(key)
    except Exception as exc:
        log.warning("discard_failed", error=type(exc).__name__)
