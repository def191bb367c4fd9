"""What an upload ends in, without HTTP: :class:`Accepted` (202), a presign's :class:`PresignGrant`,
or the refusals :class:`RateLimited` (429) and :class:`Unavailable` (503, retry). The router
(``handlers.py``) turns them into responses; a client-fixable refusal is the imaging library's
:class:`~avatarflow_imaging.admission.Refusal`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from avatarflow_contracts import ImageUploaded

BUSY = "Upload service is busy; please try again."
STORAGE_DOWN = "Storage is unavailable; please try again."


@dataclass(frozen=True)
class Accepted:
    """The upload is in the pipeline. ``replayed``: answered with an earlier upload of the client's
    Idempotency-Key (the ``Idempotent-Replayed`` header)."""

    event: ImageUploaded
    replayed: bool = False


@dataclass(frozen=True)
class PresignGrant:
    upload_id: uuid.UUID
    put_url: str
    expires_in: int
    upload_ticket: str


class Unavailable(Exception):
    """A dependency (broker, storage) or a concurrent request stands in the way: retry shortly."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class RateLimited(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limited for {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s
