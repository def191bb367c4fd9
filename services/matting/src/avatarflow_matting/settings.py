from __future__ import annotations

from avatarflow_runtime.settings import ServiceSettings
from pydantic import Field


class MattingSettings(ServiceSettings):
    service_name: str = "matting"
    http_port: int = 8083
    matting_max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="largest original read")
    # The cut-out canvas is 1024 px; decoding more than 2048 px on the long side buys nothing.
    matting_decode_long_side: int = Field(default=2048, ge=512, description="decode size (long side) for matting")
    numba_cache_dir: str | None = Field(default=None, description="writable numba JIT cache (warmed at build)")
