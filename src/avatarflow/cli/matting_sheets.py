"""``avatarctl matting-sheets OUT``: before/after crops of the worst cut-out edges.

For each image of ``SHEET_IMAGES`` (busy backgrounds, paintings, a cartoon) the service's path runs
twice: validator (face, illustration hint) then ``cut_out`` with ``cleanup`` off (the pipeline
before the figure and edge steps) and on. Both land on the same 1024 px canvas, so crops align.
Rows are the worst edges, chosen by numbers, not by eye:

* ``changed``: the two windows where the alpha of the two versions differs most (what the steps
  did: a dropped blob, a re-decided uncertain band, a stretched painted edge);
* ``softest after``: the window of the new cut-out with the most partial alpha (0.04 < a < 0.96),
  where faint streaks or fringes that remain would be.

Each row: before over grey | green | checkerboard, then after over the same three. One PNG per
image, pixel-exact 2x zoom, small enough for docs/ (written by PIL with full compression).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (folder, file, why it is on the list). Folder "images": shared/avatar-images; "peer":
# shared/matting/peer (rembg's examples; run through the validator as well).
SHEET_IMAGES: tuple[tuple[str, str, str], ...] = (
    ("images", "accept_photo__obama-office-flags.jpg", "busy: flags, curtains, window"),
    ("images", "accept_photo__woman-glass-building-bg.jpg", "busy: glass office building"),
    ("images", "accept_photo__man-scarf-step-and-repeat.jpg", "busy: logo step-and-repeat"),
    ("images", "accept_photo__teen-woman-standing-indoor.jpg", "busy: indoor room"),
    ("images", "accept_photo__bald-man-white-bg.jpg", "backdrop logo beside the neck"),
    ("peer", "girl-2.input.jpg", "busy: street, hair"),
    ("peer", "girl-3.input.jpg", "busy: textured background, hair"),
    ("images", "accept_illustration__oil-painting-peasant-man.png", "painting"),
    ("images", "accept_illustration__painting-man-long-wig.jpg", "painting, dark coat on dark ground"),
    ("images", "accept_illustration__3d-cartoon-boy.jpg", "cartoon (3D render)"),
    ("images", "accept_illustration__digital-art-girl-bob-hair.png", "cartoon (digital art)"),
)
TILE = 96  # crop side, canvas pixels
ZOOM = 2
GREY = (128, 128, 128)
GREEN = (0, 177, 64)
CHECKER = ((200, 200, 200), (110, 110, 110))
CHECKER_PX = 8
_SOFT = (0.04, 0.96)
_HEADER_PX = 22


@dataclass(frozen=True)
class Sheet:
    name: str
    path: Path
    windows: list[tuple[str, int, int]]  # (why, top, left) in canvas pixels
    method: str
    hint: bool


def _backgrounds(size: int) -> list[np.ndarray]:
    grey = np.full((size, size, 3), GREY, np.float32)
    green = np.full((size, size, 3), GREEN, np.float32)
    squares = ((np.arange(size)[:, None] // CHECKER_PX + np.arange(size)[None, :] // CHECKER_PX) % 2).astype(bool)
    checker = np.where(squares[..., None], np.float32(CHECKER[0]), np.float32(CHECKER[1])).astype(np.float32)
    return [grey, green, checker]


def _over(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Straight-alpha composite, uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.round(rgba[..., :3] * alpha + background * (1.0 - alpha)).astype(np.uint8)


def _best_windows(score: np.ndarray, count: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Top-left corners of the ``count`` TILE windows of highest summed ``score`` that overlap
    neither each other nor ``taken`` by more than half a tile."""
    import cv2

    density = cv2.boxFilter(score.astype(np.float32), -1, (TILE, TILE), normalize=False)
    half = TILE // 2
    density[:half], density[-half:], density[:, :half], density[:, -half:] = 0, 0, 0, 0
    found: list[tuple[int, int]] = []
    for _ in range(count):
        for y, x in taken + found:
            cy, cx = y + half, x + half
            density[max(0, cy - TILE) : cy + TILE, max(0, cx - TILE) : cx + TILE] = 0
        if density.max() <= 0:
            break
        cy, cx = np.unravel_index(int(np.argmax(density)), density.shape)
        found.append((int(cy) - half, int(cx) - half))
    return found


