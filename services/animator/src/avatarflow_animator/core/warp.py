"""The landmark warp's frame maths: a render request onto the warp graph's feeds, run by run.

Everything the warp renderer computes outside its ONNX graph lives here: the rig's coefficients
per pose, the moving region and its sampling window, the basis fields in the graph's units, the
mouth-interior layers, which frames are drawn (a recurring pose is drawn once and copied) and
how they are batched into runs. The graph itself (``adapters/onnx_graph.py``, its inputs are
documented there) is run by the adapter through :data:`WarpGraph`, so this module needs no
inference runtime and is tested like the rest of the core.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .ports import RenderRequest
from .rig import BASIS_NAMES, FaceRig

# One graph run: the feeds by input name -> that run's frames, (n, H, W, 4) uint8 straight RGBA.
WarpGraph = Callable[[dict[str, np.ndarray]], np.ndarray]


def warp_frames(request: RenderRequest, run_graph: WarpGraph, frames_per_run: int) -> np.ndarray:
    """(N, H, W, 4) uint8 frames of ``request``, at most ``frames_per_run`` per graph run."""
    source = np.asarray(request.source_rgba)
    size = source.shape[0]
    if source.shape != (size, size, 4) or source.dtype != np.uint8:
        raise ValueError(f"source must be a square RGBA uint8 image, got {source.shape} {source.dtype}")
    if (request.face.image_width, request.face.image_height) != (size, size):
        raise ValueError("face geometry must be in the source image's pixel coordinates")

    rig = FaceRig(np.asarray(request.face.landmarks), size)
    poses = list(request.poses)
    coefficients = np.stack([rig.coefficients(pose) for pose in poses]) if poses else np.zeros((0, len(BASIS_NAMES)))
    frames = np.empty((len(poses), size, size, 4), dtype=np.uint8)
    reach = np.abs(coefficients).max(axis=0) if poses else np.zeros(coefficients.shape[1])
    region = rig.moving_region(reach, source[..., 3])
    x0, y0, x1, y1 = region
    if x1 <= x0 or y1 <= y0:  # nothing moves over visible content: every frame is the source
        frames[:] = source
        return frames

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
    mouth_rows = _band_rows(frames_per_run, my0 - y0, my1 - y0)
    mouth_shape = (4, my1 - my0, mx1 - mx0)
    for run in _runs(drawn, frames_per_run):
        # The mouth interior over the warped face (an empty layer, a closed mouth, is zeros:
        # "over" it leaves every pixel bit-exact).
        mouth = np.zeros((len(run), *mouth_shape), np.float32)
        for k, i in enumerate(run):
            layer = rig.mouth_interior(coefficients[i], mouth_box, mouth_style, edges.get(i))
            if layer is not None:
                mouth[k] = layer
        frames[run] = run_graph(
            {
                **fixed,
                "coefficients": coefficients[run].astype(np.float32),
                "mouth": mouth,
                "mouth_rows": mouth_rows[: len(run)],
            }
        )
    for i, j in enumerate(copy_of):
        if j != i:
            frames[i] = frames[j]
    return frames


def region_identity_grid(region: tuple[int, int, int, int], window: tuple[int, int, int, int]) -> np.ndarray:
    """(1, h, w, 2) GridSample coordinates (align_corners=0) of the region's pixel centres,
    normalised to the sampling window (both boxes are ``(x0, y0, x1, y1)`` on the canvas)."""
    x0, y0, x1, y1 = region
    wx0, wy0, wx1, wy1 = window
    gx = (2.0 * (np.arange(x0, x1, dtype=np.float64) - wx0) + 1.0) / (wx1 - wx0) - 1.0
    gy = (2.0 * (np.arange(y0, y1, dtype=np.float64) - wy0) + 1.0) / (wy1 - wy0) - 1.0
    grid_x, grid_y = np.meshgrid(gx, gy)
    return np.stack([grid_x, grid_y], axis=-1)[None].astype(np.float32)


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
