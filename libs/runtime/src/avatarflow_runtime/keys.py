"""The storage layout (bucket key scheme), defined once. See docs/architecture.md.

originals/{upload_id}/{random}.{ext}     the uploaded file (random part: never guessable, never user-named)
avatars/{upload_id}/matting/{name}.png   cut-out and editor previews (deterministic: a redelivery overwrites
                                         the same keys with the same bytes)
avatars/{upload_id}/pack/{name}          the avatar pack (manifest.json, idle loop, atlas, preview, poster)
avatars/{upload_id}/outputs/{stage}.json the output events a stage published (a redelivery re-publishes them)
catalogue/...                            pre-generated avatars (notifier)
idempotency/{sha256}.json                ingest's Idempotency-Key records (sha256 of space, editor and key)

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


def pack_key(upload_id: uuid.UUID, name: str) -> str:
    return f"avatars/{upload_id}/pack/{name}"


def outputs_key(upload_id: uuid.UUID, stage: str) -> str:
    return f"avatars/{upload_id}/outputs/{stage}.json"


def idempotency_record_key(space_id: str, subject: str, idempotency_key: str) -> str:
    """Hashed, so neither the editor's id nor the client's key appears in the bucket listing."""
    digest = hashlib.sha256(f"{space_id}\n{subject}\n{idempotency_key}".encode()).hexdigest()
    return f"idempotency/{digest}.json"
