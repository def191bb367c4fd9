from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings
from pydantic import Field


class IngestSettings(ServiceSettings):
    service_name: str = "ingest"
    http_port: int = 8081
    ingest_max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # 40 MP covers any phone camera (a 12 MP photo is 12e6); decompression bombs are far above.
    ingest_max_pixels: int = Field(default=40_000_000, ge=1)
    ingest_max_side: int = Field(default=16_384, ge=64)
    ingest_rate_limit_per_minute: int = Field(default=30, ge=1, description="uploads per editor per minute")
    ingest_presigned_expiry_s: int = Field(default=900, ge=60, le=3600)
    ingest_status_base_url: str = "http://127.0.0.1:8085"
    ingest_cors_origins: str = "http://127.0.0.1:8085,http://localhost:8085"
