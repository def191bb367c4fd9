import sys, os
sys.path.insert(0, "/tmp/wt/benchmarks"); sys.path.insert(0, "/tmp/wt/tests/animator")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import numpy as np
from animator_sheets import _over, _crop, CELL
from animator_probe import accepted_images, make_cutout
from avatarflow_animator.adapters.onnx_renderer import OnnxWarpRenderer
from avatarflow_animator.core import OUTPUT_SIZE, RenderRequest, downscale_cutout, scale_face
from avatarflow_animator.core.poses import FacePose
from PIL import Image, ImageDraw
r = OnnxWarpRenderer(intra_op_threads=1)
poses = {"rest": FacePose(), "brow 1": FacePose(brow_raise=1.0), "gaze -1": FacePose(gaze_x=-1.0), "gaze +1": FacePose(gaze_x=1.0), "breath 1": FacePose(breath=1.0)}
rows = []
for name in sys.argv[1:]:
    path = next(p for p in accepted_images() if name in p.name)
    c = make_cutout(path)
    src, face = downscale_cutout(c.rgba), scale_face(c.face, OUTPUT_SIZE)
    fr = dict(zip(poses, r.render(RenderRequest(src, face, list(poses.values()))).frames))
    lm = np.asarray(face.landmarks)[:, :2]
    fh = float(np.linalg.norm(lm[152] - lm[10]))
    eyes = lm[[33, 133, 263, 362]].mean(0) - [0, 0.08 * fh]
    row = [(k, _crop(_over(f, (128,128,128)), eyes, 0.3 * fh)) for k, f in fr.items()]
    d = np.abs(fr["breath 1"].astype(int) - fr["rest"].astype(int)).max(-1)
    row.append(("breath diff", Image.fromarray(np.clip(d * 8, 0, 255).astype(np.uint8)).convert("RGB").resize((CELL, CELL))))
    row.append(("breath full", Image.fromarray(_over(fr["breath 1"], (0,177,64))).resize((CELL, CELL))))
    rows.append(row)
out = Image.new("RGB", (7 * CELL * 2, len(rows) * (CELL * 2 + 14)), "white")
dr = ImageDraw.Draw(out)
for i, row in enumerate(rows):
    for j, (k, im) in enumerate(row):
        out.paste(im.resize((2 * CELL, 2 * CELL)), (j * 2 * CELL, i * (2 * CELL + 14) + 14)); dr.text((j * 2 * CELL + 2, i * (2 * CELL + 14)), k, fill="black")
out.save("/tmp/motion_look.png"); print("ok")
