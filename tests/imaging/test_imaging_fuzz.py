"""Property: whatever the bytes, read_header and decode_image only ever raise ImageError subclasses."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from avatarflow_imaging import ImageError, decode_image, read_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

SHARED = Path(os.environ.get("AVATARFLOW_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared"))


def _small(fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


SEEDS = [
    _small("JPEG"),
    _small("PNG"),
    _small("PNG", "P"),
    _small("WEBP"),
    _small("PNG", "RGBA"),
    (SHARED / "bad-inputs" / "portrait.heic").read_bytes()[:4096],
    (SHARED / "bad-inputs" / "progressive.jpg").read_bytes()[:6000],
]
# Small caps keep a mutated header that claims a huge image from allocating much.
CAPS = {"max_pixels": 2_000_000}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


def _only_image_errors(data: bytes) -> None:
    try:
        read_header(data, **CAPS)
    except ImageError as exc:
        assert exc.code and str(exc)
    try:
        decoded = decode_image(data, **CAPS, max_long_side=64)
    except ImageError as exc:
        assert exc.code and str(exc)
    else:
        assert decoded.rgb.dtype == np.uint8 and decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_images_only_raise_image_errors(data: bytes) -> None:
    _only_image_errors(data)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_image_errors(data: bytes) -> None:
    _only_image_errors(data)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"]),
    st.binary(max_size=256),
)
def test_magic_prefixed_garbage_only_raises_image_errors(magic: bytes, tail: bytes) -> None:
    _only_image_errors(magic + tail)
