"""The public pre-check's own bounded pool, apart from the pipeline consumer (issue 19 item 3).

Before, pre-checks ran on the consumer's single validator thread: 16 concurrent 36 MP pre-checks
queued the pipeline behind them and slowed ``/healthz`` from 5 ms to 5.2 s. Now each of
``validator_precheck_workers`` lanes is a thread owning its own :class:`Validator` (MediaPipe graphs
are not thread-safe, so a lane is never shared); at most ``validator_precheck_queue`` more requests
wait for a lane, and any request beyond that is refused at once (503 with ``Retry-After``) before
its body is read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from .core import ValidationOutcome, Validator


class PrecheckBusy(Exception):
    """Every lane is busy and the waiting room is full."""


class _Lane:
    def __init__(self, index: int, factory: Callable[[], Validator]) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"precheck-{index}")
        self.factory = factory
        self.validator: Validator | None = None

    def _build(self) -> Validator:
        if self.validator is None:  # built on the lane's own thread: only that thread uses it
            self.validator = self.factory()
        return self.validator

    def _validate(self, data: bytes) -> ValidationOutcome:
        return self._build().validate_bytes(data)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._build)

    async def validate(self, data: bytes) -> ValidationOutcome:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._validate, data)

    def close(self) -> None:
        def close_validator() -> None:
            if self.validator is not None:
                self.validator.close()

        self.executor.submit(close_validator)
        self.executor.shutdown(wait=True)


class PrecheckPool:
    def __init__(self, workers: int, queue: int, factory: Callable[[], Validator]) -> None:
        """``factory`` builds one lane's validator, on that lane's thread (``bootstrap.open_validator``)."""
        self._lanes = [_Lane(i, factory) for i in range(workers)]
        self._free: asyncio.Queue[_Lane] | None = None
        self.capacity = workers + queue
        self.admitted = 0  # running or waiting for a lane

    @contextlib.asynccontextmanager
    async def reserve(self) -> AsyncIterator[None]:
        """A place in the pool (raises PrecheckBusy at once when there is none); take it before
        reading the request body, so refused requests cost nothing."""
        if self.admitted >= self.capacity:
            raise PrecheckBusy
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def validate(self, data: bytes) -> ValidationOutcome:
        """Run on the next free lane (call inside :meth:`reserve`)."""
        if self._free is None:
            self._free = asyncio.Queue()
            for lane in self._lanes:
                self._free.put_nowait(lane)
        lane = await self._free.get()
        try:
            return await lane.validate(data)
        finally:
            self._free.put_nowait(lane)

    async def start(self) -> None:
        """Load every lane's validator now, so the first pre-checks do not pay for it."""
        await asyncio.gather(*(lane.start() for lane in self._lanes))

    async def stop(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(lane.close) for lane in self._lanes))
