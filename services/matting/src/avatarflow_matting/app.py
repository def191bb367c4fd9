"""Matting service wiring."""

from __future__ import annotations

from typing import Any

from avatarflow_contracts import AvatarFailed, AvatarMatted, ConsumerGroup, Topic
from avatarflow_runtime.service import DOC_BOOTSTRAP, ServiceRuntime
from fastapi import FastAPI

from . import bootstrap
from .adapters.segmentation import SelfieSegmenter
from .handlers import MattingStage
from .settings import MattingSettings

TITLE = "avatarflow matting"
DESCRIPTION = "Cuts the subject out with a clean, decontaminated alpha and frames it for the avatar."


def build_runtime(settings: MattingSettings, *, with_storage: bool = True) -> ServiceRuntime:
    # numba's cache was set when the package was imported (bootstrap.py; AVATARFLOW_NUMBA_CACHE_DIR,
    # settings.numba_cache_dir, is read there); the worker's warm-up applies the allocator settings.
    runtime = ServiceRuntime.create(settings, with_storage=with_storage)
    # runtime.store is None only with_storage=False (schema export), which never handles a record.
    stage = MattingStage(runtime.store, settings, SelfieSegmenter, bootstrap.warm_up)  # type: ignore[arg-type]
    runtime.bus.declare(Topic.AVATAR_MATTED, AvatarMatted, "The cut-out and its previews are stored")
    runtime.bus.declare(Topic.AVATAR_FAILED, AvatarFailed, "Matting failed for good after retries")
    consumer = runtime.consumer(ConsumerGroup.MATTING, on_failure=stage.on_failure)
    consumer.subscribe(Topic.FACE_VALIDATED, stage.handle)
    runtime.on_startup.append(stage.start)
    runtime.on_shutdown.append(stage.stop)
    return runtime


def create_app(settings: MattingSettings | None = None) -> FastAPI:
    settings = settings or MattingSettings()
    return build_runtime(settings).build_app(title=TITLE, description=DESCRIPTION)


def asyncapi_document() -> dict[str, Any]:
    runtime = build_runtime(MattingSettings(kafka_bootstrap_servers=DOC_BOOTSTRAP), with_storage=False)
    return runtime.asyncapi(TITLE, DESCRIPTION)
