"""The renderer port on ONNX Runtime: the landmark warp as one batched graph per run of frames.

:class:`OnnxWarpRenderer` implements :class:`~avatarflow_animator.core.ports.AvatarRenderer`: the
frame maths (rig, moving region, mouth layers, batching) are the core's
(:func:`~avatarflow_animator.core.warp.warp_frames`); this adapter builds the graph
(``onnx_graph.py``), holds the session and runs it.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..core.ports import RenderedFrames, RenderRequest
from ..core.warp import warp_frames
from .onnx_graph import build_warp_graph

# onnxruntime reads this when it is imported, so it is set here, just before the import, wherever
# the adapter is loaded from (the service, the CLI, the benchmarks, the tests); setdefault keeps
# an operator's own choice. The core never imports onnxruntime, so it never needs it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort

RENDERER_NAME = "onnx-warp"
# 1.1: blinks are an eyelid layer (no lid warp), wider lip spread; 1.2: closed lids cover the
# lower lid's rim and carry the skin's texture, the idle loop starts at its slowest moment; 1.3: the
# lower-lid cover fades out below the rim instead of ending in an edge.
# 2.0: blinks slide the person's own lids (warp fields, no painted lid), PP closes the lips over
# a teeth smile, ou narrows more, a shaded mouth cavity with soft teeth in the picture's cast (the
# person's own teeth stay where the photo shows them), a 3-frame blink, an 8 s idle loop.
RENDERER_VERSION = "2.0"
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
# Frames per graph run: bounds memory (the expanded source and warped region, a few MB per frame).
FRAMES_PER_RUN = 8


def default_providers() -> list[str]:
    """CUDA first where this onnxruntime build has it, CPU always as the fallback."""
    available = ort.get_available_providers()
    return [p for p in (CUDA_PROVIDER, CPU_PROVIDER) if p in available]


def providers_for(setting: str) -> list[str] | None:
    """``AVATARFLOW_ANIMATOR_EXECUTION_PROVIDER`` onto onnxruntime's provider list."""
    if setting == "cpu":
        return [CPU_PROVIDER]
    if setting == "cuda":
        return [CUDA_PROVIDER]
    return None  # auto: the renderer tries CUDA and falls back to CPU


class OnnxWarpRenderer:
    """Landmark-driven warp + compositing of a whole batch of frames in one ONNX graph.

    The graph is built and the session created once (at service start-up); ``execution_provider``
    is what the session really runs on. onnxruntime-gpu lists CUDA as *available* even on a node
    whose CUDA libraries cannot load, and then silently falls back to CPU, so we report
    ``session.get_providers()[0]`` after creation, never the requested list.
    """

    name = RENDERER_NAME
    version = RENDERER_VERSION

    def __init__(self, providers: list[str] | None = None, intra_op_threads: int | None = None) -> None:
        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
            options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self._model = build_warp_graph()
        self._session = ort.InferenceSession(
            self._model.SerializeToString(), sess_options=options, providers=providers or default_providers()
        )
        self._provider: str = self._session.get_providers()[0]

    @property
    def execution_provider(self) -> str:
        return self._provider

    def render(self, request: RenderRequest) -> RenderedFrames:
        started = time.perf_counter()
        # FRAMES_PER_RUN is read per call (the tests vary it to show runs cannot change a frame).
        frames = warp_frames(request, self._run, FRAMES_PER_RUN)
        return RenderedFrames(frames, self._provider, time.perf_counter() - started)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        (rendered,) = self._session.run(["frames"], feeds)
        return np.asarray(rendered)