def _label(strip: np.ndarray, text: str, x: int) -> None:
    import cv2

    cv2.putText(strip, text, (x + 4, _HEADER_PX - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (20, 20, 20), 1, cv2.LINE_AA)


def build_sheet(name: str, image_rgb: np.ndarray, face: object, hint: bool, matter: object, out: Path) -> Sheet:
    from avatarflow_matting.core import cut_out
    from PIL import Image

    before = cut_out(image_rgb, face, illustration_hint=hint, matter=matter, cleanup=False)  # type: ignore[arg-type]
    after = cut_out(image_rgb, face, illustration_hint=hint, matter=matter, cleanup=True)  # type: ignore[arg-type]
    alpha_before = before.rgba[..., 3].astype(np.float32) / 255.0
    alpha_after = after.rgba[..., 3].astype(np.float32) / 255.0
    changed = _best_windows(np.abs(alpha_after - alpha_before), 2, [])
    low, high = _SOFT
    softest = _best_windows((alpha_after > low) & (alpha_after < high), 1, changed)
    windows = [("changed most", y, x) for y, x in changed] + [("softest after", y, x) for y, x in softest]
    backgrounds = _backgrounds(TILE)
    panel = TILE * ZOOM
    gap = 4
    width = 6 * panel + 5 * gap + 2 * gap  # a wider gap between before and after
    rows = []
    header = np.full((_HEADER_PX, width, 3), 255, np.uint8)
    for i, text in enumerate(
        ("before grey", "before green", "before checker", "after grey", "after green", "after checker")
    ):
        _label(header, text, i * (panel + gap) + (2 * gap if i >= 3 else 0))
    rows.append(header)
    for why, y, x in windows:
        row = np.full((panel, width, 3), 255, np.uint8)
        at = 0
        for i, cut in enumerate((before, after)):
            crop = cut.rgba[y : y + TILE, x : x + TILE].astype(np.float32)
            for background in backgrounds:
                tile = _over(crop, background).repeat(ZOOM, axis=0).repeat(ZOOM, axis=1)
                row[:, at : at + panel] = tile
                at += panel + gap
            if i == 0:
                at += 2 * gap
        rows.append(row)
        note = np.full((_HEADER_PX, width, 3), 255, np.uint8)
        _label(note, f"{why}: canvas y {y}-{y + TILE}, x {x}-{x + TILE}", 0)
        rows.append(note)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"matting_sheet_{name}.png"
    Image.fromarray(np.vstack(rows)).save(path, optimize=True, compress_level=9)
    return Sheet(name, path, windows, after.method, hint)


def _run(args: argparse.Namespace) -> int:
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter
    from avatarflow_validator.bootstrap import open_validator
    from PIL import Image

    folders = {"images": Path(args.images_dir), "peer": Path(args.matting_dir) / "peer"}
    out = Path(args.out)
    validator = open_validator()
    with SelfieSegmenter() as matter:
        for folder, file, why in SHEET_IMAGES:
            path = folders[folder] / file
            if not path.is_file():
                print(f"missing {path}", file=sys.stderr)
                return 2
            outcome = validator.validate_bytes(path.read_bytes())
            if outcome.accepted and outcome.image is not None:
                image, face, hint = outcome.image.rgb, outcome.face, outcome.illustration_hint
            else:  # a peer example the validator turns down: matted without a face, as in the evaluation
                image, face, hint = np.asarray(Image.open(path).convert("RGB")), None, False
            name = file.split("__")[-1].rsplit(".", 1)[0].removesuffix(".input")
            sheet = build_sheet(name, image, face, hint, matter, out)
            size_kb = sheet.path.stat().st_size / 1024
            print(
                f"{sheet.path} ({size_kb:.0f} KB) {why}; method {sheet.method}, hint {sheet.hint}, "
                f"face {'validator' if face is not None else 'none'}; windows {sheet.windows}"
            )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("matting-sheets", help="before/after crops of the worst cut-out edges")
    parser.add_argument("out", help="folder for the PNG sheets (docs/images)")
    parser.add_argument("--images-dir", default="/work/shared/avatar-images")
    parser.add_argument("--matting-dir", default="/work/shared/matting")
    parser.set_defaults(handler=_run)
