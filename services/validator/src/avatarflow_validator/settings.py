from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings, UploadLimits


class ValidatorSettings(ServiceSettings, UploadLimits):
    service_name: str = "validator"
    http_port: int = 8082
    verifies_tokens = True  # refuses to start without a strong AVATARFLOW_JWT_SECRET
