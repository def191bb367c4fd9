"""The ports :class:`~avatarflow_ingest.uploads.UploadService` works through: an object store, an
event publisher and a clock. The runtime's ``ObjectStore`` and ``EventBus`` fill them in production;
the unit tests pass in-memory fakes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from avatarflow_contracts import Envelope, ObjectRef

Clock = Callable[[], datetime]
# Reads at most the given number of bytes of the request's file (the multipart upload's ``read``).
ReadBody = Callable[[int], Awaitable[bytes]]


class UploadStore(Protocol):
    """The object-store operations uploads need (:class:`avatarflow_runtime.storage.ObjectStore`)."""

    async def read_untrusted(self, key: str, *, max_bytes: int) -> bytes: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> ObjectRef: ...

    async def delete(self, key: str) -> None: ...

    def presign_put(self, key: str, content_type: str, expires_s: int) -> str: ...


class EventPublisher(Protocol):
    """Publishes one event, broker-acknowledged (:class:`avatarflow_runtime.messaging.EventBus`)."""

    async def publish(self, event: Envelope, *, attempts: int | None = None) -> None: ...
