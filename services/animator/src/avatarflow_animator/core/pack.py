"""The pack builder: cut-out + face geometry in, avatar pack (files as bytes) out.

No I/O, no broker: the service uploads ``AvatarPack.files`` and publishes AvatarRendered with
``execution_provider``, ``render_seconds`` and ``encode_seconds`` from the pack. Drawing, encoding,
speech and the clock are ports (``ports.py``) the caller passes in; ``bootstrap.render_pack`` is
this function with the production encoder and clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from avatarflow_contracts import Box, FaceGeometry, Point
from avatarflow_contracts.manifest import (
    OVR_VISEMES,
    AnchorPoint,
    Anchors,
    AtlasCell,
    AudioTrack,
    AvatarManifest,
    BlinkEvent,
    CanvasSize,
    IdleLoop,
    PreviewClip,
    RendererInfo,
    StillAsset,
    TimedViseme,
    VideoAsset,
    VisemeAtlas,
    VisemeCell,
)

from .formats import H264_PIXEL_FORMAT, MP4_CONTENT_TYPE, OPUS_SAMPLE_RATE, VP9_PIXEL_FORMAT, WEBM_CONTENT_TYPE
from .frames import over_background, stack_alpha, tile_atlas
from .ports import AvatarRenderer, Clock, PackEncoder, RenderRequest
from .poses import REST, VISEME_POSES, FacePose
from .speech import EDGE_SILENCE_SECONDS, Speech, SpeechSynthesizer, SpeechUnavailable, pad_speech
from .timeline import Blink, idle_poses, preview_poses
from .visemes import text_to_visemes

OUTPUT_SIZE = 512
FPS = 25
IDLE_SECONDS = 8.0
ATLAS_COLUMNS = 6
# Non-viseme atlas cells, after the 15 visemes.
EXTRA_CELLS: dict[str, FacePose] = {"eyes_half": FacePose(blink=0.5), "eyes_closed": FacePose(blink=1.0)}

MANIFEST_FILE = "manifest.json"
IDLE_FILE = "idle.webm"
ATLAS_FILE = "visemes.png"
PREVIEW_FILE = "preview.webm"
POSTER_FILE = "poster.png"
IDLE_STACKED_FILE = "idle-alpha.mp4"  # Safari: H.264, alpha stacked below the colour
SHARE_FILE = "share.mp4"  # the preview with sound, opaque over SHARE_BACKGROUND, for sharing
SHARE_BACKGROUND = "#e9edf2"
DEFAULT_PREVIEW_TEXT = "Hello! I am your new avatar."

__all__ = [
    "OUTPUT_SIZE",
    "AvatarPack",
    "build_pack",
    "downscale_cutout",
    "scale_face",
]


@dataclass(frozen=True)
class AvatarPack:
    files: dict[str, bytes]
    manifest: AvatarManifest
    execution_provider: str
    render_seconds: float
    encode_seconds: float
    # Why the preview is silent although a synthesizer was given (None: it speaks, or none was given).
    speech_error: str | None = None
    speech_seconds: float = 0.0


def downscale_cutout(rgba: np.ndarray, size: int = OUTPUT_SIZE) -> np.ndarray:
    """Area-average resize in premultiplied space, so edges never pick up hidden background."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8 or rgba.shape[0] != rgba.shape[1]:
        raise ValueError(f"cut-out must be square RGBA uint8, got {rgba.shape} {rgba.dtype}")
    if rgba.shape[0] == size:
        return rgba.copy()
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    premultiplied = np.concatenate([rgba[..., :3].astype(np.float32) * alpha, alpha * 255.0], axis=2)
    small = cv2.resize(premultiplied, (size, size), interpolation=cv2.INTER_AREA)
    small_alpha = small[..., 3:4] / 255.0
    rgb = np.where(small_alpha > 0, small[..., :3] / np.maximum(small_alpha, 1e-6), 0.0)
    return np.clip(np.concatenate([rgb, small[..., 3:4]], axis=2) + 0.5, 0, 255).astype(np.uint8)


