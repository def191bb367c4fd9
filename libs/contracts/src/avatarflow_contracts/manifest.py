"""The avatar pack manifest: what a client needs to play an avatar and lip-sync it to any TTS.

An avatar pack is a folder of files next to a ``manifest.json`` validated by :class:`AvatarManifest`.
Coordinates are pixels of the pack's canvas (``canvas.width`` x ``canvas.height``), origin top-left.

Versioning (same rule as the events, see docs/contracts.md): ``manifest_version`` is
``MAJOR.MINOR``; within a major version changes are additive only (new optional fields, new
extra cells); clients ignore fields they do not know and refuse an unknown MAJOR version.

Visemes are the 15 of the Oculus/Meta OVR set that real-time avatar clients use. TTS engines
emit their own viseme ids; :data:`AZURE_VISEME_TO_OVR` and :data:`POLLY_VISEME_TO_OVR` map them
onto the OVR set so a client can drive the atlas from Azure Speech or Amazon Polly viseme events.
The same tables are copied into every manifest so a client needs no code from us.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MANIFEST_MAJOR = 1
MANIFEST_MINOR = 1  # 1.1: preview.audio; alternates (alpha_layout, background, has_audio)
MANIFEST_VERSION = f"{MANIFEST_MAJOR}.{MANIFEST_MINOR}"

_VERSION = re.compile(r"^(\d+)\.(\d+)$")
_FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

# The Oculus/Meta OVR viseme set, in its canonical order (the index is the OVR viseme id).
OVR_VISEMES: tuple[str, ...] = (
    "sil",  # silence / neutral
    "PP",  # p, b, m
    "FF",  # f, v
    "TH",  # th (thin, the)
    "DD",  # t, d
    "kk",  # k, g
    "CH",  # ch, j, sh, zh
    "SS",  # s, z
    "nn",  # n, l
    "RR",  # r
    "aa",  # father, cat
    "E",  # bed, bait
    "ih",  # sit, see
    "oh",  # dog, go
    "ou",  # too, book, w
)

# Azure Speech viseme ids (0..21, the SAPI-style set Azure emits for en-US) onto OVR visemes.
# Comment = the IPA the Azure id stands for.
AZURE_VISEME_TO_OVR: dict[int, str] = {
    0: "sil",  # silence
    1: "aa",  # æ, ə, ʌ
    2: "aa",  # ɑ
    3: "oh",  # ɔ
    4: "E",  # ɛ, ʊ
    5: "RR",  # ɝ
    6: "ih",  # j, i, ɪ
    7: "ou",  # w, u
    8: "oh",  # o
    9: "aa",  # aʊ
    10: "oh",  # ɔɪ
    11: "aa",  # aɪ
    12: "kk",  # h
    13: "RR",  # ɹ
    14: "nn",  # l
    15: "SS",  # s, z
    16: "CH",  # ʃ, tʃ, dʒ, ʒ
    17: "TH",  # ð
    18: "FF",  # f, v
    19: "DD",  # d, t, n, θ
    20: "kk",  # k, g, ŋ
    21: "PP",  # p, b, m
}

# Amazon Polly viseme codes (speech marks of type "viseme") onto OVR visemes.
POLLY_VISEME_TO_OVR: dict[str, str] = {
    "sil": "sil",
    "p": "PP",  # p, b, m
    "t": "DD",  # t, d
    "S": "CH",  # ʃ, ʒ, tʃ, dʒ
    "T": "TH",  # θ, ð
    "f": "FF",  # f, v
    "k": "kk",  # k, g, ŋ, h
    "i": "ih",  # i, ɪ, j
    "r": "RR",  # ɹ
    "s": "SS",  # s, z
    "u": "ou",  # u, ʊ, w
    "@": "aa",  # ə, ʌ
    "a": "aa",  # æ, ɑ, aɪ, aʊ
    "e": "E",  # e, eɪ
    "E": "E",  # ɛ, ɝ
    "o": "oh",  # o, oʊ
    "O": "oh",  # ɔ, ɔɪ
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CanvasSize(_Model):
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class AnchorPoint(_Model):
    x: float
    y: float


class Anchors(_Model):
    """Where things are on the canvas at rest, for clients that overlay or position the avatar.

    ``left_eye``/``right_eye`` follow FaceGeometry's naming (the subject's eyes as the validator
    reports them); ``mouth_center`` is the centre of the closed mouth.
    """

    left_eye: AnchorPoint
    right_eye: AnchorPoint
    mouth_center: AnchorPoint
    face_box: tuple[float, float, float, float] = Field(description="x, y, width, height at rest")


class VideoAsset(_Model):
    """One encoded clip with real alpha (never chroma key)."""

    file: str = Field(pattern=_FILE_NAME)
    content_type: str
    codec: str = Field(description="e.g. 'vp9' (WebM, alpha in the BlockAdditional side channel)")
    pixel_format: str = Field(description="e.g. 'yuva420p'")
    has_alpha: bool = True
    fps: int = Field(gt=0)
    frame_count: int = Field(gt=0)
    duration_s: float = Field(gt=0)
    loop: bool
    # 1.1, optional: how the alpha travels ("native": in the codec, e.g. VP9 yuva420p; "stacked":
    # the picture is twice the canvas height, colour on top and alpha as grey below, for players
    # without an alpha codec, e.g. Safari, to recombine), what an opaque clip was composited over,
    # and whether it carries sound.
    alpha_layout: Literal["native", "stacked"] | None = None
    background: str | None = Field(default=None, pattern=r"^#[0-9a-f]{6}$")
    has_audio: bool = False


class BlinkEvent(_Model):
    """A blink inside a clip, by frame index: the lid starts moving, is fully closed, is open again."""

    start_frame: int = Field(ge=0)
    closed_frames: list[int] = Field(min_length=1)
    end_frame: int = Field(ge=0)


class IdleLoop(VideoAsset):
    loop: bool = True
    blinks: list[BlinkEvent] = Field(default_factory=list)


class TimedViseme(_Model):
    viseme: str
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)


class AudioTrack(_Model):
    """The speech inside a clip: it starts with the clip's first frame and lasts as long."""

    codec: str = Field(description="e.g. 'opus' (in the WebM)")
    sample_rate: int = Field(gt=0)
    channels: int = Field(gt=0)
    duration_s: float = Field(gt=0)
    engine: str = Field(description="the text-to-speech engine that spoke it, e.g. 'espeak-ng'")
    voice: str


