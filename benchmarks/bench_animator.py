"""Animator benchmark: one avatar pack at 512x512 on ONE CPU core (or on CUDA with --provider cuda).

    .venv/bin/python benchmarks/bench_animator.py [--images 3] [--provider cpu|cuda]

Reports render time (the batched ONNX warp + compositing of every frame of the pack) and encode
time (VP9 WebMs, PNGs, manifest) separately, frames/s, the whole pack against the 5 s target, the
render/encode ratio (target <= 1), and a floor measured in the same run: one bare GridSample of
the same number of 512x512 RGBA frames, the least any warp renderer has to pay.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy / onnxruntime load
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# One core means one core: the process (and every thread it starts) is pinned to a single CPU, so
# a stray thread pool cannot make the figures look better than a one-core pod would see.
ONE_CORE = max(os.sched_getaffinity(0))
os.sched_setaffinity(0, {ONE_CORE})

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "animator"))

import onnxruntime as ort  # noqa: E402
from animator_probe import accepted_images, make_cutout  # noqa: E402
from avatarflow_animator.adapters.espeak import EspeakNg  # noqa: E402
from avatarflow_animator.adapters.onnx_renderer import CPU_PROVIDER, CUDA_PROVIDER, OnnxWarpRenderer  # noqa: E402
from avatarflow_animator.bootstrap import render_pack  # noqa: E402
from avatarflow_animator.core import OUTPUT_SIZE  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

TARGET_PACK_SECONDS = 5.0
cv2.setNumThreads(1)  # the rig's OpenCV calls (fields, mouth layer) on the one core too


def gridsample_floor(frames: int, providers: list[str]) -> float:
    """Seconds for one bilinear GridSample of ``frames`` RGBA 512x512 frames (8 per run)."""
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode="bilinear", align_corners=0)
    graph = helper.make_graph(
        [node],
        "floor",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("g", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    batch = 8
    source = np.random.default_rng(0).random((batch, 4, OUTPUT_SIZE, OUTPUT_SIZE), dtype=np.float32)
    centres = (2 * np.arange(OUTPUT_SIZE) + 1) / OUTPUT_SIZE - 1
    grid = np.stack(np.meshgrid(centres, centres), -1)[None].repeat(batch, 0).astype(np.float32) * 0.99
    session.run(None, {"x": source, "g": grid})
    started = time.perf_counter()
    for _ in range(-(-frames // batch)):
        session.run(None, {"x": source, "g": grid})
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3, help="how many accepted portraits to time")
    parser.add_argument("--provider", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()

    wanted = CUDA_PROVIDER if args.provider == "cuda" else CPU_PROVIDER
    renderer = OnnxWarpRenderer(providers=list(dict.fromkeys([wanted, CPU_PROVIDER])), intra_op_threads=1)
    if renderer.execution_provider != wanted:
        print(f"{args.provider}: not measured ({wanted} unavailable; session runs on {renderer.execution_provider})")
        return 0

    cutouts = [c for c in (make_cutout(p) for p in accepted_images()[: args.images]) if c is not None]
    speech = EspeakNg()  # the preview speaks, as in the service (one espeak-ng process per utterance)
    render_pack(cutouts[0].rgba, cutouts[0].face, renderer=renderer, speech=speech)  # warm-up: allocators
    size = f"{OUTPUT_SIZE}x{OUTPUT_SIZE}"
    print(f"provider {renderer.execution_provider}, 1 intra-op thread, pinned to CPU {ONE_CORE}, {size}")
    columns = ("frames", "speech s", "render s", "fps", "encode s", "pack s", "r/e", "floor s", "r/floor")
    widths = (6, 8, 9, 6, 9, 7, 5, 8, 7)
    print(f"{'image':48s} " + " ".join(f"{c:>{w}s}" for c, w in zip(columns, widths, strict=True)))
    totals = []
    for cutout in cutouts:
        started = time.perf_counter()
        pack = render_pack(cutout.rgba, cutout.face, renderer=renderer, speech=speech)
        total = time.perf_counter() - started
        frames = 1 + len(pack.manifest.visemes.visemes) + len(pack.manifest.visemes.extra_cells)
        frames += pack.manifest.idle.frame_count + pack.manifest.preview.frame_count
        floor = gridsample_floor(frames, [wanted])
        totals.append(total)
        print(
            f"{cutout.name[:48]:48s} {frames:6d} {pack.speech_seconds:8.2f} {pack.render_seconds:9.2f} "
            f"{frames / pack.render_seconds:6.1f} "
            f"{pack.encode_seconds:9.2f} {total:7.2f} {pack.render_seconds / pack.encode_seconds:5.2f} "
            f"{floor:8.2f} {pack.render_seconds / floor:7.2f}"
        )
    median = statistics.median(totals)
    verdict = "within" if median <= TARGET_PACK_SECONDS else "OVER"
    print(f"median pack {median:.2f} s: {verdict} the {TARGET_PACK_SECONDS:.0f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
