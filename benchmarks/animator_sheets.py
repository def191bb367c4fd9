"""Contact sheets of the animator's frames, to LOOK at: every viseme (mouth zoom), a blink
sequence (eye zoom) and the idle loop's extremes (whole head), over grey and green.

    .venv/bin/python benchmarks/animator_sheets.py --out var/sheets [--docs docs/images] [NAME ...]

NAME is part of an accepted image's file name (default: six varied images: photo, smiling with
teeth, glasses, beard, painting, cartoon). ``--out`` gets the full-resolution sheets; ``--docs``
gets small palette PNGs of the same sheets for docs/animator.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "animator"))

import numpy as np
from animator_probe import accepted_images, make_cutout
from avatarflow_animator.adapters.onnx_renderer import OnnxWarpRenderer
from avatarflow_animator.core import OUTPUT_SIZE, RenderRequest, downscale_cutout, scale_face
from avatarflow_animator.core.poses import VISEME_POSES, FacePose
from avatarflow_animator.core.timeline import idle_poses
from avatarflow_contracts.manifest import OVR_VISEMES
from PIL import Image, ImageDraw

DEFAULT_IMAGES = (
    "man-suit-plain-bg",  # photo
    "black-boy-smiling",  # smiling with teeth
    "man-eyeglasses-blue-bg",  # glasses
    "elderly-man-green-bg",  # beard / moustache
    "mona-lisa-painting",  # painting
    "3d-cartoon-boy",  # cartoon
)
BACKGROUNDS = {"grey": (128, 128, 128), "green": (0, 177, 64)}
BLINKS = (0.0, 0.25, 0.5, 0.75, 1.0)
CELL = 128  # px per sheet cell


def _over(rgba: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.clip(rgba[..., :3] * alpha + np.array(colour) * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)


def _crop(frame: np.ndarray, centre: np.ndarray, half: float) -> Image.Image:
    x0, y0 = (centre - half).astype(int)
    side = int(2 * half)
    box = (max(x0, 0), max(y0, 0), min(x0 + side, frame.shape[1]), min(y0 + side, frame.shape[0]))
    return Image.fromarray(frame).crop(box).resize((CELL, CELL), Image.Resampling.LANCZOS)


def sheet(frames: dict[str, np.ndarray], landmarks: np.ndarray) -> Image.Image:
    """Rows per background: visemes (mouth zoom), blinks (eye zoom) + idle extremes (head)."""
    face_height = float(np.linalg.norm(landmarks[152] - landmarks[10]))
    mouth = landmarks[[61, 291, 13, 14]].mean(axis=0)
    right_eye = landmarks[[33, 133]].mean(axis=0)
    head = landmarks[[10, 152]].mean(axis=0)
    visemes = list(OVR_VISEMES)
    lower = [f"blink {b}" for b in BLINKS] + [
        "idle rest",
        *[k for k in frames if (k.startswith(("idle ", "yaw", "pitch"))) and k != "idle rest"],
    ]
    columns = max(len(visemes), len(lower))
    label = 14
    rows = []
    for colour in BACKGROUNDS.values():
        rows.append([(name, _crop(_over(frames[name], colour), mouth, 0.33 * face_height)) for name in visemes])
        row = [
            (name, _crop(_over(frames[name], colour), right_eye, 0.16 * face_height)) for name in lower[: len(BLINKS)]
        ]
        row += [(name, _crop(_over(frames[name], colour), head, 0.75 * face_height)) for name in lower[len(BLINKS) :]]
        rows.append(row)
    out = Image.new("RGB", (columns * CELL, len(rows) * (CELL + label)), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for r, row in enumerate(rows):
        for c, (name, image) in enumerate(row):
            x, y = c * CELL, r * (CELL + label)
            draw.text((x + 2, y), name, fill=(0, 0, 0))
            out.paste(image, (x, y + label))
    return out


def render_frames(renderer: OnnxWarpRenderer, cutout) -> tuple[dict[str, np.ndarray], np.ndarray]:
    source, face = downscale_cutout(cutout.rgba), scale_face(cutout.face, OUTPUT_SIZE)
    idle, _ = idle_poses(25, 8.0)
    extremes = {
        "idle roll-": min(idle, key=lambda p: p.head_roll_deg),
        "idle roll+": max(idle, key=lambda p: p.head_roll_deg),
        "idle up": min(idle, key=lambda p: p.head_dy),
        "idle dx-": min(idle, key=lambda p: p.head_dx),
        "idle dx+": max(idle, key=lambda p: p.head_dx),
        "idle yaw-": min(idle, key=lambda p: p.head_yaw_deg),
        "idle yaw+": max(idle, key=lambda p: p.head_yaw_deg),
        "idle pitch-": min(idle, key=lambda p: p.head_pitch_deg),
        "idle pitch+": max(idle, key=lambda p: p.head_pitch_deg),
    }
    extremes = {k: FacePose(**{**v.__dict__, "blink": 0.0}) for k, v in extremes.items()}
    named = {
        **{v: VISEME_POSES[v] for v in OVR_VISEMES},
        **{f"blink {b}": FacePose(blink=b) for b in BLINKS},
        "idle rest": FacePose(),
        **extremes,
        "yaw -8": FacePose(head_yaw_deg=-8.0),
        "yaw +8": FacePose(head_yaw_deg=8.0),
        "pitch -5": FacePose(head_pitch_deg=-5.0),
        "pitch +5": FacePose(head_pitch_deg=5.0),
    }
    frames = renderer.render(RenderRequest(source, face, list(named.values()))).frames
    return dict(zip(named, frames, strict=True)), np.asarray(face.landmarks)[:, :2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(DEFAULT_IMAGES))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--docs", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    renderer = OnnxWarpRenderer(intra_op_threads=1)
    for name in args.names:
        path = next(p for p in accepted_images() if name in p.name)
        cutout = make_cutout(path)
        if cutout is None:
            print(f"{path.name}: no face")
            continue
        frames, landmarks = render_frames(renderer, cutout)
        image = sheet(frames, landmarks)
        image.save(args.out / f"sheet-{name}.png")
        if args.docs:
            args.docs.mkdir(parents=True, exist_ok=True)
            small = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
            small.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(
                args.docs / f"animator-sheet-{name}.png", optimize=True
            )
        print(f"{path.name}: {args.out / f'sheet-{name}.png'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