class PreviewClip(VideoAsset):
    loop: bool = False
    text: str
    timeline: list[TimedViseme] = Field(
        description="the viseme track the clip was rendered from (with audio: the speech's own timing)"
    )
    blinks: list[BlinkEvent] = Field(default_factory=list)
    # None: a silent clip timed by the pronouncing dictionary (no speech engine was available).
    audio: AudioTrack | None = None


class AtlasCell(_Model):
    name: str
    column: int = Field(ge=0)
    row: int = Field(ge=0)
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class VisemeCell(AtlasCell):
    ovr_index: int = Field(ge=0, lt=len(OVR_VISEMES))


class VisemeAtlas(_Model):
    """A sprite sheet PNG (RGBA, straight alpha) holding one full-canvas frame per cell."""

    file: str = Field(pattern=_FILE_NAME)
    content_type: Literal["image/png"] = "image/png"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    columns: int = Field(gt=0)
    rows: int = Field(gt=0)
    cell_width: int = Field(gt=0)
    cell_height: int = Field(gt=0)
    visemes: list[VisemeCell] = Field(description="exactly one cell per OVR viseme, in OVR order")
    # Cells that are not visemes (e.g. "eyes_half", "eyes_closed") for clients that blink themselves.
    extra_cells: list[AtlasCell] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_cell_per_viseme(self) -> VisemeAtlas:
        names = [cell.name for cell in self.visemes]
        if tuple(names) != OVR_VISEMES:
            raise ValueError(f"visemes must list the OVR set in order {OVR_VISEMES}, got {names}")
        for cell in [*self.visemes, *self.extra_cells]:
            if cell.x + cell.width > self.width or cell.y + cell.height > self.height:
                raise ValueError(f"atlas cell {cell.name!r} lies outside the atlas")
        return self


class StillAsset(_Model):
    file: str = Field(pattern=_FILE_NAME)
    content_type: Literal["image/png"] = "image/png"
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class VisemeMaps(_Model):
    """TTS viseme ids onto the OVR set (see the module docstring)."""

    ovr: list[str] = Field(default_factory=lambda: list(OVR_VISEMES))
    azure: dict[int, str] = Field(default_factory=lambda: dict(AZURE_VISEME_TO_OVR))
    polly: dict[str, str] = Field(default_factory=lambda: dict(POLLY_VISEME_TO_OVR))


class RendererInfo(_Model):
    name: str = Field(description="which renderer made the frames, e.g. 'onnx-warp'")
    version: str
    execution_provider: str


class AvatarManifest(_Model):
    manifest_version: str = MANIFEST_VERSION
    canvas: CanvasSize
    fps: int = Field(gt=0)
    anchors: Anchors
    poster: StillAsset
    idle: IdleLoop
    visemes: VisemeAtlas
    preview: PreviewClip
    viseme_maps: VisemeMaps = Field(default_factory=VisemeMaps)
    renderer: RendererInfo
    # Optional alternative encodings for clients without VP9 alpha, and for sharing (1.1 packs:
    # the idle loop as stacked-alpha H.264 MP4 for Safari, the preview as a plain MP4 over a colour).
    alternates: list[VideoAsset] = Field(default_factory=list)

    @field_validator("manifest_version")
    @classmethod
    def _version_format(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("manifest_version must look like MAJOR.MINOR")
        return value

    @property
    def manifest_major(self) -> int:
        return int(self.manifest_version.split(".", 1)[0])

    def files(self) -> list[str]:
        """Every file name the manifest refers to (the pack's other files)."""
        names = [self.poster.file, self.idle.file, self.visemes.file, self.preview.file]
        return names + [alt.file for alt in self.alternates]
