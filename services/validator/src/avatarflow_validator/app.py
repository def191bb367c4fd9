"""Validator service wiring."""

from __future__ import annotations

from typing import Any

from avatarflow_contracts import (
    AvatarFailed,
    ConsumerGroup,
    FaceRejected,
    FaceValidated,
    Topic,
)
from avatarflow_runtime.service import DOC_BOOTSTRAP, ServiceRuntime
from fastapi import FastAPI

from . import bootstrap
from .api import build_router
from .handlers import ValidationStage
from .precheck import PrecheckPool
from .settings import ValidatorSettings

TITLE = "avatarflow validator"
DESCRIPTION = "Decides whether an uploaded image can become an avatar; also answers a synchronous pre-check."


def build_runtime(settings: ValidatorSettings, *, with_storage: bool = True) -> tuple[ServiceRuntime, ValidationStage]:
    runtime = ServiceRuntime.create(settings, with_storage=with_storage)
    # runtime.store is None only with_storage=False (schema export), which never handles a record.
    stage = ValidationStage(runtime.store, settings, bootstrap.open_validator)  # type: ignore[arg-type]
    runtime.bus.declare(Topic.FACE_VALIDATED, FaceValidated, "The image can become an avatar")
    runtime.bus.declare(Topic.FACE_REJECTED, FaceRejected, "The image was rejected, with every failed check")
    runtime.bus.declare(Topic.AVATAR_FAILED, AvatarFailed, "Validation failed for good after retries")
    consumer = runtime.consumer(ConsumerGroup.VALIDATOR, on_failure=stage.on_failure)
    consumer.subscribe(Topic.IMAGE_UPLOADED, stage.handle)
    runtime.on_startup.append(stage.start)
    runtime.on_shutdown.append(stage.stop)
    return runtime, stage


def create_app(settings: ValidatorSettings | None = None) -> FastAPI:
    settings = settings or ValidatorSettings()
    bootstrap.configure_process()
    runtime, stage = build_runtime(settings)
    # Each lane builds its own validator on its own thread (MediaPipe graphs are not thread-safe).
    pool = PrecheckPool(
        settings.validator_precheck_workers, settings.validator_precheck_queue, bootstrap.open_validator
    )
    runtime.on_startup.append(pool.start)
    runtime.on_shutdown.append(pool.stop)
    return runtime.build_app(title=TITLE, description=DESCRIPTION, routers=[build_router(stage, pool, settings)])


def asyncapi_document() -> dict[str, Any]:
    runtime, _ = build_runtime(ValidatorSettings(kafka_bootstrap_servers=DOC_BOOTSTRAP), with_storage=False)
    return runtime.asyncapi(TITLE, DESCRIPTION)
