"""The animator's pure core: cut-out + face geometry in, the avatar pack's files out.

``pack`` builds the pack (timeline, atlas, manifest) through the ports of ``ports`` (renderer,
encoder, speech, clock); ``rig``, ``poses``, ``timeline`` and ``warp`` are the animation and
frame maths, ``visemes`` and ``speech`` the lip-sync tracks, ``frames`` and ``formats`` what the
encoder is handed and what the manifest promises. No module here does I/O, reads the environment
or imports an inference runtime, a codec library or a subprocess; the CMU dictionary and the idle
loop's start phase are computed on first use, not at import.
"""

from .pack import (
    DEFAULT_PREVIEW_TEXT,
    EXTRA_CELLS,
    FPS,
    IDLE_SECONDS,
    OUTPUT_SIZE,
    SHARE_BACKGROUND,
    AvatarPack,
    build_pack,
    downscale_cutout,
    scale_face,
)
from .ports import AvatarRenderer, Clock, PackEncoder, RenderedFrames, RenderRequest
from .speech import Speech, SpeechSynthesizer, SpeechUnavailable
from .visemes import text_to_visemes

__all__ = [
    "DEFAULT_PREVIEW_TEXT",
    "EXTRA_CELLS",
    "FPS",
    "IDLE_SECONDS",
    "OUTPUT_SIZE",
    "SHARE_BACKGROUND",
    "AvatarPack",
    "AvatarRenderer",
    "Clock",
    "PackEncoder",
    "RenderRequest",
    "RenderedFrames",
    "Speech",
    "SpeechSynthesizer",
    "SpeechUnavailable",
    "build_pack",
    "downscale_cutout",
    "scale_face",
    "text_to_visemes",
]
