"""``avatarctl matting-eval DIR``: score the matting core against ground truth and peers.

DIR has the layout of shared/matting (see its README): ``NAME.image.png`` + ``NAME.alpha.png`` +
``NAME.trimap.png`` (ground truth), and ``peer/`` with real portraits (``*.input.jpg``) next to
P3M-Net alphas (``*.p3mnet.png``) or rembg cut-outs (``*.rembg.png``).

Methods compared in one run (figures defined in avatarflow_matting.evaluation):

* ``ours``: our alpha with decontaminated colours;
* ``naive``: baseline (a) - with a trimap, the trimap with its unknown band counted as foreground;
  without, MediaPipe's mask end to end - as alpha with the ORIGINAL colours;
* ``ours_orig``: baseline (b) - our alpha with the original colours;
* ``rembg``: rembg's published cut-out (alpha and colours), where there is one.

References. With a trimap: the ground-truth alpha; SAD/MSE/gradient over the trimap's unknown
region. End to end: P3M-Net's alpha where it exists (figures over the whole image). rembg's
girl-* examples have no P3M alpha, and scoring rembg against a reference built from rembg's (or
our) alpha would favour that method, so their reference alpha is the pixel-wise mean of the two
contestants' alphas (ours and rembg's): symmetric, so alpha disagreement costs both the same and
the halo difference comes from colour. There the colour-bleed figure (each method against itself
re-coloured with the reference foreground) is the cleaner comparison. Reference foreground
colours are estimated from the reference alpha with pymatting (``--reference-foreground``: ml,
the multi-level estimator the core also uses, or cf, Levin's closed-form one, independent of the
core but ~30x slower).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METHODS = ("ours", "naive", "ours_orig", "rembg")
FIGURES = ("sad", "mse", "gradient", "halo", "bleed")


@dataclass(frozen=True)
class Row:
    group: str  # "trimap" or "portrait"
    name: str
    method: str
    sad: float
    mse: float
    gradient: float
    halo: float
    bleed: float


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _load_grey(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        grey = image.convert("L")
        if size is not None and grey.size != size:
            grey = grey.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(grey)


def _reference_foreground(kind: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from avatarflow_matting.evaluation import import_pymatting

    pymatting = import_pymatting()
    estimator = pymatting.estimate_foreground_cf if kind == "cf" else pymatting.estimate_foreground_ml

    def estimate(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        image64 = image.astype(np.float64) / 255.0
        return np.clip(estimator(image64, alpha.astype(np.float64)), 0.0, 1.0).astype(np.float32)

    return estimate


def evaluate(
    directory: Path, *, peers: bool = True, peer_limit: int | None = None, reference: str = "ml"
) -> Iterator[Row]:
    """Yield one row per (image, method); the heavy imports happen here, not at CLI start."""
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter
    from avatarflow_matting.core import estimate_alpha_with_trimap, estimate_foreground, matte
    from avatarflow_matting.evaluation import score

    reference_fg = _reference_foreground(reference)

    def rows(group: str, name: str, scores: dict[str, object]) -> Iterator[Row]:
        for method, figures in scores.items():
            yield Row(group, name, method, *(getattr(figures, f) for f in FIGURES))

    for image_path in sorted(directory.glob("*.image.png")):
        name = image_path.name.removesuffix(".image.png")
        image = _load_rgb(image_path)
        trimap = _load_grey(directory / f"{name}.trimap.png")
        truth = _load_grey(directory / f"{name}.alpha.png").astype(np.float32) / 255.0
        unknown = (trimap > 50) & (trimap < 200)
        original = image.astype(np.float32) / 255.0
        alpha = estimate_alpha_with_trimap(image, trimap)
        ours_fg = estimate_foreground(image, alpha)
        naive = (trimap > 50).astype(np.float32)
        truth_fg = reference_fg(image, truth)
        yield from rows(
            "trimap",
            name,
            {
                "ours": score(alpha, ours_fg, truth, truth_fg, unknown),
                "naive": score(naive, original, truth, truth_fg, unknown),
                "ours_orig": score(alpha, original, truth, truth_fg, unknown),
            },
        )

    peer_dir = directory / "peer"
    if not peers or not peer_dir.is_dir():
        return
    inputs = sorted(peer_dir.glob("*.input.jpg"))
    with_reference = [p for p in inputs if (peer_dir / p.name.replace(".input.jpg", ".p3mnet.png")).exists()]
    with_rembg = [p for p in inputs if (peer_dir / p.name.replace(".input.jpg", ".rembg.png")).exists()]
    portraits = with_reference[:peer_limit] + [p for p in with_rembg if p.name.startswith("girl-")]
    with SelfieSegmenter() as matter:
        for input_path in portraits:
            name = input_path.name.removesuffix(".input.jpg")
            image = _load_rgb(input_path)
            size = (image.shape[1], image.shape[0])
            original = image.astype(np.float32) / 255.0
            ours = matte(image, None, matter=matter)
            person = matter.person_mask(image)
            candidates: dict[str, tuple[np.ndarray, np.ndarray]] = {
                "ours": (ours.alpha, ours.foreground),
                "naive": (person, original),
                "ours_orig": (ours.alpha, original),
            }
            p3m = peer_dir / f"{name}.p3mnet.png"
            if p3m.exists():
                reference_alpha = _load_grey(p3m, size).astype(np.float32) / 255.0
            else:
                from PIL import Image

                with Image.open(peer_dir / f"{name}.rembg.png") as cut:
                    rgba = np.asarray(cut.convert("RGBA").resize(size, Image.Resampling.BILINEAR))
                rembg_alpha = rgba[..., 3].astype(np.float32) / 255.0
                candidates["rembg"] = (rembg_alpha, rgba[..., :3].astype(np.float32) / 255.0)
                reference_alpha = (ours.alpha + rembg_alpha) / 2.0
            reference_colours = reference_fg(image, reference_alpha)
            yield from rows(
                "portrait",
                name,
                {m: score(a, c, reference_alpha, reference_colours) for m, (a, c) in candidates.items()},
            )


def summarise(rows: list[Row]) -> dict[tuple[str, str], dict[str, float]]:
    """Mean of each figure per (group, method)."""
    buckets: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        buckets[row.group, row.method].append(row)
        if row.name.startswith("girl-"):
            buckets["portrait-rembg", row.method].append(row)
    return {
        key: {f: float(np.mean([getattr(r, f) for r in items])) for f in FIGURES} | {"n": len(items)}
        for key, items in buckets.items()
    }


def edge_figure(directory: Path, output: Path, tile: int = 72, zoom: int = 3) -> None:
    """Edge crops over pure green, one row per rembg portrait (girl-*): naive | rembg | ours.

    Each crop is centred on the densest part of the soft edge band (hair); evaluation-only images,
    so only these small crops are written.
    """
    import cv2
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter
    from avatarflow_matting.core import encode_png, matte
    from avatarflow_matting.evaluation import halo_band, over_green
    from PIL import Image

    rows = []
    with SelfieSegmenter() as matter:
        for input_path in sorted((directory / "peer").glob("girl-*.input.jpg")):
            name = input_path.name.removesuffix(".input.jpg")
            image = _load_rgb(input_path)
            size = (image.shape[1], image.shape[0])
            with Image.open(directory / "peer" / f"{name}.rembg.png") as cut:
                rgba = np.asarray(cut.convert("RGBA").resize(size, Image.Resampling.BILINEAR))
            ours = matte(image, None, matter=matter)
            original = image.astype(np.float32) / 255.0
            density = cv2.boxFilter(halo_band(ours.alpha).astype(np.float32), -1, (tile, tile))
            half = tile // 2
            density[:half] = density[-half:] = 0
            density[:, :half] = density[:, -half:] = 0
            y, x = np.unravel_index(int(np.argmax(density)), density.shape)
            crop = (slice(y - half, y + half), slice(x - half, x + half))
            panels = [
                over_green(matter.person_mask(image), original),
                over_green(rgba[..., 3] / 255.0, rgba[..., :3] / 255.0),
                over_green(ours.alpha, ours.foreground),
            ]
            rows.append(np.hstack([np.round(p[crop] * 255).astype(np.uint8) for p in panels]))
    output.parent.mkdir(parents=True, exist_ok=True)
    figure = np.vstack(rows).repeat(zoom, axis=0).repeat(zoom, axis=1)  # pixel-exact zoom
    output.write_bytes(encode_png(figure))


@dataclass(frozen=True)
class FigureRow:
    name: str
    before: object  # figure.FigureFigures without the figure and edge steps (cleanup=False)
    after: object  # ... and on


def accepted_images(images_dir: Path) -> list[Path]:
    """The images labels.csv (shared/avatar-images) expects to be accepted."""
    import csv

    with (images_dir / "labels.csv").open(newline="") as handle:
        return [images_dir / row["file"] for row in csv.DictReader(handle) if row["expected"] == "accept"]


def figure_rows(images: list[Path]) -> Iterator[FigureRow]:
    """Detached alpha of each image's cut-out, without and with the figure and edge steps
    (``cleanup``).

    Each image goes through the validator (face geometry, illustration hint) and then ``cut_out``
    as in the service; figures are measured on the 1024 px canvas alpha, seeded with the face
    landmarks mapped onto the canvas (``figure.detached_figures``).
    """
    from avatarflow_matting.adapters.segmentation import SelfieSegmenter
    from avatarflow_matting.core import cut_out
    from avatarflow_matting.core.figure import detached_figures, seed_points
    from avatarflow_validator.bootstrap import open_validator

    validator = open_validator()
    with SelfieSegmenter() as matter:
        for path in images:
            outcome = validator.validate_bytes(path.read_bytes())
            if not outcome.accepted or outcome.image is None or outcome.face is None:
                continue
            figures = []
            for cleanup in (False, True):
                cut = cut_out(
                    outcome.image.rgb,
                    outcome.face,
                    illustration_hint=outcome.illustration_hint,
                    matter=matter,
                    cleanup=cleanup,
                )
                assert cut.face is not None
                landmarks = np.asarray(cut.face.landmarks, np.float64)[:, :2]
                seeds = seed_points(landmarks, cut.rgba.shape[:2])
                figures.append(detached_figures(cut.rgba[..., 3], seeds))
            yield FigureRow(path.name, *figures)


def _run_figure(args: argparse.Namespace) -> int:
    images_dir = Path(args.directory)
    if not (images_dir / "labels.csv").is_file():
        print(f"no labels.csv in {images_dir}", file=sys.stderr)
        return 2
    columns = f"{'parts':>6s} {'mass':>8s} {'px':>6s}"
    print(f"{'image':52s} before: {columns}  after: {columns}")
    rows = []
    for row in figure_rows(accepted_images(images_dir)):
        rows.append(row)
        b, a = row.before, row.after
        print(
            f"{row.name:52s}         {b.detached_components:6d} {b.detached_mass:8.5f} {b.detached_pixels:6d}  "
            f"       {a.detached_components:6d} {a.detached_mass:8.5f} {a.detached_pixels:6d}"
        )
    for label, pick in (("before", lambda r: r.before), ("after", lambda r: r.after)):
        parts = sum(pick(r).detached_components for r in rows)
        mass = sum(pick(r).detached_mass for r in rows)
        with_any = sum(pick(r).detached_components > 0 for r in rows)
        print(
            f"{label}: {len(rows)} accepted images, {with_any} with detached alpha, {parts} detached parts, "
            f"mean detached mass {mass / max(1, len(rows)):.6f}"
        )
    return 0


def _print_row(label: str, method: str, figures: dict[str, float]) -> None:
    print(
        f"{label:34s} {method:10s} {figures['sad']:9.2f} {figures['mse']:8.4f} "
        f"{figures['gradient']:9.2f} {figures['halo']:7.2f} {figures['bleed']:7.2f}"
    )


def _run(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"not a directory: {directory}", file=sys.stderr)
        return 2
    if args.edge_figure:
        edge_figure(directory, Path(args.edge_figure))
        print(f"wrote {args.edge_figure}")
        return 0
    started = time.perf_counter()
    print(f"{'image':34s} {'method':10s} {'SAD':>9s} {'MSE':>8s} {'Grad':>9s} {'Halo':>7s} {'Bleed':>7s}")
    rows: list[Row] = []
    for row in evaluate(
        directory, peers=not args.no_peers, peer_limit=args.peer_limit, reference=args.reference_foreground
    ):
        rows.append(row)
        _print_row(f"{row.group}/{row.name}", row.method, row.__dict__)
    print("\nmeans")
    summary = summarise(rows)
    for (group, method), figures in sorted(summary.items()):
        _print_row(f"{group} (n={figures['n']})", method, figures)
    print()
    for group in ("trimap", "portrait"):
        ours, naive = summary.get((group, "ours")), summary.get((group, "naive"))
        if ours and naive:
            print(
                f"{group}: SAD ours/naive = {ours['sad'] / naive['sad']:.2f}, "
                f"halo ours/naive = {ours['halo'] / naive['halo']:.2f}"
            )
    ours, rembg = summary.get(("portrait-rembg", "ours")), summary.get(("portrait-rembg", "rembg"))
    if ours and rembg:
        print(
            f"rembg portraits: halo ours {ours['halo']:.2f} vs rembg {rembg['halo']:.2f}; "
            f"bleed ours {ours['bleed']:.2f} vs rembg {rembg['bleed']:.2f}"
        )
    print(f"elapsed {time.perf_counter() - started:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("matting-eval", help="score the matting core on a ground-truth folder")
    parser.add_argument("directory", help="folder laid out like shared/matting")
    parser.add_argument("--no-peers", action="store_true", help="skip peer/ (end-to-end portraits)")
    parser.add_argument("--peer-limit", type=int, default=None, help="at most this many P3M portraits")
    parser.add_argument("--reference-foreground", choices=("ml", "cf"), default="ml")
    parser.add_argument("--edge-figure", metavar="PNG", help="only write the edge-crop figure to PNG")
    parser.set_defaults(handler=_run)
    figure = subparsers.add_parser(
        "matting-figure", help="detached alpha (outside the face's figure) over the accepted images, before/after"
    )
    figure.add_argument("directory", help="folder laid out like shared/avatar-images (labels.csv)")
    figure.set_defaults(handler=_run_figure)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
