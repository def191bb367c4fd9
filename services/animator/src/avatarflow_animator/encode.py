"""Encoders for the pack: VP9 WebM with real alpha, PNG stills and the viseme sprite atlas.

Determinism: PNGs are byte-identical for identical pixels (Pillow, fixed compression level, no
metadata). The WebM muxer runs with ``fflags=+bitexact`` (no encoder version/date strings) and
libvpx-vp9 with one thread and no row multithreading, which makes the bytes repeatable for the
same libvpx build; a different libvpx version may produce different (equally valid) bytes.
"""

from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image

WEBM_CONTENT_TYPE = "video/webm"
PNG_CONTENT_TYPE = "image/png"
VP9_PIXEL_FORMAT = "yuva420p"  # 4:2:0 colour + a full-resolution alpha plane
# Constant-quality VP9 (crf 30 keeps skin and hair edges clean at 512 px), one thread.
VP9_BASE_OPTIONS = {"crf": "30", "b": "0", "row-mt": "0", "threads": "1", "lag-in-frames": "0"}
# Loops use libvpx's "good" preset: its rate control keeps quality level over the clip, so the
# last frame is as good as the first key frame and the loop point shows no jump. The "realtime"
# preset is 5-7x faster but lets quality drift, which made the seam jump twice an ordinary frame
# step (measured); one-shot clips (the preview) use it.
VP9_LOOP_OPTIONS = {**VP9_BASE_OPTIONS, "deadline": "good", "cpu-used": "5", "auto-alt-ref": "0"}
VP9_CLIP_OPTIONS = {**VP9_BASE_OPTIONS, "deadline": "realtime", "cpu-used": "8", "auto-alt-ref": "0"}
PNG_COMPRESS_LEVEL = 3  # fast, and the atlas still compresses well


def encode_webm(frames: np.ndarray, fps: int, *, loop: bool) -> bytes:
    """(N, H, W, 4) uint8 straight RGBA -> WebM (VP9, yuva420p; alpha in BlockAdditional)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libvpx-vp9", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = VP9_PIXEL_FORMAT
        stream.options = dict(VP9_LOOP_OPTIONS if loop else VP9_CLIP_OPTIONS)
        stream.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgba")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def encode_png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def tile_atlas(cells: np.ndarray, columns: int) -> np.ndarray:
    """(N, h, w, 4) -> one (rows*h, columns*w, 4) sheet, row-major, empty cells transparent."""
    count, height, width, channels = cells.shape
    rows = -(-count // columns)
    sheet = np.zeros((rows * height, columns * width, channels), dtype=cells.dtype)
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = cell
    return sheet
