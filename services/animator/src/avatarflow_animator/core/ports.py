"""What the pack builder needs from the outside world, as protocols the service wires in.

The core draws and encodes nothing itself and reads no clock: ``app.py`` / ``bootstrap.py`` pass
an :class:`AvatarRenderer` (the ONNX warp renderer, ``adapters/onnx_renderer.py``), a
:class:`PackEncoder` (PyAV and Pillow, ``adapters/pyav_encoder.py``), a
:class:`~avatarflow_animator.core.speech.SpeechSynthesizer` (espeak-ng, ``adapters/espeak.py``)
and a :data:`Clock` (``time.perf_counter``). A neural renderer (LivePortrait-style models mounted
from a volume) can implement :class:`AvatarRenderer` later without touching the timeline, the
encoders or the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from avatarflow_contracts import FaceGeometry

from .poses import FacePose
from .speech import SpeechSynthesizer

__all__ = [
    "Audio",
    "AvatarRenderer",
    "Clock",
    "PackEncoder",
    "RenderRequest",
    "RenderedFrames",
    "SpeechSynthesizer",
]

# Seconds from an arbitrary origin (differences only: render, encode and speech timings).
Clock = Callable[[], float]
# int16 mono samples and their sample rate.
Audio = tuple[np.ndarray, int]


@dataclass(frozen=True)
class RenderRequest:
    """Frames to draw of one avatar.

    ``source_rgba`` is the cut-out at output size (H x W x 4 uint8, straight alpha) and ``face``
    its geometry in the same pixel coordinates; ``poses`` has one entry per output frame.
    """

    source_rgba: np.ndarray
    face: FaceGeometry
    poses: Sequence[FacePose]


@dataclass(frozen=True)
class RenderedFrames:
    frames: np.ndarray  # (N, H, W, 4) uint8, straight alpha
    execution_provider: str
    seconds: float


@runtime_checkable
class AvatarRenderer(Protocol):
    """Frames for a list of renderer-agnostic :class:`FacePose` controls (the renderer port)."""

    name: str
    version: str

    @property
    def execution_provider(self) -> str: ...

    def render(self, request: RenderRequest) -> RenderedFrames: ...


class PackEncoder(Protocol):
    """The pack's files as bytes, in the formats of :mod:`avatarflow_animator.core.formats`.

    Implementations must be deterministic for identical input (the pack's bytes are compared
    across redeliveries and runs).
    """

    def encode_png(self, rgba: np.ndarray) -> bytes:
        """(H, W, 4) uint8 straight RGBA -> PNG."""
        ...

    def encode_webm(self, frames: np.ndarray, fps: int, *, loop: bool, audio: Audio | None = None) -> bytes:
        """(N, H, W, 4) uint8 straight RGBA -> WebM (VP9 with alpha; ``audio`` as an Opus track)."""
        ...

    def encode_mp4(self, frames_rgb: np.ndarray, fps: int, *, audio: Audio | None = None) -> bytes:
        """(N, H, W, 3) uint8 RGB -> MP4 (H.264; ``audio`` as AAC)."""
        ...
