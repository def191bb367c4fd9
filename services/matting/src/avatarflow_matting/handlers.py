"""Messaging layer: face.validated -> avatar.matted (thin; the work is in core)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from avatarflow_contracts import AvatarFailed, AvatarMatted, Envelope, FaceValidated
from avatarflow_imaging import ImageError, decode_image
from avatarflow_runtime.dedup import record_outputs, recorded_outputs
from avatarflow_runtime.errors import PermanentError
from avatarflow_runtime.failures import failure_event
from avatarflow_runtime.keys import matting_key
from avatarflow_runtime.logging import get_logger
from avatarflow_runtime.storage import ObjectStore

from .core import CutOut, PersonSegmenter, cut_out, encode_png
from .settings import MattingSettings

log = get_logger("avatarflow.matting")


class MattingStage:
    def __init__(
        self,
        store: ObjectStore,
        settings: MattingSettings,
        segmenter: Callable[[], PersonSegmenter],
        warm_up: Callable[[], float],
    ) -> None:
        """At start, on the stage's own thread: ``warm_up`` prepares the process (returns seconds),
        then ``segmenter`` loads the person model the stage keeps."""
        self.store = store
        self.settings = settings
        self.segmenter = segmenter
        self.warm_up = warm_up
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matting")
        self.matter: PersonSegmenter | None = None
        self.cold_start_s: float | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        # Load the JIT cache (or compile into it) before the first message, not during it.
        jit_s = await loop.run_in_executor(self.executor, self.warm_up)
        self.matter = await loop.run_in_executor(self.executor, self.segmenter)
        self.cold_start_s = time.perf_counter() - started
        log.info("matting_warm", jit_seconds=round(jit_s, 3), cold_start_seconds=round(self.cold_start_s, 3))

    async def stop(self) -> None:
        if self.matter is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.matter.close)
        self.executor.shutdown(wait=True)

    def _cut_out(self, data: bytes, event: FaceValidated) -> CutOut:
        try:
            image = decode_image(data, max_long_side=self.settings.matting_decode_long_side)
        except ImageError as exc:  # the validator decoded it, so this means storage handed us other bytes
            raise PermanentError("unprocessable_image", f"cannot decode original: {exc}") from exc
        assert self.matter is not None, "stage not started"
        return cut_out(image.rgb, event.face, illustration_hint=event.illustration_hint, matter=self.matter)

    async def handle(self, event: FaceValidated) -> list[Envelope]:
        # A redelivery (crash before the commit, rebalance, replay) re-publishes the recorded outputs.
        if (recorded := await recorded_outputs(self.store, event, "matting")) is not None:
            return recorded
        outputs = await self._cut_out_and_store(event)
        await record_outputs(self.store, event, "matting", outputs)
        return outputs

    async def _cut_out_and_store(self, event: FaceValidated) -> list[Envelope]:
        data = await self.store.get_bytes(event.original, max_bytes=self.settings.matting_max_image_bytes)
        result = await asyncio.get_running_loop().run_in_executor(self.executor, self._cut_out, data, event)
        cutout, white, dark = await asyncio.gather(
            self._put(event, "cutout.png", result.rgba),
            self._put(event, "preview-on-white.png", result.preview_on_white),
            self._put(event, "preview-on-dark.png", result.preview_on_dark),
        )
        height, width = result.rgba.shape[:2]
        return [
            event.follow_up(
                AvatarMatted,
                original=event.original,
                cutout=cutout,
                preview_on_white=white,
                preview_on_dark=dark,
                canvas_width=width,
                canvas_height=height,
                face=result.face,
                method=result.method,
                quality=result.quality,
                warnings=sorted({*event.warnings, *result.warnings}),
            )
        ]

    async def _put(self, event: FaceValidated, name: str, array):  # type: ignore[no-untyped-def]
        png = await asyncio.get_running_loop().run_in_executor(self.executor, encode_png, array)
        return await self.store.put_bytes(matting_key(event.upload_id, name), png, "image/png")

    @staticmethod
    def on_failure(event: FaceValidated, error: BaseException, attempts: int) -> AvatarFailed:
        return failure_event(event, "matting", error, attempts)
