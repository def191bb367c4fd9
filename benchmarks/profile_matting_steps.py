"""Where the matting step's time goes: process time per step of ``cut_out``, one core.

Wraps the core's steps and kernels (module attributes, looked up at call time) with timers, runs
the benchmark portrait of ``bench_matting.py`` ``--runs`` times and prints each step's mean process
time per cut-out, largest first (nested steps are included in their callers' figures).

    .venv/bin/python benchmarks/profile_matting_steps.py [--runs 40]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import collections  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

_KERNELS = (
    "band_from_cells",
    "sample_bilinear",
    "guided_coefficients",
    "nearest_known_colours",
    "drop_band_islands",
    "finish_band",
    "paint_edge",
    "gather_colours",
    "project_alpha",
    "apply_linear",
    "fusion_to_fine_pass",
    "fuse_foreground",
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(1)
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter
    from avatarflow_matting.bootstrap import warm_up
    from avatarflow_matting.core import alpha, cut_out, figure, kernels, pipeline
    from bench_matting import load_portrait

    spent: dict[str, float] = collections.defaultdict(float)

    def timed(owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.process_time()
            try:
                return inner(*a, **k)
            finally:
                spent[label] += time.process_time() - started

        setattr(owner, name, wrapper)

    for name in _KERNELS:
        timed(kernels, name, f"kernel {name}")
    for name in ("_matte_region", "refine_on_grid", "foreground_at", "trimap_from_mask", "_straight_rgba"):
        timed(pipeline, name, name)
    for name in ("_finish_canvas", "framing_from_mask", "image_on_grid"):
        timed(pipeline, name, name)
    for name in ("connected_mask", "_fill_subject_holes", "_open_background_holes"):
        timed(figure, name, f"figure {name}")
    timed(alpha, "local_colours", "local_colours")
    timed(cv2, "resize", "cv2.resize (all)")

    image = load_portrait()
    warm_up()
    matter = SelfieSegmenter()
    for _ in range(3):
        cut_out(image, None, matter=matter)
    spent.clear()
    floor = whole = 0.0
    for _ in range(args.runs):
        started = time.process_time()
        matter.person_mask(image)
        floor += time.process_time() - started
        started = time.process_time()
        cut_out(image, None, matter=matter)
        whole += time.process_time() - started
    print(f"floor {floor / args.runs * 1e3:.2f} ms, cut_out {whole / args.runs * 1e3:.2f} ms (process time)")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"{label:40s} {seconds / args.runs * 1e3:7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
