"""One configuration system: environment variables read by pydantic-settings.

Every variable is prefixed ``AVATARFLOW_`` and documented in the README's configuration table
(generated from these classes by ``python -m avatarflow.config_table``; a test keeps it in sync).
Service-specific settings subclass :class:`ServiceSettings`.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# HS256 keys shorter than the hash output are brute-forceable offline from one token (RFC 7518 3.2).
MIN_JWT_SECRET_BYTES = 32
# Secrets published in this repository (the old built-in default, compose's former fallback): anyone
# can sign tokens with them, so no service accepts them however long they are.
PUBLIC_JWT_SECRETS = frozenset({"dev-only-change-me-0123456789abcdef"})


class InsecureSecret(RuntimeError):
    """The service would verify bearer tokens with a key anyone may know; it refuses to start."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AVATARFLOW_", extra="ignore", frozen=True)
    # Services that verify bearer tokens (ingest, validator, notifier) refuse to start without a strong key.
    verifies_tokens: ClassVar[bool] = False

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
    http_api_docs: bool = Field(
        default=True, description="serve /docs, /redoc and /openapi.json (false in production: the chart's default)"
    )
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, description="request headers must arrive within this (else 408 and the connection closes)"
    )
    http_body_idle_timeout_s: float = Field(
        default=15.0, gt=0, description="longest gap between request body chunks (else 408)"
    )
    http_body_timeout_s: float = Field(default=300.0, gt=0, description="a request body must be complete within this")
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="request body cap (413, at once for a larger Content-Length); ingest and the validator "
        "take their upload cap plus 64 KiB of multipart framing when that is larger",
    )

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
        default=SecretStr(""),
        description="HS256 key for bearer tokens, at least 32 bytes; required by ingest, validator and notifier "
        "(the embedded demo mints one per run)",
    )
    jwt_issuer: str = Field(default="avatarflow", description="required iss claim")
    jwt_audience: str = Field(default="avatarflow", description="required aud claim")

    def require_token_secret(self) -> None:
        """Raise :class:`InsecureSecret` unless ``jwt_secret`` is set, unpublished and >= 32 bytes."""
        secret = self.jwt_secret.get_secret_value()
        if not secret:
            reason = "AVATARFLOW_JWT_SECRET is not set"
        elif secret in PUBLIC_JWT_SECRETS:
            reason = "AVATARFLOW_JWT_SECRET is a value published in the avatarflow repository"
        elif len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            reason = f"AVATARFLOW_JWT_SECRET is {len(secret.encode())} bytes, under {MIN_JWT_SECRET_BYTES}"
        else:
            return
        raise InsecureSecret(
            f"{reason}: refusing to start. Set it to at least {MIN_JWT_SECRET_BYTES} random bytes "
            "(e.g. `openssl rand -hex 32`), the same value on every service that verifies tokens."
        )


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
