"""One configuration system: environment variables read by pydantic-settings.

Every variable is prefixed ``AVATARFLOW_`` and documented in the README's configuration table.
Service-specific settings subclass :class:`ServiceSettings`.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AVATARFLOW_", extra="ignore", frozen=True)

    service_name: str = "avatarflow"
    log_level: str = "INFO"
    log_json: bool = True

    # Broker
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # On for Apache Kafka; the embedded Tansu broker rejects aiokafka's idempotent producer.
    kafka_idempotent_producer: bool = False
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    kafka_max_poll_interval_ms: int = Field(default=300_000, ge=10_000)

    # S3-compatible storage
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_bucket: str = "avatarflow"
    s3_connect_timeout_s: float = 3.0
    s3_read_timeout_s: float = 15.0

    # HTTP: health, readiness and Prometheus metrics (and the service's API where it has one)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)

    # Retries for transient faults (S3, broker); after this many attempts the event is dead-lettered
    # or, for processing stages, turned into avatar.failed.
    max_attempts: int = Field(default=6, ge=1, le=50)
    retry_backoff_initial_s: float = Field(default=0.5, gt=0)
    retry_backoff_max_s: float = Field(default=8.0, gt=0)

    # Auth (HS256 JWT with sub, space_id, role claims)
    jwt_secret: SecretStr = SecretStr("dev-only-change-me-0123456789abcdef")
    jwt_issuer: str = "avatarflow"
    jwt_audience: str = "avatarflow"
