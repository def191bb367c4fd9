"""Animator service wiring (GPU pods; CPU fallback)."""

from __future__ import annotations

from typing import Any

from avatarflow_contracts import AvatarFailed, AvatarRendered, ConsumerGroup, Topic
from avatarflow_runtime.service import DOC_BOOTSTRAP, ServiceRuntime
from fastapi import FastAPI

from .bootstrap import stage_ports
from .handlers import AnimationStage
from .settings import AnimatorSettings

TITLE = "avatarflow animator"
DESCRIPTION = "Renders the animated, lip-sync-ready avatar pack from the cut-out (ONNX Runtime, CUDA or CPU)."


def build_runtime(settings: AnimatorSettings, *, with_storage: bool = True) -> ServiceRuntime:
    runtime = ServiceRuntime.create(settings, with_storage=with_storage)
    # runtime.store is None only with_storage=False (schema export), which never handles a record.
    stage = AnimationStage(runtime.store, settings, stage_ports(settings))  # type: ignore[arg-type]
    runtime.bus.declare(Topic.AVATAR_RENDERED, AvatarRendered, "The avatar pack is stored")
    runtime.bus.declare(Topic.AVATAR_FAILED, AvatarFailed, "Rendering failed for good after retries")
    consumer = runtime.consumer(ConsumerGroup.ANIMATOR, on_failure=stage.on_failure)
    # N avatars in flight = N members of the consumer group in this pod, each committing its own
    # partitions' offsets after its render is published (FastStream's in-process worker pool would
    # need ack-first, which could lose renders). They share one ONNX session (run() is thread-safe).
    consumer.subscribe(Topic.AVATAR_MATTED, stage.handle, members=settings.animator_max_in_flight)
    runtime.on_startup.append(stage.start)
    runtime.on_shutdown.append(stage.stop)
    return runtime


def create_app(settings: AnimatorSettings | None = None) -> FastAPI:
    settings = settings or AnimatorSettings()
    return build_runtime(settings).build_app(title=TITLE, description=DESCRIPTION)


def asyncapi_document() -> dict[str, Any]:
    runtime = build_runtime(AnimatorSettings(kafka_bootstrap_servers=DOC_BOOTSTRAP), with_storage=False)
    return runtime.asyncapi(TITLE, DESCRIPTION)
