"""In-process fan-out of status changes to open SSE streams.

The store calls :meth:`Broadcaster.publish` after each commit. Subscribers may live on another event
loop (the consumer and the web server can run on different threads), so delivery goes through
``call_soon_threadsafe``. A subscriber only needs to know *that* its space changed: the stream then
re-reads the snapshot, so a full queue simply drops the extra wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .store import StatusChange


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[int]


def _offer(queue: asyncio.Queue[int], version: int) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(version)


class Broadcaster:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[_Subscriber]] = {}

    def publish(self, change: StatusChange) -> None:
        with self._lock:
            targets = list(self._subscribers.get(change.space_id, ()))
        for sub in targets:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its stream is gone
                sub.loop.call_soon_threadsafe(_offer, sub.queue, change.version)

    @contextlib.asynccontextmanager
    async def subscribe(self, space_id: str) -> AsyncIterator[asyncio.Queue[int]]:
        sub = _Subscriber(asyncio.get_running_loop(), asyncio.Queue(maxsize=8))
        with self._lock:
            self._subscribers.setdefault(space_id, set()).add(sub)
        try:
            yield sub.queue
        finally:
            with self._lock:
                subs = self._subscribers.get(space_id)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subscribers[space_id]

    def subscriber_count(self, space_id: str) -> int:
        with self._lock:
            return len(self._subscribers.get(space_id, ()))
