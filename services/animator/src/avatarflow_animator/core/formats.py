"""The pack's media formats, as the manifest states them.

The manifest promises these (content types, pixel formats, the audio's sample rate) to players;
the encoder adapter (``adapters/pyav_encoder.py``) configures its codecs from the same constants,
so what the pack says it holds and what the encoder writes cannot drift apart.
"""

from __future__ import annotations

WEBM_CONTENT_TYPE = "video/webm"
PNG_CONTENT_TYPE = "image/png"
MP4_CONTENT_TYPE = "video/mp4"
VP9_PIXEL_FORMAT = "yuva420p"  # 4:2:0 colour + a full-resolution alpha plane
H264_PIXEL_FORMAT = "yuv420p"
# Speech in the preview: Opus (what WebM carries and every browser plays), mono, 48 kHz (Opus's
# native rate; espeak-ng's 22.05 kHz is resampled). The share MP4's AAC runs at the same rate.
OPUS_SAMPLE_RATE = 48000
