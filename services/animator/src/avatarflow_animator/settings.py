from __future__ import annotations

from typing import Literal

from avatarflow_runtime.settings import ServiceSettings
from pydantic import Field


class AnimatorSettings(ServiceSettings):
    service_name: str = "animator"
    http_port: int = 8084
    # auto: CUDA when onnxruntime can really load it, else CPU. cuda: require the GPU (fail fast).
    animator_execution_provider: Literal["auto", "cuda", "cpu"] = Field(
        default="auto", description="auto: CUDA if it really loads, else CPU; cuda: fail fast without a GPU"
    )
    # Avatars rendered at once by one pod (each is one consumer in the group; they share the GPU).
    animator_max_in_flight: int = Field(default=1, ge=1, le=16, description="avatars rendered at once per pod")
    animator_intra_op_threads: int = Field(
        default=0, ge=0, description="threads per render (onnxruntime and OpenCV); 0 = their defaults"
    )
    animator_preview_text: str = Field(
        default="Hello! I am your new avatar, and I am ready to talk.",
        description="line spoken in the preview clip",
    )
    animator_tts: Literal["espeak-ng", "none"] = Field(
        default="espeak-ng",
        description="text-to-speech for the preview: espeak-ng (offline, Debian package) or none (silent preview)",
    )
    animator_tts_voice: str = Field(default="en-us", description="espeak-ng voice of the preview")
    animator_share_background: str = Field(
        default="#e9edf2",
        pattern=r"^#[0-9a-f]{6}$",
        description="colour behind the avatar in share.mp4 (the opaque MP4 for sharing)",
    )
    animator_max_cutout_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="largest cut-out read")
