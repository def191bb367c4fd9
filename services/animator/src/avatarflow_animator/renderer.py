"""The renderer interface and its landmark-warp implementation on ONNX Runtime.

:class:`AvatarRenderer` is what the pack builder needs from any renderer: frames for a list of
renderer-agnostic :class:`~avatarflow_animator.poses.FacePose` controls. The warp renderer
implements it with one batched ONNX graph; a neural renderer (LivePortrait-style models mounted
from a volume) can implement the same protocol later without touching the timeline or encoders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from avatarflow_contracts import FaceGeometry

from .graph import build_warp_graph, region_identity_grid
from .poses import FacePose
from .rig import BASIS_NAMES, FaceRig

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
    name: str
    version: str

    @property
    def execution_provider(self) -> str: ...

    def render(self, request: RenderRequest) -> RenderedFrames: ...


def default_providers() -> list[str]:
    """CUDA first where this onnxruntime build has it, CPU always as the fallback."""
    available = ort.get_available_providers()
    return [p for p in (CUDA_PROVIDER, CPU_PROVIDER) if p in available]


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
        self._provider = self._session.get_providers()[0]

    @property
    def execution_provider(self) -> str:
        return self._provider

    def render(self, request: RenderRequest) -> RenderedFrames:
        started = time.perf_counter()
        source = np.asarray(request.source_rgba)
        size = source.shape[0]
        if source.shape != (size, size, 4) or source.dtype != np.uint8:
            raise ValueError(f"source must be a square RGBA uint8 image, got {source.shape} {source.dtype}")
        if (request.face.image_width, request.face.image_height) != (size, size):
            raise ValueError("face geometry must be in the source image's pixel coordinates")

        rig = FaceRig(np.asarray(request.face.landmarks), size)
        poses = list(request.poses)
        coefficients = (
            np.stack([rig.coefficients(pose) for pose in poses]) if poses else np.zeros((0, len(BASIS_NAMES)))
        )
        frames = np.empty((len(poses), size, size, 4), dtype=np.uint8)
        reach = np.abs(coefficients).max(axis=0) if poses else np.zeros(coefficients.shape[1])
        region = rig.moving_region(reach, source[..., 3])
        x0, y0, x1, y1 = region
        if x1 <= x0 or y1 <= y0:  # nothing moves over visible content: every frame is the source
            frames[:] = source
            return RenderedFrames(frames, self._provider, time.perf_counter() - started)

        fields = rig.dense_basis(region)
        largest = float(np.tensordot(reach, np.linalg.norm(fields, axis=-1), axes=1).max(initial=0.0))
        grow = int(np.ceil(largest)) + 2
        window = (max(x0 - grow, 0), max(y0 - grow, 0), min(x1 + grow, size), min(y1 + grow, size))
        wx0, wy0, wx1, wy1 = window
        # Backward fields in pixels -> GridSample's normalised units, sampling at p - field(p).
        to_grid = np.array([-2.0 / (wx1 - wx0), -2.0 / (wy1 - wy0)])
        basis = (fields * to_grid).reshape(len(fields), -1).astype(np.float32)
        straight = source[wy0:wy1, wx0:wx1].astype(np.float32).transpose(2, 0, 1) / 255.0
        mouth_box = _clip_box(rig.mouth_box(largest), region)
        mx0, my0, mx1, my1 = mouth_box
        # A pose that recurs (the rest pose as the "sil" cell, the idle frames the preview
        # starts from) is drawn once and copied: within a request a frame depends on its pose alone.
        first: dict[bytes, int] = {}
        copy_of = [first.setdefault(c.tobytes(), i) for i, c in enumerate(coefficients)]
        drawn = list(first.values())
        # The inner lips of every drawn frame whose jaw is open, in one vectorised fixed-point solve.
        opening = [i for i in drawn if coefficients[i, BASIS_NAMES.index("jaw")] > 0.0]
        edges = dict(zip(opening, rig.opening_edges(coefficients[opening]), strict=True))
        mouth_style = rig.mouth_style(source)
        outside = source.copy()
        outside[y0:y1, x0:x1] = 0
        fixed = {
            "source": straight[None],
            "basis": basis,
            "identity": region_identity_grid(region, window),
            "mouth_pads": np.array([0, 0, 0, mx0 - x0, 0, 0, 0, x1 - mx1], np.int64),
            "static": outside[None],
            "region_pads": np.array([0, y0, x0, 0, 0, size - y1, size - x1, 0], np.int64),
        }
        mouth_rows = _band_rows(FRAMES_PER_RUN, my0 - y0, my1 - y0)
        mouth_shape = (4, my1 - my0, mx1 - mx0)
        for run in _runs(drawn, FRAMES_PER_RUN):
            # The mouth interior over the warped face (an empty layer, a closed mouth, is zeros:
            # "over" it leaves every pixel bit-exact).
            mouth = np.zeros((len(run), *mouth_shape), np.float32)
            for k, i in enumerate(run):
                layer = rig.mouth_interior(coefficients[i], mouth_box, mouth_style, edges.get(i))
                if layer is not None:
                    mouth[k] = layer
            (rendered,) = self._session.run(
                ["frames"],
                {
                    **fixed,
                    "coefficients": coefficients[run].astype(np.float32),
                    "mouth": mouth,
                    "mouth_rows": mouth_rows[: len(run)],
                },
            )
            frames[run] = rendered
        for i, j in enumerate(copy_of):
            if j != i:
                frames[i] = frames[j]
        return RenderedFrames(frames, self._provider, time.perf_counter() - started)


def _band_rows(frames: int, start: int, stop: int) -> np.ndarray:
    """(frames, 4, stop - start, 3) int64 [frame, channel, row] of the rows ``start:stop``: the
    graph's GatherND / ScatterND indices of a layer's band in the warped region."""
    grid = np.meshgrid(np.arange(frames), np.arange(4), np.arange(start, stop), indexing="ij")
    return np.stack(grid, axis=-1).astype(np.int64)


def _runs(indices: list[int], size: int) -> list[list[int]]:
    """``indices`` in graph runs of at most ``size`` (>= 2) frames, never a run of one frame.

    With one row onnxruntime's MatMul takes another kernel (a matrix-vector product) that can
    round the fields differently (measured: other bytes); with two or more rows the bytes are
    the same whatever the run, so leaving out repeated poses cannot change any frame.
    """
    runs = [indices[start : start + size] for start in range(0, len(indices), size)]
    if len(runs) > 1 and len(runs[-1]) == 1:
        runs[-1].insert(0, runs[-2].pop())
    elif len(runs) == 1 and len(runs[0]) == 1:
        runs[0].append(runs[0][0])  # the one frame drawn twice, into the same place
    return runs


def _clip_box(box: tuple[int, int, int, int], region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``box`` limited to ``region`` (both ``(x0, y0, x1, y1)``); may come out empty."""
    x0, y0, x1, y1 = region
    return (
        min(max(box[0], x0), x1),
        min(max(box[1], y0), y1),
        max(min(box[2], x1), x0),
        max(min(box[3], y1), y0),
    )


def _union_box(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    if a[2] <= a[0] or a[3] <= a[1]:
        return b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
