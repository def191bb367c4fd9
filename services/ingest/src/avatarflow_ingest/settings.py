from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings, UploadLimits
from pydantic import Field


class IngestSettings(ServiceSettings, UploadLimits):
    service_name: str = "ingest"
    http_port: int = 8081
    verifies_tokens = True  # refuses to start without a strong AVATARFLOW_JWT_SECRET
    ingest_rate_limit_per_minute: int = Field(default=30, ge=1, description="uploads per editor per minute")
    ingest_publish_attempts: int = Field(
        default=2,
        ge=1,
        le=10,
        description="publish tries inside an upload request before 503 (each may wait the 15 s request timeout)",
    )
    ingest_idempotency_window_s: int = Field(
        default=86400, ge=60, description="how long an Idempotency-Key binds its upload (retries within it replay)"
    )
    ingest_presigned_expiry_s: int = Field(default=900, ge=60, le=3600, description="presigned PUT URL lifetime")
    ingest_status_base_url: str = Field(
        default="http://127.0.0.1:8085", description="notifier base URL used in status_url"
    )
    ingest_cors_origins: str = Field(
        default="http://127.0.0.1:8085,http://localhost:8085",
        description="origins allowed to upload (the editor page)",
    )
