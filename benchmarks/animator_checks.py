"""Run the animator's machine checks (tests/animator/animator_probe.check_pack) over EVERY
accepted image in ../shared/avatar-images and print the failures.

    .venv/bin/python benchmarks/animator_checks.py            # cut-outs built by the test fixture
    .venv/bin/python benchmarks/animator_checks.py --pipeline # cut-outs from validator + matting
    .venv/bin/python benchmarks/animator_checks.py --cells    # only the atlas cells + the
                                                              # issue-14 IOD measures (fast)

Every run also prints the issue-14 measures (animator_probe.issue_measures: PP/aa gaps and ou
width relative to the inter-ocular distance, closed-eye EAR, closed-lid and under-eye CIE ΔE)
per image and their min / median / max.

Exit status 1 when any image fails a check.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / "var" / "numba-cache"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "animator"))

import numpy as np
from animator_probe import Cutout, accepted_images, atlas_cells, check_pack, issue_measures, make_cutout
from avatarflow_animator.adapters.espeak import EspeakNg
from avatarflow_animator.adapters.onnx_renderer import OnnxWarpRenderer
from avatarflow_animator.bootstrap import render_pack
from avatarflow_animator.core import (
    EXTRA_CELLS,
    FPS,
    IDLE_SECONDS,
    OUTPUT_SIZE,
    RenderRequest,
    downscale_cutout,
    scale_face,
)
from avatarflow_animator.core.poses import VISEME_POSES
from avatarflow_animator.core.timeline import idle_poses
from avatarflow_contracts.manifest import OVR_VISEMES


def pipeline_cutout(path: Path) -> Cutout | None:
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter
    from avatarflow_matting.core import cut_out
    from avatarflow_validator.bootstrap import open_validator

    outcome = open_validator().validate_bytes(path.read_bytes())
    if not outcome.accepted or outcome.image is None or outcome.face is None:
        print(f"{path.name}: rejected by the validator {list(map(str, outcome.reasons))}")
        return None
    matter = SelfieSegmenter()
    try:
        cut = cut_out(outcome.image.rgb, outcome.face, illustration_hint=outcome.illustration_hint, matter=matter)
    finally:
        matter.close()
    return Cutout(path.stem, cut.rgba, cut.face)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", action="store_true", help="use the validator and matting cores")
    parser.add_argument("--cells", action="store_true", help="render only the atlas cells; issue-14 measures only")
    parser.add_argument("--images", type=int, default=0, help="only the first N accepted images (0 = all)")
    parser.add_argument("--only", default="", help="only images whose file name contains this")
    args = parser.parse_args()
    renderer = OnnxWarpRenderer(intra_op_threads=1)
    speech = EspeakNg()
    failed = 0
    images = [p for p in accepted_images() if args.only in p.name][: args.images or None]
    table: dict[str, dict[str, float]] = {}
    for path in images:
        cutout = pipeline_cutout(path) if args.pipeline else make_cutout(path)
        if cutout is None:
            print(f"FAIL {path.name}: no cut-out / no face")
            failed += 1
            continue
        source, face = downscale_cutout(cutout.rgba), scale_face(cutout.face, OUTPUT_SIZE)
        if args.cells:
            names = [*OVR_VISEMES, *EXTRA_CELLS]
            poses = [VISEME_POSES.get(name) or EXTRA_CELLS[name] for name in names]
            frames = renderer.render(RenderRequest(source, face, poses)).frames
            cells = dict(zip(names, frames, strict=True))
            failures = []
        else:
            pack = render_pack(cutout.rgba, cutout.face, renderer=renderer, speech=speech)
            poses, _ = idle_poses(FPS, IDLE_SECONDS)
            failures = check_pack(cutout, pack, renderer.render(RenderRequest(source, face, poses)).frames)
            if pack.manifest.preview.audio is None:
                failures.append(f"preview has no audio: {pack.speech_error}")
            cells = atlas_cells(pack.files[pack.manifest.visemes.file], pack.manifest)
        values, measured_failures = issue_measures(cells)
        failures += measured_failures
        table[path.stem] = values
        status = "ok  " if not failures else "FAIL"
        print(f"{status} {path.name}" + "".join(f"\n       - {f}" for f in failures), flush=True)
        print("       " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()), flush=True)
        failed += bool(failures)
    keys = sorted({k for v in table.values() for k in v})
    for key in keys:
        column = np.array([v[key] for v in table.values() if key in v])
        print(f"{key:>15}: min {column.min():.3f}  median {np.median(column):.3f}  max {column.max():.3f}")
    print(f"{len(images) - failed}/{len(images)} accepted images pass every animator check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
