"""``avatarctl render IMAGE --out DIR``: validate, cut out and animate one portrait locally.

Runs the validator, matting and animator cores in-process (no broker, no storage) and writes the
avatar pack (manifest.json, idle loop, viseme atlas, preview clip, poster) into DIR. A rejected
image prints its reasons and exits with status 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_REJECTED = 3
EXIT_UNREADABLE = 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("render", help="validate, cut out and animate a portrait into a pack")
    parser.add_argument("image", type=Path, help="portrait file (JPEG, PNG, WebP, HEIF)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the avatar pack into")
    parser.add_argument("--text", default=None, help="line the preview clip lip-syncs (English)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.set_defaults(handler=run_render)


def run_render(args: argparse.Namespace) -> int:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path("var/numba-cache").resolve()))
    # Imported here so other avatarctl commands do not pay for MediaPipe / onnxruntime start-up.
    from avatarflow_animator.adapters.espeak import EspeakNg
    from avatarflow_animator.adapters.onnx_renderer import OnnxWarpRenderer
    from avatarflow_animator.bootstrap import render_pack
    from avatarflow_animator.core import DEFAULT_PREVIEW_TEXT, SpeechUnavailable
    from avatarflow_contracts import editor_message
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter
    from avatarflow_matting.core import cut_out
    from avatarflow_validator.bootstrap import open_validator

    try:
        data = args.image.read_bytes()
    except OSError as exc:
        print(f"cannot read {args.image}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE

    outcome = open_validator().validate_bytes(data)
    if not outcome.accepted:
        print(f"rejected: {args.image}")
        for reason in outcome.reasons:
            print(f"  - {reason}: {editor_message(reason)}")
        return EXIT_REJECTED
    if outcome.image is None or outcome.face is None:  # accepted always carries both
        print("validator accepted the image but returned no face geometry", file=sys.stderr)
        return EXIT_UNREADABLE

    matter = SelfieSegmenter()
    try:
        cut = cut_out(outcome.image.rgb, outcome.face, illustration_hint=outcome.illustration_hint, matter=matter)
    finally:
        matter.close()

    renderer = OnnxWarpRenderer(intra_op_threads=args.threads)
    try:
        speech: EspeakNg | None = EspeakNg()
    except SpeechUnavailable as exc:
        print(f"warning: silent preview: {exc}", file=sys.stderr)
        speech = None
    text = args.text or DEFAULT_PREVIEW_TEXT
    pack = render_pack(cut.rgba, cut.face, renderer=renderer, preview_text=text, speech=speech)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in sorted(pack.files.items()):
        (args.out / name).write_bytes(content)
    print(
        f"wrote {len(pack.files)} files to {args.out} (matting: {cut.method}; "
        f"provider: {pack.execution_provider}; render {pack.render_seconds:.2f} s, "
        f"encode {pack.encode_seconds:.2f} s)"
    )
    return 0
