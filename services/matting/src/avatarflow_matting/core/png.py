"""Deterministic PNG encoding: same array, same bytes (no timestamps, fixed filter and zlib level)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)
_ZLIB_LEVEL = 6
_FILTER_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(array: np.ndarray) -> bytes:
    """Encode an HxW, HxWx1, HxWx3 or HxWx4 uint8 array as an 8-bit PNG."""
    if array.dtype != np.uint8:
        raise ValueError("encode_png expects uint8 pixels")
    pixels = array[..., None] if array.ndim == 2 else array
    height, width, channels = pixels.shape
    if channels not in _COLOUR_TYPES:
        raise ValueError(f"unsupported channel count {channels}")
    rows = np.ascontiguousarray(pixels).reshape(height, width * channels)
    # "Up" filter on every row: a vectorised difference with the row above, which compresses
    # smooth images well and keeps the encoder simple and deterministic.
    filtered = rows.copy()
    filtered[1:] = rows[1:] - rows[:-1]  # uint8 arithmetic wraps modulo 256, as PNG requires
    scanlines = np.empty((height, width * channels + 1), np.uint8)
    scanlines[:, 0] = _FILTER_UP
    scanlines[:, 1:] = filtered
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), _ZLIB_LEVEL))
        + _chunk(b"IEND", b"")
    )
