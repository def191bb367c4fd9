"""The encoder port on PyAV and Pillow: VP9 WebM with real alpha, H.264 MP4s and PNG stills.

:class:`PyAvEncoder` implements :class:`~avatarflow_animator.core.ports.PackEncoder` in the formats
of :mod:`avatarflow_animator.core.formats`; the frame maths (stacked alpha, the opaque share
frames, the atlas sheet) are the core's (``core/frames.py``).

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

from ..core.formats import H264_PIXEL_FORMAT, OPUS_SAMPLE_RATE, VP9_PIXEL_FORMAT
from ..core.ports import Audio

# Constant-quality VP9 (crf 30 keeps skin and hair edges clean at 512 px), one thread.
VP9_BASE_OPTIONS = {"crf": "30", "b": "0", "row-mt": "0", "threads": "1", "lag-in-frames": "0"}
# Loops use libvpx's "good" preset: its rate control keeps quality level over the clip, so the
# last frame is as good as the first key frame and the loop point shows no jump. The "realtime"
# preset is 5-7x faster but lets quality drift, which made the seam jump twice an ordinary frame
# step (measured); one-shot clips (the preview) use it.
VP9_LOOP_OPTIONS = {**VP9_BASE_OPTIONS, "deadline": "good", "cpu-used": "5", "auto-alt-ref": "0"}
VP9_CLIP_OPTIONS = {**VP9_BASE_OPTIONS, "deadline": "realtime", "cpu-used": "8", "auto-alt-ref": "0"}
PNG_COMPRESS_LEVEL = 3  # fast, and the atlas still compresses well
# Speech in the preview: Opus at core.formats.OPUS_SAMPLE_RATE, 20 ms packets, speech-tuned.
OPUS_FRAME_SAMPLES = 960
OPUS_OPTIONS = {"application": "voip", "frame_duration": "20", "vbr": "on"}
OPUS_BIT_RATE = 32000


def _audio_frames(samples: np.ndarray, sample_rate: int) -> list[av.AudioFrame]:
    """int16 mono at ``sample_rate`` -> 48 kHz s16 frames of 20 ms (the last one zero-padded)."""
    source = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples.reshape(1, -1)), format="s16", layout="mono")
    source.sample_rate = sample_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_SAMPLE_RATE)
    chunks = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(source), *resampler.resample(None)]]
    resampled = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    wanted = round(len(samples) * OPUS_SAMPLE_RATE / sample_rate)
    resampled = np.pad(resampled[:wanted], (0, max(0, wanted - len(resampled))))
    padded = np.pad(resampled, (0, -len(resampled) % OPUS_FRAME_SAMPLES))
    frames = []
    for index, start in enumerate(range(0, len(padded), OPUS_FRAME_SAMPLES)):
        chunk = padded[start : start + OPUS_FRAME_SAMPLES].astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="s16", layout="mono")
        frame.sample_rate = OPUS_SAMPLE_RATE
        frame.pts = index * OPUS_FRAME_SAMPLES
        frames.append(frame)
    return frames


def encode_webm(frames: np.ndarray, fps: int, *, loop: bool, audio: Audio | None = None) -> bytes:
    """(N, H, W, 4) uint8 straight RGBA -> WebM (VP9, yuva420p; alpha in BlockAdditional).

    ``audio`` (int16 mono samples, sample rate) adds an Opus track that starts with frame 0.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libvpx-vp9", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = VP9_PIXEL_FORMAT
        stream.options = dict(VP9_LOOP_OPTIONS if loop else VP9_CLIP_OPTIONS)
        stream.thread_count = 1
        sound = None
        if audio is not None:
            sound = container.add_stream("libopus", rate=OPUS_SAMPLE_RATE)
            sound.layout = "mono"
            sound.bit_rate = OPUS_BIT_RATE
            sound.options = dict(OPUS_OPTIONS)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgba")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None and audio is not None:
            for audio_frame in _audio_frames(*audio):
                container.mux(sound.encode(audio_frame))
            container.mux(sound.encode(None))
    return buffer.getvalue()


# H.264 MP4s (Safari, sharing): yuv420p, High profile, one thread (repeatable bytes). The index
# (moov) stays at the end (faststart needs a seekable file, not a buffer): players fetch it with
# a Range request, which the asset routes serve.
H264_OPTIONS = {"preset": "veryfast", "crf": "23", "profile": "high", "threads": "1"}
MP4_MUXER_OPTIONS = {"fflags": "+bitexact"}
AAC_BIT_RATE = 64000


def encode_mp4(frames_rgb: np.ndarray, fps: int, *, audio: Audio | None = None) -> bytes:
    """(N, H, W, 3) uint8 RGB -> MP4 (H.264 yuv420p; ``audio`` int16 mono -> AAC at 48 kHz)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4", options=dict(MP4_MUXER_OPTIONS)) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames_rgb.shape[2], frames_rgb.shape[1]
        stream.pix_fmt = H264_PIXEL_FORMAT
        stream.options = dict(H264_OPTIONS)
        stream.thread_count = 1
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=OPUS_SAMPLE_RATE)
            sound.layout = "mono"
            sound.bit_rate = AAC_BIT_RATE
        for frame in frames_rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        container.mux(stream.encode())
        if sound is not None and audio is not None:
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=OPUS_SAMPLE_RATE)
            for audio_frame in _audio_frames(*audio):
                for converted in resampler.resample(audio_frame):
                    container.mux(sound.encode(converted))
            container.mux(sound.encode(None))
    return buffer.getvalue()


def encode_png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


class PyAvEncoder:
    """The pack's encoder port (stateless: one instance serves every render thread)."""

    def encode_png(self, rgba: np.ndarray) -> bytes:
        return encode_png(rgba)

    def encode_webm(self, frames: np.ndarray, fps: int, *, loop: bool, audio: Audio | None = None) -> bytes:
        return encode_webm(frames, fps, loop=loop, audio=audio)

    def encode_mp4(self, frames_rgb: np.ndarray, fps: int, *, audio: Audio | None = None) -> bytes:
        return encode_mp4(frames_rgb, fps, audio=audio)
