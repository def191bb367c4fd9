"""Draw simple, friendly illustrated avatars with Pillow (no external assets).

Used to seed the catalogue of pre-generated avatars. Deterministic: the same spec gives the same
pixels, so seeding twice writes identical objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class AvatarSpec:
    avatar_id: str
    name: str
    skin: RGB
    hair: RGB
    shirt: RGB
    background_top: RGB
    background_bottom: RGB
    hair_style: str  # "short", "long", "bun", "curly"


DEFAULT_SPECS: tuple[AvatarSpec, ...] = (
    # id, name, skin, hair, shirt, background top, background bottom, hair style
    AvatarSpec(
        "aurora",
        "Aurora",
        (241, 200, 170),
        (92, 58, 38),
        (70, 130, 180),
        (196, 225, 255),
        (120, 170, 230),
        "long",
    ),
    AvatarSpec(
        "basil",
        "Basil",
        (198, 140, 100),
        (35, 30, 28),
        (90, 160, 110),
        (214, 240, 214),
        (140, 200, 150),
        "short",
    ),
    AvatarSpec(
        "coral",
        "Coral",
        (140, 92, 62),
        (20, 16, 14),
        (230, 120, 100),
        (255, 226, 210),
        (240, 160, 140),
        "curly",
    ),
    AvatarSpec(
        "dune",
        "Dune",
        (224, 172, 130),
        (180, 120, 60),
        (150, 110, 190),
        (240, 228, 255),
        (180, 160, 230),
        "bun",
    ),
)


def _shade(color: RGB, factor: float) -> RGB:
    r, g, b = (int(max(0, min(255, c * factor))) for c in color)
    return (r, g, b)


def _blend(a: RGB, b: RGB, t: float) -> RGB:
    r, g, bl = (int(x * (1 - t) + y * t) for x, y in zip(a, b, strict=True))
    return (r, g, bl)


def _gradient(size: int, top: RGB, bottom: RGB) -> Image.Image:
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    column = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return Image.fromarray(np.repeat(column, size, axis=1).astype(np.uint8), "RGB")


def draw_avatar(spec: AvatarSpec, size: int = 512) -> Image.Image:
    """A head-and-shoulders illustration on a soft gradient, drawn at 2x and downsampled."""
    s = size * 2
    image = _gradient(s, spec.background_top, spec.background_bottom).convert("RGBA")
    draw = ImageDraw.Draw(image)

    def box(cx: float, cy: float, w: float, h: float) -> tuple[float, float, float, float]:
        return (cx - w / 2) * s, (cy - h / 2) * s, (cx + w / 2) * s, (cy + h / 2) * s

    hair_back = spec.hair_style in ("long", "curly")
    if hair_back:  # hair behind the head and shoulders
        draw.rounded_rectangle(box(0.5, 0.55, 0.5, 0.6), radius=int(0.2 * s), fill=spec.hair)
    # Shoulders and neck.
    draw.ellipse(box(0.5, 1.02, 0.9, 0.55), fill=spec.shirt)
    draw.rectangle(box(0.5, 0.72, 0.13, 0.14), fill=_shade(spec.skin, 0.9))
    # Ears, face.
    for ex in (0.315, 0.685):
        draw.ellipse(box(ex, 0.47, 0.07, 0.1), fill=_shade(spec.skin, 0.95))
    draw.ellipse(box(0.5, 0.46, 0.36, 0.44), fill=spec.skin)
    # Hair on top.
    if spec.hair_style == "curly":
        for i in range(9):
            angle = np.pi * (i / 8)
            cx, cy = 0.5 - 0.19 * np.cos(angle), 0.33 - 0.12 * np.sin(angle)
            draw.ellipse(box(cx, cy, 0.13, 0.13), fill=spec.hair)
    else:
        draw.chord(box(0.5, 0.4, 0.4, 0.36), start=180, end=360, fill=spec.hair)
        draw.ellipse(box(0.42, 0.27, 0.2, 0.1), fill=spec.hair)
    if spec.hair_style == "bun":
        draw.ellipse(box(0.5, 0.19, 0.14, 0.12), fill=spec.hair)
    # Eyes with a highlight, brows, cheeks, nose and a smile.
    for ex in (0.43, 0.57):
        draw.ellipse(box(ex, 0.47, 0.04, 0.05), fill=(45, 40, 40))
        draw.ellipse(box(ex + 0.008, 0.462, 0.012, 0.014), fill=(255, 255, 255))
        brow = [(ex - 0.035) * s, 0.42 * s, (ex + 0.035) * s, 0.415 * s]
        draw.line(brow, fill=_shade(spec.hair, 0.8), width=int(0.012 * s))
        cheek_x = ex - 0.03 if ex < 0.5 else ex + 0.03
        draw.ellipse(box(cheek_x, 0.54, 0.06, 0.035), fill=_blend(spec.skin, (232, 120, 120), 0.3))
    nose = [0.5 * s, 0.49 * s, 0.49 * s, 0.53 * s, 0.505 * s, 0.535 * s]
    draw.line(nose, fill=_shade(spec.skin, 0.75), width=int(0.008 * s))
    draw.arc(box(0.5, 0.56, 0.12, 0.07), start=15, end=165, fill=(150, 60, 60), width=int(0.012 * s))

    image = image.filter(ImageFilter.SMOOTH)
    return image.resize((size, size), Image.Resampling.LANCZOS).convert("RGB")
