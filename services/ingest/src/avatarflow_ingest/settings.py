from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings
from pydantic import Field


class IngestSettings(ServiceSettings):
    service_name: str = "ingest"
    http_port: int = 8081
    ingest_max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="upload size cap (413 above)"
    )
    # 40 MP covers any phone camera (a 12 MP photo is 12e6); decompression bombs are far above.
    ingest_max_pixels: int = Field(
        default=40_000_000, ge=1, description="pixel cap read from the header (decompression bombs)"
    )
    ingest_max_side: int = Field(default=16_384, ge=64, description="longest allowed side in pixels")
    ingest_rate_limit_per_minute: int = Field(default=30, ge=1, description="uploads per editor per minute")
    ingest_presigned_expiry_s: int = Field(
        default=900, ge=60, le=3600, description="presigned PUT URL lifetime"
    )
    ingest_status_base_url: str = Field(
        default="http://127.0.0.1:8085", description="notifier base URL used in status_url"
    )
    ingest_cors_origins: str = Field(
        default="http://127.0.0.1:8085,http://localhost:8085",
        description="origins allowed to upload (the editor page)",
    )
