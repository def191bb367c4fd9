from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings
from pydantic import Field


class ValidatorSettings(ServiceSettings):
    service_name: str = "validator"
    http_port: int = 8082
    # Same admission limits as ingest (the pre-check answers what an upload would get).
    ingest_max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="upload size cap (413 above)"
    )
    ingest_max_pixels: int = Field(
        default=40_000_000, ge=1, description="pixel cap read from the header (decompression bombs)"
    )
    ingest_max_side: int = Field(default=16_384, ge=64, description="longest allowed side in pixels")
