"""The batched warp ONNX graph, built with ``onnx.helper`` at start-up.

Only the *moving region* of the canvas goes through the graph: the box where some basis field is
non-zero over visible content (head, hair, neck). (Stacking all grids into one tall GridSample
over a single source was measured 3x slower on onnxruntime's CPU kernel than a per-frame batch,
so the source is Expanded.)

Inputs (N frames per run; K basis fields; moving region h x w; its sampling window h' x w' (the
region grown by the largest displacement)):

- ``source``       (1, 4, h', w') float32  straight RGBA 0..1
- ``basis``        (K, h*w*2)     float32  backward displacement fields, normalised grid units
- ``identity``     (1, h, w, 2)   float32  the identity sampling grid of the region's pixels
- ``coefficients`` (N, K)         float32  per-frame basis weights

Output ``warped`` (N, 4, h, w) float32 premultiplied RGBA of the region.

Steps: premultiply -> fields = coefficients @ basis -> GridSample (bilinear on premultiplied
colour, so edges never pick up the colour of transparent pixels). Compositing the eyelid and
mouth layers, unpremultiplying and quantising happen in the renderer, in numpy, in place and only
over the boxes that have a layer: as ONNX nodes they were some twenty full-region passes (Pads of
the layers to the region, Splits, Concats, each a fresh tensor) that took longer than the
GridSample itself on one CPU core (measured), for the same float32 arithmetic.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

OPSET = 17  # GridSample needs >= 16

_TYPES = {np.dtype(np.float32).str: TensorProto.FLOAT, np.dtype(np.int64).str: TensorProto.INT64}


def _const(name: str, values: np.ndarray) -> onnx.NodeProto:
    tensor = helper.make_tensor(name, _TYPES[values.dtype.str], values.shape, values.ravel().tolist())
    return helper.make_node("Constant", [], [name], value=tensor)


def build_warp_graph() -> onnx.ModelProto:
    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("source", f32, [1, 4, "Hs", "Ws"]),
        helper.make_tensor_value_info("basis", f32, ["K", "HW2"]),
        helper.make_tensor_value_info("identity", f32, [1, "h", "w", 2]),
        helper.make_tensor_value_info("coefficients", f32, ["N", "K"]),
    ]
    outputs = [helper.make_tensor_value_info("warped", f32, ["N", 4, "h", "w"])]
    node = helper.make_node
    nodes = [
        _const("split_rgb_a", np.array([3, 1], np.int64)),
        _const("hw_start", np.array([1], np.int64)),  # h, w = Shape(identity)[1:3]
        _const("hw_end", np.array([3], np.int64)),
        _const("axis0", np.array([0], np.int64)),
        _const("minus_one", np.array([-1], np.int64)),
        _const("one_i", np.array([1], np.int64)),
        _const("two_i", np.array([2], np.int64)),
        _const("four_i", np.array([4], np.int64)),
        # Premultiply the (single) source once.
        node("Split", ["source", "split_rgb_a"], ["src_rgb", "src_a"], axis=1),
        node("Mul", ["src_rgb", "src_a"], ["src_rgb_p"]),
        node("Concat", ["src_rgb_p", "src_a"], ["src_p"], axis=1),
        # Dense fields from the per-frame coefficients, then the sampling grids.
        node("MatMul", ["coefficients", "basis"], ["flat_field"]),
        node("Shape", ["identity"], ["identity_shape"]),
        node("Slice", ["identity_shape", "hw_start", "hw_end", "axis0"], ["hw"]),
        node("Concat", ["minus_one", "hw", "two_i"], ["field_shape"], axis=0),
        node("Reshape", ["flat_field", "field_shape"], ["field"]),
        node("Add", ["identity", "field"], ["grid"]),
        node("Shape", ["grid"], ["grid_shape"]),
        node("Slice", ["grid_shape", "axis0", "one_i", "axis0"], ["n"]),
        node("Shape", ["src_p"], ["src_shape"]),
        node("Slice", ["src_shape", "one_i", "four_i", "axis0"], ["chw"]),
        node("Concat", ["n", "chw"], ["batch_shape"], axis=0),
        node("Expand", ["src_p", "batch_shape"], ["src_n"]),
        # Opset 16-19 spell bilinear "bilinear" (opset 20 renamed it "linear").
        node(
            "GridSample",
            ["src_n", "grid"],
            ["warped"],
            mode="bilinear",
            padding_mode="zeros",
            align_corners=0,
        ),
    ]
    graph = helper.make_graph(nodes, "avatarflow_warp", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.checker.check_model(model, full_check=True)
    return model


def region_identity_grid(region: tuple[int, int, int, int], window: tuple[int, int, int, int]) -> np.ndarray:
    """(1, h, w, 2) GridSample coordinates (align_corners=0) of the region's pixel centres,
    normalised to the sampling window (both boxes are ``(x0, y0, x1, y1)`` on the canvas)."""
    x0, y0, x1, y1 = region
    wx0, wy0, wx1, wy1 = window
    gx = (2.0 * (np.arange(x0, x1, dtype=np.float64) - wx0) + 1.0) / (wx1 - wx0) - 1.0
    gy = (2.0 * (np.arange(y0, y1, dtype=np.float64) - wy0) + 1.0) / (wy1 - wy0) - 1.0
    grid_x, grid_y = np.meshgrid(gx, gy)
    return np.stack([grid_x, grid_y], axis=-1)[None].astype(np.float32)
