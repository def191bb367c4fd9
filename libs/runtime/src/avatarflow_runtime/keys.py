"""The storage layout (bucket key scheme), defined once. See docs/architecture.md.

originals/{upload_id}/{random}.{ext}     the uploaded file (random part: never guessable, never user-named)
avatars/{upload_id}/matting/{name}.png   cut-out and editor previews (deterministic: a redelivery overwrites
                                         the same keys with the same bytes)
avatars/{upload_id}/pack/{version}/{name} the avatar pack (manifest.json, idle loop, atlas, preview, poster);
                                         version = the cut-out's sha256 (16 hex), so a pack made from
                                         other input never overwrites the one an event advertises
avatars/{upload_id}/outputs/{stage}.json the output events a stage published (a redelivery re-publishes them)
catalogue/...                            pre-generated avatars (notifier)
idempotency/{sha256}.json                ingest's Idempotency-Key records (sha256 of space, editor and key)
idempotency/confirm-{upload_id}.json     ingest's record of a confirmed presigned upload (the ticket is spent)

upload_id is a random UUID4 chosen by ingest (or the platform), so derived keys are not guessable either.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heif": "heic"}


def original_key(upload_id: uuid.UUID, content_type: str) -> str:
    return f"originals/{upload_id}/{secrets.token_urlsafe(18)}.{_EXTENSIONS.get(content_type, 'bin')}"


def matting_key(upload_id: uuid.UUID, name: str) -> str:
    return f"avatars/{upload_id}/matting/{name}"


def pack_key(upload_id: uuid.UUID, name: str, version: str) -> str:
    """``version`` names the pack's input (the cut-out's sha256): a redelivery of one input rewrites the
    same keys, while a pack rendered from other bytes (a second run of one upload) lands beside it."""
    if not version.isalnum():
        raise ValueError("pack version must be alphanumeric")
    return f"avatars/{upload_id}/pack/{version[:16]}/{name}"


def confirm_record_key(upload_id: uuid.UUID) -> str:
    """Created with a conditional write by the first confirm of a presigned upload: one grant, one upload."""
    return f"idempotency/confirm-{upload_id}.json"


def outputs_key(upload_id: uuid.UUID, stage: str) -> str:
    return f"avatars/{upload_id}/outputs/{stage}.json"


def idempotency_record_key(space_id: str, subject: str, idempotency_key: str) -> str:
    """Hashed, so neither the editor's id nor the client's key appears in the bucket listing."""
    digest = hashlib.sha256(f"{space_id}\n{subject}\n{idempotency_key}".encode()).hexdigest()
    return f"idempotency/{digest}.json"
