"""Look-sheet of the issue-14 motion patch. From the repository root, with the patch applied:
PYTHONPATH=services/animator/src .venv/bin/python docs/wip/issue14-motion-s7-look.py man-suit-plain-bg mona-lisa
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "animator"))
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import numpy as np  # noqa: E402
from animator_probe import accepted_images, make_cutout  # noqa: E402
from animator_sheets import CELL, _crop, _over  # noqa: E402
from avatarflow_animator.adapters.onnx_renderer import OnnxWarpRenderer  # noqa: E402
from avatarflow_animator.core import OUTPUT_SIZE, RenderRequest, downscale_cutout, scale_face  # noqa: E402
from avatarflow_animator.core.poses import FacePose  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

r = OnnxWarpRenderer(intra_op_threads=1)
poses = {
    "rest": FacePose(),
    "brow 1": FacePose(brow_raise=1.0),
    "gaze -1": FacePose(gaze_x=-1.0),
    "gaze +1": FacePose(gaze_x=1.0),
    "breath 1": FacePose(breath=1.0),
}
rows = []
for name in sys.argv[1:]:
    path = next(p for p in accepted_images() if name in p.name)
    c = make_cutout(path)
    src, face = downscale_cutout(c.rgba), scale_face(c.face, OUTPUT_SIZE)
    fr = dict(zip(poses, r.render(RenderRequest(src, face, list(poses.values()))).frames, strict=True))
    lm = np.asarray(face.landmarks)[:, :2]
    fh = float(np.linalg.norm(lm[152] - lm[10]))
    eyes = lm[[33, 133, 263, 362]].mean(0) - [0, 0.08 * fh]
    row = [(k, _crop(_over(f, (128, 128, 128)), eyes, 0.3 * fh)) for k, f in fr.items()]
    d = np.abs(fr["breath 1"].astype(int) - fr["rest"].astype(int)).max(-1)
    row.append(
        ("breath diff", Image.fromarray(np.clip(d * 8, 0, 255).astype(np.uint8)).convert("RGB").resize((CELL, CELL)))
    )
    row.append(("breath full", Image.fromarray(_over(fr["breath 1"], (0, 177, 64))).resize((CELL, CELL))))
    rows.append(row)
out = Image.new("RGB", (7 * CELL * 2, len(rows) * (CELL * 2 + 14)), "white")
dr = ImageDraw.Draw(out)
for i, row in enumerate(rows):
    for j, (k, im) in enumerate(row):
        out.paste(im.resize((2 * CELL, 2 * CELL)), (j * 2 * CELL, i * (2 * CELL + 14) + 14))
        dr.text((j * 2 * CELL + 2, i * (2 * CELL + 14)), k, fill="black")
out.save("/tmp/motion_look.png")
print("ok")
