"""Validator throughput on one core, warm process: full check vs full decode vs MediaPipe alone.

Run: .venv/bin/python benchmarks/bench_validator.py [--repeat N]
"""

from __future__ import annotations

import os

for _name in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
):
    os.environ[_name] = "1"
os.environ.setdefault("GLOG_minloglevel", "2")

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402

cv2.setNumThreads(1)

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from avatarflow_imaging import decode_image  # noqa: E402
from avatarflow_validator.bootstrap import open_validator  # noqa: E402
from PIL import Image  # noqa: E402

SHARED = Path(os.environ.get("AVATARFLOW_SHARED_DIR", Path(__file__).resolve().parents[1] / ".." / "shared"))


def timings(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def full_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    large = (SHARED / "bad-inputs" / "large-12mp.jpg").read_bytes()
    with Image.open(io.BytesIO(large)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").resize((1000, 1000), Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=92)
        mp_size = image.size
    one_mp = buffer.getvalue()
    validator = open_validator()
    analyzer = validator._analyzer  # MediaPipe alone: same graphs, already-decoded working image
    for label, data, size in (
        ("1 MP", one_mp, (1000, 1000)),
        (f"{mp_size[0] * mp_size[1] / 1e6:.0f} MP", large, mp_size),
    ):
        assert validator.validate_bytes(data).accepted, label
        working = np.asarray(decode_image(data, max_long_side=validator.thresholds.working_long_side).rgb)
        check = timings(lambda d=data: validator.validate_bytes(d), args.repeat)
        decode = timings(lambda d=data: full_decode(d), args.repeat)
        mediapipe = timings(lambda w=working: analyzer.analyse(w), args.repeat)
        print(f"{label} ({size[0]}x{size[1]}):")
        print(f"  full check        p50 {check[0] * 1e3:7.1f} ms  p95 {check[1] * 1e3:7.1f} ms")
        print(f"  full PIL decode   p50 {decode[0] * 1e3:7.1f} ms  p95 {decode[1] * 1e3:7.1f} ms")
        print(f"  MediaPipe alone   p50 {mediapipe[0] * 1e3:7.1f} ms  p95 {mediapipe[1] * 1e3:7.1f} ms")
        print(f"  check / full decode = {check[0] / decode[0]:.2f}   check / MediaPipe = {check[0] / mediapipe[0]:.2f}")
        if label == "1 MP":
            print(f"  validations/s (one core, p50) = {1.0 / check[0]:.1f}")
    validator.close()
    print(f"worker RSS after run: {psutil.Process().memory_info().rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
