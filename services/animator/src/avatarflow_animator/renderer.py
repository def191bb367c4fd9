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

from .eyelids import EyelidLayer
from .graph import build_warp_graph, region_identity_grid
from .poses import FacePose
from .rig import BASIS_NAMES, FaceRig

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort

RENDERER_NAME = "onnx-warp"
# 1.1: blinks are an eyelid layer (no lid warp), wider lip spread; 1.2: closed lids cover the
# lower lid's rim and carry the skin's texture, the idle loop starts at its slowest moment.
RENDERER_VERSION = "1.2"
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
# Frames per graph run: bounds memory (intermediates are about 25 MB per 512x512 frame).
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

        rig = FaceRig(np.asarray(request.face.landmarks)[:, :2], size)
        poses = list(request.poses)
        coefficients = (
            np.stack([rig.coefficients(pose) for pose in poses]) if poses else np.zeros((0, len(BASIS_NAMES)))
        )
        frames = np.empty((len(poses), size, size, 4), dtype=np.uint8)
        reach = np.abs(coefficients).max(axis=0) if poses else np.zeros(coefficients.shape[1])
        region = rig.moving_region(reach, source[..., 3])
        eyelids = EyelidLayer(rig, source)
        if any(pose.blink > 0 for pose in poses):  # the lids change pixels even on a still head
            region = _union_box(region, eyelids.box(rig.largest_shift(reach, eyelids.box(0.0))))
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
        lid_box = _clip_box(eyelids.box(largest), region)
        ex0, ey0, ex1, ey1 = lid_box
        lid_fields = rig.dense_basis(lid_box)  # (K, he*we, 2) backward fields at the lid pixels
        lid_pixels = rig.pixel_centres(lid_box)
        outside = source.copy()
        outside[y0:y1, x0:x1] = 0
        fixed = {
            "source": straight[None],
            "basis": basis,
            "identity": region_identity_grid(region, window),
            "mouth_pads": np.array([0, 0, my0 - y0, mx0 - x0, 0, 0, y1 - my1, x1 - mx1], np.int64),
            "eyelid_pads": np.array([0, 0, ey0 - y0, ex0 - x0, 0, 0, y1 - ey1, x1 - ex1], np.int64),
            "static": outside[None],
            "region_pads": np.array([0, y0, x0, 0, 0, size - y1, size - x1, 0], np.int64),
        }
        for start in range(0, len(poses), FRAMES_PER_RUN):
            chunk = coefficients[start : start + FRAMES_PER_RUN]
            blinks = np.clip([p.blink for p in poses[start : start + FRAMES_PER_RUN]], 0.0, 1.0)
            mouth = np.stack([rig.mouth_interior(c, mouth_box) for c in chunk])
            lids = np.stack(
                [
                    eyelids.layer(float(b), lid_pixels - np.tensordot(c, lid_fields, axes=1), (ey1 - ey0, ex1 - ex0))
                    if b > 0
                    else np.zeros((4, ey1 - ey0, ex1 - ex0), np.float32)
                    for c, b in zip(chunk, blinks, strict=True)
                ]
            )
            (frames[start : start + len(chunk)],) = self._session.run(
                ["frames"],
                {
                    **fixed,
                    "coefficients": chunk.astype(np.float32),
                    "eyelids": lids,
                    "mouth": mouth,
                },
            )
        return RenderedFrames(frames, self._provider, time.perf_counter() - started)


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
