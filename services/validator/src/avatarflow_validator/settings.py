from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings, UploadLimits
from pydantic import Field


class ValidatorSettings(ServiceSettings, UploadLimits):
    service_name: str = "validator"
    http_port: int = 8082
    verifies_tokens = True  # refuses to start without a strong AVATARFLOW_JWT_SECRET
    validator_precheck_rate_limit_per_minute: int = Field(
        default=20, ge=1, description="pre-checks per editor per minute (429 with Retry-After above)"
    )
    validator_precheck_workers: int = Field(
        default=1,
        ge=1,
        le=8,
        description="pre-checks running at once, each on its own thread and validator, apart from the pipeline",
    )
    validator_precheck_queue: int = Field(
        default=2, ge=0, description="pre-checks waiting for a worker; more are refused at once (503)"
    )
