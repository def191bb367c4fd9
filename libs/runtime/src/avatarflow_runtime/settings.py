"""One configuration system: environment variables read by pydantic-settings.

Every variable is prefixed ``AVATARFLOW_`` and documented in the README's configuration table
(generated from these classes by ``python -m avatarflow.config_table``; a test keeps it in sync).
Service-specific settings subclass :class:`ServiceSettings`.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AVATARFLOW_", extra="ignore", frozen=True)

    service_name: str = Field(default="avatarflow", description="name in logs, metrics and the Kafka client id")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR")
    log_json: bool = Field(default=True, description="JSON log lines (false: human-readable console)")

    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", description="comma-separated host:port list")
    kafka_idempotent_producer: bool = Field(
        default=False,
        description="true on Apache Kafka; the embedded Tansu broker rejects aiokafka's idempotent producer",
    )
    kafka_max_request_bytes: int = Field(
        default=1_048_576,
        ge=65_536,
        description="producer request limit; larger dead-letter values go to S3 (dead-letters/) instead",
    )
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000, description="consumer group session timeout")
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100, description="consumer heartbeat interval")
    kafka_max_poll_interval_ms: int = Field(
        default=300_000, ge=10_000, description="longest processing of one record; also the rebalance timeout"
    )

    s3_endpoint_url: str | None = Field(default=None, description="S3 API endpoint (unset: AWS S3)")
    s3_region: str = Field(default="us-east-1", description="S3 region")
    s3_access_key_id: SecretStr | None = Field(default=None, description="S3 access key (unset: default AWS chain)")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key")
    s3_bucket: str = Field(default="avatarflow", description="bucket for originals, cut-outs, packs, catalogue")
    s3_connect_timeout_s: float = Field(default=3.0, description="S3 connect timeout")
    s3_read_timeout_s: float = Field(default=15.0, description="S3 read timeout")

    http_host: str = Field(default="127.0.0.1", description="HTTP bind address (0.0.0.0 in containers)")
    http_port: int = Field(default=8080, ge=0, le=65535, description="HTTP port: API, /healthz, /readyz, /metrics")

    shutdown_grace_s: float = Field(
        default=55.0,
        gt=1,
        description=(
            "SIGTERM: time to finish the record in hand (a render) and drain HTTP; the chart sets the pod's "
            "terminationGracePeriodSeconds - 5"
        ),
    )

    def shutdown_budget(self) -> tuple[float, float]:
        """(HTTP drain, broker graceful timeout) splitting ``shutdown_grace_s``: uvicorn drains connections
        first (at most 10 s, SSE streams included), then the broker waits for the message in hand."""
        http = min(10.0, self.shutdown_grace_s / 4)
        return http, self.shutdown_grace_s - http

    max_attempts: int = Field(
        default=6, ge=1, le=50, description="attempts per record before dead-lettering (and avatar.failed)"
    )
    retry_backoff_initial_s: float = Field(default=0.5, gt=0, description="first retry delay; doubles each attempt")
    retry_backoff_max_s: float = Field(default=8.0, gt=0, description="retry delay cap")

    jwt_secret: SecretStr = Field(
        default=SecretStr("dev-only-change-me-0123456789abcdef"), description="HS256 key for bearer tokens"
    )
    jwt_issuer: str = Field(default="avatarflow", description="required iss claim")
    jwt_audience: str = Field(default="avatarflow", description="required aud claim")


class UploadLimits(BaseSettings):
    """Upload admission limits, shared by ingest and the validator's pre-check (same answers)."""

    model_config = SettingsConfigDict(env_prefix="AVATARFLOW_", extra="ignore", frozen=True)

    ingest_max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="upload size cap (413 above)")
    ingest_max_pixels: int = Field(
        default=40_000_000, ge=1, description="pixel cap read from the header (decompression bombs)"
    )
    ingest_max_side: int = Field(default=16_384, ge=64, description="longest allowed side in pixels")

    def admission_limits(self) -> dict[str, int]:
        """Keyword arguments for ``avatarflow_imaging.admission.admit``."""
        return {
            "max_bytes": self.ingest_max_upload_bytes,
            "max_pixels": self.ingest_max_pixels,
            "max_side": self.ingest_max_side,
        }
