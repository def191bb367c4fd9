"""Run the animator's machine checks (tests/animator/animator_probe.check_pack) over EVERY
accepted image in ../shared/avatar-images and print the failures.

    .venv/bin/python benchmarks/animator_checks.py            # cut-outs built by the test fixture
    .venv/bin/python benchmarks/animator_checks.py --pipeline # cut-outs from validator + matting

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

from animator_probe import Cutout, accepted_images, check_pack, make_cutout
from avatarflow_animator.core import (
    FPS,
    IDLE_SECONDS,
    OUTPUT_SIZE,
    OnnxWarpRenderer,
    downscale_cutout,
    render_pack,
    scale_face,
)
from avatarflow_animator.espeak import EspeakNg
from avatarflow_animator.renderer import RenderRequest
from avatarflow_animator.timeline import idle_poses


def pipeline_cutout(path: Path) -> Cutout | None:
    from avatarflow_matting.core import Matter, cut_out
    from avatarflow_validator.core import Validator

    outcome = Validator().validate_bytes(path.read_bytes())
    if not outcome.accepted or outcome.image is None or outcome.face is None:
        print(f"{path.name}: rejected by the validator {list(map(str, outcome.reasons))}")
        return None
    matter = Matter()
    try:
        cut = cut_out(outcome.image.rgb, outcome.face, illustration_hint=outcome.illustration_hint, matter=matter)
    finally:
        matter.close()
    return Cutout(path.stem, cut.rgba, cut.face)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", action="store_true", help="use the validator and matting cores")
    args = parser.parse_args()
    renderer = OnnxWarpRenderer(intra_op_threads=1)
    speech = EspeakNg()
    failed = 0
    images = accepted_images()
    for path in images:
        cutout = pipeline_cutout(path) if args.pipeline else make_cutout(path)
        if cutout is None:
            print(f"FAIL {path.name}: no cut-out / no face")
            failed += 1
            continue
        pack = render_pack(cutout.rgba, cutout.face, renderer=renderer, speech=speech)
        poses, _ = idle_poses(FPS, IDLE_SECONDS)
        request = RenderRequest(downscale_cutout(cutout.rgba), scale_face(cutout.face, OUTPUT_SIZE), poses)
        failures = check_pack(cutout, pack, renderer.render(request).frames)
        if pack.manifest.preview.audio is None:
            failures.append(f"preview has no audio: {pack.speech_error}")
        status = "ok  " if not failures else "FAIL"
        print(f"{status} {path.name}" + "".join(f"\n       - {f}" for f in failures), flush=True)
        failed += bool(failures)
    print(f"{len(images) - failed}/{len(images)} accepted images pass every animator check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
