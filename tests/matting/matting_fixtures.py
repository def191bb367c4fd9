from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Before anything imports numba (pymatting): a writable cache so the JIT compiles once per machine.
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    os.environ.get("AVATARFLOW_NUMBA_CACHE_DIR")
    or str(Path(tempfile.gettempdir()) / f"avatarflow-numba-cache-{os.getuid()}"),
)

from avatarflow_contracts.events import Box, FaceGeometry, HeadPose, Point


def shared_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / ".." / "shared"
    return Path(os.environ.get("AVATARFLOW_SHARED_DIR", default)).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "matting").is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def matter():
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter

    with SelfieSegmenter() as instance:
        yield instance


def synthetic_face(cx: float, cy: float, face_w: float, face_h: float, size: tuple[int, int]) -> FaceGeometry:
    """A FaceGeometry shaped like the validator's: 478 points on the face oval, mesh point 10 at
    the forehead top and 152 at the chin, eyes at 45 % and the mouth at 78 % of the face height."""
    angles = np.linspace(0, 2 * np.pi, 478, endpoint=False)
    xs = cx + face_w / 2 * np.sin(angles)
    ys = cy - face_h / 2 * np.cos(angles)
    landmarks = [(float(x), float(y), 0.0) for x, y in zip(xs, ys, strict=True)]
    top, chin = cy - face_h / 2, cy + face_h / 2
    landmarks[10] = (cx, top, 0.0)
    landmarks[152] = (cx, chin, 0.0)
    eye_y = top + 0.45 * face_h
    return FaceGeometry(
        image_width=size[0],
        image_height=size[1],
        box=Box(x=cx - face_w / 2, y=top, width=face_w, height=face_h),
        landmarks=landmarks,
        left_eye=Point(x=cx + 0.22 * face_w, y=eye_y),
        right_eye=Point(x=cx - 0.22 * face_w, y=eye_y),
        mouth_center=Point(x=cx, y=top + 0.78 * face_h),
        head_pose=HeadPose(yaw=0, pitch=0, roll=0),
        suggested_crop=Box(x=cx - face_w, y=top - 0.5 * face_h, width=2 * face_w, height=2.5 * face_h),
        detection_score=0.9,
    )
