"""Process setup and the production ports: the adapters the core runs with outside the tests' fakes.

``stage_ports`` is what ``app.py`` hands the stage (built from the settings, the one place that reads
them for the adapters); :func:`render_pack` is the core's :func:`~avatarflow_animator.core.build_pack`
with the PyAV encoder and ``time.perf_counter``, for the CLI, the benchmarks and the tests.
"""

from __future__ import annotations

import time
from functools import partial

import cv2
import numpy as np
from avatarflow_contracts import FaceGeometry

from .adapters.espeak import EspeakNg
from .adapters.onnx_renderer import CUDA_PROVIDER, OnnxWarpRenderer, providers_for
from .adapters.pyav_encoder import PyAvEncoder
from .core import DEFAULT_PREVIEW_TEXT, SHARE_BACKGROUND, AvatarPack, AvatarRenderer, SpeechSynthesizer, build_pack
from .handlers import StagePorts
from .settings import AnimatorSettings

ENCODER = PyAvEncoder()  # stateless: one for every render thread


def create_renderer(settings: AnimatorSettings) -> OnnxWarpRenderer:
    """The ONNX warp renderer the settings ask for (builds the graph and session: at start-up).

    Also sizes OpenCV's thread pool, process-wide: the rig draws the mouth layer (and builds its
    fields) with OpenCV, whose pool would otherwise size itself to the node's cores, not to the
    pod's share the setting describes. ``cuda`` fails here when onnxruntime really runs elsewhere.
    """
    threads = settings.animator_intra_op_threads or None
    if threads:
        cv2.setNumThreads(threads)
    renderer = OnnxWarpRenderer(providers_for(settings.animator_execution_provider), threads)
    provider = renderer.execution_provider
    if settings.animator_execution_provider == "cuda" and provider != CUDA_PROVIDER:
        raise RuntimeError(f"CUDA requested but onnxruntime runs on {provider}")
    return renderer


def stage_ports(settings: AnimatorSettings) -> StagePorts:
    speech = partial(EspeakNg, settings.animator_tts_voice) if settings.animator_tts == "espeak-ng" else None
    return StagePorts(
        create_renderer=partial(create_renderer, settings),
        create_speech=speech,
        encoder=ENCODER,
        clock=time.perf_counter,
    )


def render_pack(
    cutout_rgba: np.ndarray,
    face: FaceGeometry,
    *,
    renderer: AvatarRenderer,
    preview_text: str = DEFAULT_PREVIEW_TEXT,
    speech: SpeechSynthesizer | None = None,
    share_background: str = SHARE_BACKGROUND,
) -> AvatarPack:
    """:func:`~avatarflow_animator.core.build_pack` with the production encoder and clock."""
    return build_pack(
        cutout_rgba,
        face,
        renderer=renderer,
        encoder=ENCODER,
        clock=time.perf_counter,
        preview_text=preview_text,
        speech=speech,
        share_background=share_background,
    )
