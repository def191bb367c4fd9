"""Messaging layer: avatar.matted -> avatar.rendered (thin; the work is in core)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from avatarflow_contracts import AvatarFailed, AvatarMatted, AvatarRendered, Envelope, ObjectRef
from avatarflow_runtime.dedup import record_outputs, recorded_outputs
from avatarflow_runtime.errors import PermanentError
from avatarflow_runtime.failures import failure_event
from avatarflow_runtime.keys import pack_key
from avatarflow_runtime.logging import get_logger
from avatarflow_runtime.storage import ObjectStore
from PIL import Image
from prometheus_client import Counter, Gauge, Histogram

from .core import AvatarPack, AvatarRenderer, Clock, PackEncoder, SpeechSynthesizer, SpeechUnavailable, build_pack
from .settings import AnimatorSettings

log = get_logger("avatarflow.animator")
RENDER_SECONDS = Histogram(
    "avatarflow_animator_render_seconds",
    "Seconds to render one avatar pack (frames only)",
    ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
ENCODE_SECONDS = Histogram(
    "avatarflow_animator_encode_seconds",
    "Seconds to encode one avatar pack",
    ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
RENDERS_IN_FLIGHT = Gauge("avatarflow_animator_renders_in_flight", "Avatar renders in progress")
PROVIDER_INFO = Gauge("avatarflow_animator_execution_provider", "1 for the execution provider in use", ["provider"])
RENDERS = Counter("avatarflow_animator_renders_total", "Rendered avatar packs", ["provider"])

CONTENT_TYPES = {
    ".json": "application/json",
    ".png": "image/png",
    ".webm": "video/webm",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
}


@dataclass(frozen=True)
class StagePorts:
    """The adapters the stage renders with (``bootstrap.stage_ports`` builds the production ones).

    The renderer and the synthesizer are factories: they load models and probe engines, which
    belongs to start-up, not to wiring (the AsyncAPI export builds the stage without starting it).
    """

    create_renderer: Callable[[], AvatarRenderer]  # run once, in the render pool; may raise (CUDA asked, absent)
    create_speech: Callable[[], SpeechSynthesizer] | None  # None: a silent preview by configuration
    encoder: PackEncoder
    clock: Clock


class AnimationStage:
    def __init__(self, store: ObjectStore, settings: AnimatorSettings, ports: StagePorts) -> None:
        self.store = store
        self.settings = settings
        self.ports = ports
        self.executor = ThreadPoolExecutor(max_workers=settings.animator_max_in_flight, thread_name_prefix="render")
        self.renderer: AvatarRenderer | None = None
        self.speech: SpeechSynthesizer | None = None

    async def start(self) -> None:
        self.renderer = await asyncio.get_running_loop().run_in_executor(self.executor, self.ports.create_renderer)
        provider = self.renderer.execution_provider
        PROVIDER_INFO.labels(provider).set(1)
        if self.ports.create_speech is not None:
            try:
                self.speech = self.ports.create_speech()
            except SpeechUnavailable as exc:
                # Packs stay complete: the preview is silent and dictionary-timed until fixed.
                log.error("speech_unavailable", error=str(exc))
        log.info("animator_ready", execution_provider=provider, max_in_flight=self.settings.animator_max_in_flight)

    async def stop(self) -> None:
        self.executor.shutdown(wait=True)

    def _render(self, png: bytes, event: AvatarMatted) -> AvatarPack:
        assert self.renderer is not None
        try:
            with Image.open(io.BytesIO(png)) as image:
                rgba = np.asarray(image.convert("RGBA"))
        except Exception as exc:
            raise PermanentError("unprocessable_image", f"cut-out is not a readable PNG: {exc}") from exc
        pack = build_pack(
            rgba,
            event.face,
            renderer=self.renderer,
            encoder=self.ports.encoder,
            clock=self.ports.clock,
            preview_text=self.settings.animator_preview_text,
            speech=self.speech,
            share_background=self.settings.animator_share_background,
        )
        if pack.speech_error:
            log.error("speech_unavailable", error=pack.speech_error)
        return pack

    async def handle(self, event: AvatarMatted) -> list[Envelope]:
        # A redelivery (crash before the commit, rebalance, replay) re-publishes the recorded outputs.
        if (recorded := await recorded_outputs(self.store, event, "animator")) is not None:
            return recorded
        outputs = await self._render_and_store(event)
        await record_outputs(self.store, event, "animator", outputs)
        return outputs

    async def _render_and_store(self, event: AvatarMatted) -> list[Envelope]:
        png = await self.store.get_bytes(event.cutout, max_bytes=self.settings.animator_max_cutout_bytes)
        RENDERS_IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            pack = await asyncio.get_running_loop().run_in_executor(self.executor, self._render, png, event)
        finally:
            RENDERS_IN_FLIGHT.dec()
        RENDER_SECONDS.labels(pack.execution_provider).observe(pack.render_seconds)
        ENCODE_SECONDS.labels(pack.execution_provider).observe(pack.encode_seconds)
        RENDERS.labels(pack.execution_provider).inc()
        refs = dict(await asyncio.gather(*(self._put(event, name, data) for name, data in sorted(pack.files.items()))))
        log.info("rendered", provider=pack.execution_provider, seconds=round(time.perf_counter() - started, 3))
        names = pack.manifest.files if hasattr(pack.manifest, "files") else None
        return [
            event.follow_up(
                AvatarRendered,
                manifest=refs["manifest.json"],
                idle_loop=refs[_name(names, "idle_loop", "idle.webm")],
                viseme_atlas=refs[_name(names, "viseme_atlas", "visemes.png")],
                preview_clip=refs[_name(names, "preview_clip", "preview.webm")],
                poster=refs[_name(names, "poster", "poster.png")],
                alternates=[refs[alternate.file] for alternate in pack.manifest.alternates],
                execution_provider=pack.execution_provider,
                render_seconds=pack.render_seconds,
                encode_seconds=pack.encode_seconds,
            )
        ]

    async def _put(self, event: AvatarMatted, name: str, data: bytes) -> tuple[str, ObjectRef]:
        suffix = name[name.rfind(".") :]
        ref = await self.store.put_bytes(
            pack_key(event.upload_id, name, event.cutout.sha256),
            data,
            CONTENT_TYPES.get(suffix, "application/octet-stream"),
        )
        return name, ref

    @staticmethod
    def on_failure(event: AvatarMatted, error: BaseException, attempts: int) -> AvatarFailed:
        return failure_event(event, "animator", error, attempts)


def _name(files: object, attribute: str, default: str) -> str:
    value = getattr(files, attribute, None) if files is not None else None
    return value if isinstance(value, str) else default
