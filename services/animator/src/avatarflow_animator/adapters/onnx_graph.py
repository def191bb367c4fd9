"""The batched warp ONNX graph, built with ``onnx.helper`` at start-up (the renderer adapter's model).

The feeds are computed by the core (:func:`~avatarflow_animator.core.warp.warp_frames`); the input
names and shapes below are the contract between the two.

Only the *moving region* of the canvas goes through the graph: the box where some basis field is
non-zero over visible content (head, hair, neck). (Stacking all grids into one tall GridSample
over a single source was measured 3x slower on onnxruntime's CPU kernel than a per-frame batch,
so the source is Expanded.)

Inputs (N frames per run; K basis fields; H x W canvas; moving region h x w; its sampling
window h' x w' (the region grown by the largest displacement); mouth box hm x wm):

- ``source``       (1, 4, h', w') float32  straight RGBA 0..1
- ``basis``        (K, h*w*2)     float32  backward displacement fields, normalised grid units
- ``identity``     (1, h, w, 2)   float32  the identity sampling grid of the region's pixels
- ``coefficients`` (N, K)         float32  per-frame basis weights
- ``mouth``        (N, 4, hm, wm) float32  premultiplied mouth-interior layer (zeros while closed)
- ``mouth_rows``   (N, 4, hm, 3)  int64    [frame, channel, row] of the mouth box's rows in the region
- ``mouth_pads``   (8,)           int64    Pad amounts placing the mouth box in the region's width
- ``static``       (1, H, W, 4)   uint8    the rest frame with the region zeroed (the outside)
- ``region_pads``  (8,)           int64    Pad amounts placing the region on the canvas

Output ``frames`` (N, H, W, 4) uint8 straight RGBA.

Steps: premultiply -> fields = coefficients @ basis -> GridSample (bilinear on premultiplied
colour, so edges never pick up the colour of transparent pixels; blinks are fields too, the
person's own lids slide) -> the mouth interior *over* the warped face on its rows only (GatherND
of the band, one Mul + Add with the layer padded to the band's width, ScatterND back) ->
unpremultiply on channel slices -> x255 ->
QuantizeLinear (scale 1: round half to even + saturate, one pass) -> uint8 channels concatenated,
transposed channels-last -> padded to the canvas and added to the static outside (disjoint
supports, so Add is a paste). All of it in the graph, so a GPU pod composites on CUDA as well.
(As full-region Pads, Splits, Concats, Clip, Round and Cast these steps once took longer than the
GridSample on one CPU core; the band-only and uint8 forms give the same bytes for less.)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

OPSET = 17  # GridSample needs >= 16

_TYPES = {
    np.dtype(np.float32).str: TensorProto.FLOAT,
    np.dtype(np.int64).str: TensorProto.INT64,
    np.dtype(np.uint8).str: TensorProto.UINT8,
}


def _const(name: str, values: np.ndarray) -> onnx.NodeProto:
    tensor = helper.make_tensor(name, _TYPES[values.dtype.str], values.shape, values.ravel().tolist())
    return helper.make_node("Constant", [], [name], value=tensor)


def build_warp_graph() -> onnx.ModelProto:
    f32, i64, u8 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.UINT8
    inputs = [
        helper.make_tensor_value_info("source", f32, [1, 4, "Hs", "Ws"]),
        helper.make_tensor_value_info("basis", f32, ["K", "HW2"]),
        helper.make_tensor_value_info("identity", f32, [1, "h", "w", 2]),
        helper.make_tensor_value_info("coefficients", f32, ["N", "K"]),
        helper.make_tensor_value_info("mouth", f32, ["N", 4, "hm", "wm"]),
        helper.make_tensor_value_info("mouth_rows", i64, ["N", 4, "hm", 3]),
        helper.make_tensor_value_info("mouth_pads", i64, [8]),
        helper.make_tensor_value_info("static", u8, [1, "H", "W", 4]),
        helper.make_tensor_value_info("region_pads", i64, [8]),
    ]
    outputs = [helper.make_tensor_value_info("frames", u8, ["N", "H", "W", 4])]
    node = helper.make_node
    nodes = [
        _const("one", np.array(1.0, np.float32)),
        _const("zero", np.array(0.0, np.float32)),
        _const("eps", np.array(1e-6, np.float32)),
        _const("full_scale", np.array(255.0, np.float32)),
        _const("zero_u8", np.array(0, np.uint8)),
        _const("split_rgb_a", np.array([3, 1], np.int64)),
        _const("hw_start", np.array([1], np.int64)),  # h, w = Shape(identity)[1:3]
        _const("hw_end", np.array([3], np.int64)),
        _const("axis0", np.array([0], np.int64)),
        _const("axis1", np.array([1], np.int64)),
        _const("minus_one", np.array([-1], np.int64)),
        _const("one_i", np.array([1], np.int64)),
        _const("two_i", np.array([2], np.int64)),
        _const("three_i", np.array([3], np.int64)),
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
        *_over_band("mouth", "mouth_rows", "mouth_pads", "warped", "composed"),
        # Back to straight alpha, 8 bits, channels last, pasted into the static frame.
        node("Slice", ["composed", "three_i", "four_i", "axis1"], ["out_a"]),
        node("Slice", ["composed", "axis0", "three_i", "axis1"], ["out_rgb_p"]),
        node("Max", ["out_a", "eps"], ["safe_a"]),
        node("Div", ["out_rgb_p", "safe_a"], ["out_rgb"]),
        node("Mul", ["out_rgb", "full_scale"], ["scaled_rgb"]),
        node("Mul", ["out_a", "full_scale"], ["scaled_a"]),
        # QuantizeLinear with scale 1: round half to even and saturate to 0..255 in one pass
        # (the Clip, Round and Cast it replaces gave the same bytes).
        node("QuantizeLinear", ["scaled_rgb", "one", "zero_u8"], ["rgb_bytes"]),
        node("QuantizeLinear", ["scaled_a", "one", "zero_u8"], ["a_bytes"]),
        node("Concat", ["rgb_bytes", "a_bytes"], ["bytes"], axis=1),
        node("Transpose", ["bytes"], ["region_frames"], perm=[0, 2, 3, 1]),
        node("Pad", ["region_frames", "region_pads"], ["placed"], mode="constant"),
        node("Add", ["placed", "static"], ["frames"]),
    ]
    graph = helper.make_graph(nodes, "avatarflow_warp", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.checker.check_model(model, full_check=True)
    return model


def _over_band(layer: str, rows: str, pads: str, under: str, out: str) -> list[onnx.NodeProto]:
    """Premultiplied ``layer`` (N, 4, hl, wl) *over* ``under`` (N, 4, h, w) on the layer's rows only.

    ``rows`` (N, 4, hl, 3) are the [frame, channel, row] of the layer's rows in ``under``: the band
    is gathered, composited (the layer and its keep factor padded to the band's width with 0 and 1
    by ``pads``, so the columns beside the layer stay bit-exact) and scattered back in place.
    """
    node = helper.make_node
    return [
        node("GatherND", [under, rows], [f"{layer}_band"]),
        node("Slice", [layer, "three_i", "four_i", "axis1"], [f"{layer}_a"]),
        node("Sub", ["one", f"{layer}_a"], [f"{layer}_keep_box"]),
        node("Pad", [f"{layer}_keep_box", pads, "one"], [f"{layer}_keep"], mode="constant"),
        node("Pad", [layer, pads, "zero"], [f"{layer}_wide"], mode="constant"),
        node("Mul", [f"{layer}_band", f"{layer}_keep"], [f"{layer}_under"]),
        node("Add", [f"{layer}_under", f"{layer}_wide"], [f"{layer}_over"]),
        node("ScatterND", [under, rows, f"{layer}_over"], [out]),
    ]
