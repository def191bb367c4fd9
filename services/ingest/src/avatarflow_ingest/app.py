"""Ingest service wiring: settings -> runtime -> FastAPI app."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from avatarflow_contracts import ImageUploaded, Topic
from avatarflow_runtime.service import DOC_BOOTSTRAP, ServiceRuntime
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .handlers import router
from .settings import IngestSettings
from .uploads import UploadService

TITLE = "avatarflow ingest"
DESCRIPTION = (
    "Accepts avatar images from Space editors, checks them without decoding (size, type by magic "
    "bytes, header dimensions), stores the original in S3 and publishes image.uploaded."
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_runtime(settings: IngestSettings, *, with_storage: bool = True) -> ServiceRuntime:
    runtime = ServiceRuntime.create(settings, with_storage=with_storage)
    runtime.bus.declare(Topic.IMAGE_UPLOADED, ImageUploaded, "A new upload entered the pipeline")
    return runtime


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = build_runtime(settings)
    assert runtime.store is not None  # built with storage
    app = runtime.build_app(title=TITLE, description=DESCRIPTION, routers=[router])
    app.state.uploads = UploadService(runtime.store, runtime.bus, utcnow, settings)
    origins = [o.strip() for o in settings.ingest_cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["POST", "GET"],
            allow_headers=["authorization", "content-type", "idempotency-key"],
            expose_headers=["idempotent-replayed", "retry-after"],
        )
    return app


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI document FastStream generates from this service's broker."""
    settings = IngestSettings(kafka_bootstrap_servers=DOC_BOOTSTRAP)
    return build_runtime(settings, with_storage=False).asyncapi(TITLE, DESCRIPTION)