def scale_face(face: FaceGeometry, size: int) -> FaceGeometry:
    """The geometry of a square canvas mapped onto a ``size`` x ``size`` canvas."""
    if face.image_width != face.image_height:
        raise ValueError("the cut-out canvas must be square")
    k = size / face.image_width

    def box(b: Box) -> Box:
        return b.model_copy(update={"x": b.x * k, "y": b.y * k, "width": b.width * k, "height": b.height * k})

    def point(p: Point) -> Point:
        return p.model_copy(update={"x": p.x * k, "y": p.y * k})

    return face.model_copy(
        update={
            "image_width": size,
            "image_height": size,
            "box": box(face.box),
            "suggested_crop": box(face.suggested_crop),
            "landmarks": [(x * k, y * k, z * k) for x, y, z in face.landmarks],
            "left_eye": point(face.left_eye),
            "right_eye": point(face.right_eye),
            "mouth_center": point(face.mouth_center),
        }
    )


def _blink_events(blinks: list[Blink]) -> list[BlinkEvent]:
    return [
        BlinkEvent(start_frame=b.start_frame, closed_frames=list(b.closed_frames), end_frame=b.end_frame)
        for b in blinks
    ]


def _atlas_cells(names: list[str]) -> list[tuple[str, int, int]]:
    return [(name, index % ATLAS_COLUMNS, index // ATLAS_COLUMNS) for index, name in enumerate(names)]


def build_pack(
    cutout_rgba: np.ndarray,
    face: FaceGeometry,
    *,
    renderer: AvatarRenderer,
    encoder: PackEncoder,
    clock: Clock,
    preview_text: str = DEFAULT_PREVIEW_TEXT,
    speech: SpeechSynthesizer | None = None,
    share_background: str = SHARE_BACKGROUND,
) -> AvatarPack:
    """Render and encode the whole pack: poster, idle loop, viseme atlas, preview clip, manifest.

    All frames of the pack go to the renderer in ONE request (one batched graph), in this order:
    rest, the 15 visemes, the extra atlas cells, the idle loop, the preview.

    With ``speech`` the preview speaks: its mouth follows the synthesizer's timing and the clip
    carries the audio (Opus). A synthesizer that cannot run (:class:`SpeechUnavailable`) gives a
    silent, dictionary-timed preview and ``speech_error`` says why; the pack is complete either way.

    ``encoder`` writes the files; ``clock`` times the speech and the encoding (the renderer times
    itself).
    """
    source = downscale_cutout(cutout_rgba)
    canvas_face = scale_face(face, OUTPUT_SIZE)
    idle, idle_blinks = idle_poses(FPS, IDLE_SECONDS)
    speech_started = clock()
    spoken, speech_error = _speak(speech, preview_text)
    speech_seconds = clock() - speech_started
    track = spoken.track if spoken is not None else text_to_visemes(preview_text, FPS)
    preview, preview_blinks = preview_poses(track, FPS, len(idle) / FPS)
    cell_poses = [VISEME_POSES[v] for v in OVR_VISEMES] + list(EXTRA_CELLS.values())
    poses = [REST, *cell_poses, *idle, *preview]

    rendered = renderer.render(RenderRequest(source, canvas_face, poses))
    frames = rendered.frames
    rest_frame = frames[0]
    cells = frames[1 : 1 + len(cell_poses)]
    idle_frames = frames[1 + len(cell_poses) : 1 + len(cell_poses) + len(idle)]
    preview_frames = frames[1 + len(cell_poses) + len(idle) :]

    background = _hex_colour(share_background)
    encode_started = clock()
    sound = (spoken.samples, spoken.sample_rate) if spoken else None
    files = {
        POSTER_FILE: encoder.encode_png(rest_frame),
        ATLAS_FILE: encoder.encode_png(tile_atlas(cells, ATLAS_COLUMNS)),
        IDLE_FILE: encoder.encode_webm(idle_frames, FPS, loop=True),
        PREVIEW_FILE: encoder.encode_webm(preview_frames, FPS, loop=False, audio=sound),
        IDLE_STACKED_FILE: encoder.encode_mp4(stack_alpha(idle_frames), FPS),
        SHARE_FILE: encoder.encode_mp4(over_background(preview_frames, background), FPS, audio=sound),
    }

    # Keyword groups shared by several manifest models (validated by pydantic when they are built).
    def cell(name: str, column: int, row: int) -> dict[str, Any]:
        x, y = column * OUTPUT_SIZE, row * OUTPUT_SIZE
        return {"name": name, "column": column, "row": row, "x": x, "y": y}

    size: dict[str, Any] = {"width": OUTPUT_SIZE, "height": OUTPUT_SIZE}
    placed = _atlas_cells([*OVR_VISEMES, *EXTRA_CELLS])
    rows = -(-len(placed) // ATLAS_COLUMNS)
    video: dict[str, Any] = {
        "content_type": WEBM_CONTENT_TYPE,
        "codec": "vp9",
        "pixel_format": VP9_PIXEL_FORMAT,
        "fps": FPS,
        "alpha_layout": "native",
    }
    h264: dict[str, Any] = {
        "content_type": MP4_CONTENT_TYPE,
        "codec": "h264",
        "pixel_format": H264_PIXEL_FORMAT,
        "fps": FPS,
    }
    manifest = AvatarManifest(
        canvas=CanvasSize(**size),
        fps=FPS,
        anchors=Anchors(
            left_eye=AnchorPoint(x=canvas_face.left_eye.x, y=canvas_face.left_eye.y),
            right_eye=AnchorPoint(x=canvas_face.right_eye.x, y=canvas_face.right_eye.y),
            mouth_center=AnchorPoint(x=canvas_face.mouth_center.x, y=canvas_face.mouth_center.y),
            face_box=(canvas_face.box.x, canvas_face.box.y, canvas_face.box.width, canvas_face.box.height),
        ),
        poster=StillAsset(file=POSTER_FILE, **size),
        idle=IdleLoop(
            file=IDLE_FILE,
            frame_count=len(idle_frames),
            duration_s=len(idle_frames) / FPS,
            blinks=_blink_events(idle_blinks),
            **video,
        ),
        visemes=VisemeAtlas(
            file=ATLAS_FILE,
            width=ATLAS_COLUMNS * OUTPUT_SIZE,
            height=rows * OUTPUT_SIZE,
            columns=ATLAS_COLUMNS,
            rows=rows,
            cell_width=OUTPUT_SIZE,
            cell_height=OUTPUT_SIZE,
            visemes=[
                VisemeCell(**cell(name, column, row), **size, ovr_index=index)
                for index, (name, column, row) in enumerate(placed[: len(OVR_VISEMES)])
            ],
            extra_cells=[
                AtlasCell(**cell(name, column, row), **size) for name, column, row in placed[len(OVR_VISEMES) :]
            ],
        ),
        preview=PreviewClip(
            file=PREVIEW_FILE,
            frame_count=len(preview_frames),
            duration_s=len(preview_frames) / FPS,
            text=preview_text,
            timeline=[TimedViseme(viseme=v, start_s=s, end_s=e) for v, s, e in track],
            blinks=_blink_events(preview_blinks),
            audio=AudioTrack(
                codec="opus",
                sample_rate=OPUS_SAMPLE_RATE,
                channels=1,
                duration_s=spoken.duration_s,
                engine=spoken.engine,
                voice=spoken.voice,
            )
            if spoken
            else None,
            **video,
            has_audio=spoken is not None,
        ),
        alternates=[
            VideoAsset(
                file=IDLE_STACKED_FILE,
                frame_count=len(idle_frames),
                duration_s=len(idle_frames) / FPS,
                loop=True,
                alpha_layout="stacked",
                **h264,
            ),
            VideoAsset(
                file=SHARE_FILE,
                frame_count=len(preview_frames),
                duration_s=len(preview_frames) / FPS,
                loop=False,
                has_alpha=False,
                background=share_background,
                has_audio=spoken is not None,
                **h264,
            ),
        ],
        renderer=RendererInfo(
            name=renderer.name, version=renderer.version, execution_provider=rendered.execution_provider
        ),
    )
    files[MANIFEST_FILE] = (manifest.model_dump_json(indent=2) + "\n").encode()
    encode_seconds = clock() - encode_started
    return AvatarPack(
        files=files,
        manifest=manifest,
        execution_provider=rendered.execution_provider,
        render_seconds=rendered.seconds,
        encode_seconds=encode_seconds,
        speech_error=speech_error,
        speech_seconds=speech_seconds,
    )


def _hex_colour(value: str) -> tuple[int, int, int]:
    if len(value) != 7 or not value.startswith("#"):
        raise ValueError(f"a background colour is '#rrggbb', got {value!r}")
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _speak(synthesizer: SpeechSynthesizer | None, text: str) -> tuple[Speech | None, str | None]:
    """The preview's speech, framed by silence and lasting a whole number of frames."""
    if synthesizer is None:
        return None, None
    try:
        speech = synthesizer.synthesize(text)
    except SpeechUnavailable as exc:
        return None, str(exc)
    frames = math.ceil((speech.duration_s + 2 * EDGE_SILENCE_SECONDS) * FPS - 1e-6)
    return pad_speech(speech, EDGE_SILENCE_SECONDS, frames / FPS), None
