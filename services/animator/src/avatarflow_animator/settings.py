from __future__ import annotations

from typing import Literal

from pydantic import Field

from avatarflow_runtime.settings import ServiceSettings


class AnimatorSettings(ServiceSettings):
    service_name: str = "animator"
    http_port: int = 8084
    # auto: CUDA when onnxruntime can really load it, else CPU. cuda: require the GPU (fail fast).
    animator_execution_provider: Literal["auto", "cuda", "cpu"] = "auto"
    # Avatars rendered at once by one pod (each is one consumer in the group; they share the GPU).
    animator_max_in_flight: int = Field(default=1, ge=1, le=16)
    animator_intra_op_threads: int = Field(default=0, ge=0, description="0 = onnxruntime default")
    animator_preview_text: str = "Hello! I am your new avatar, and I am ready to talk."
    animator_max_cutout_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
