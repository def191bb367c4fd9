"""``avatarctl check`` and ``avatarctl eval``: the validator on local files, no infrastructure."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CACHE_HELP = (
    "keep MediaPipe's face analysis per image in DIR and reuse it on later runs (keyed by the analyzer's"
    " settings and the decoded pixels; the checks and decisions are always recomputed)"
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    check = subparsers.add_parser("check", help="validate local image files")
    check.add_argument("--json", action="store_true", help="one JSON object per file per line")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.set_defaults(handler=run_check)

    evaluate = subparsers.add_parser("eval", help="score the validator (and a Haar baseline) on labels.csv")
    evaluate.add_argument("labels", type=Path, metavar="LABELS.csv")
    evaluate.add_argument("--json", action="store_true", help="print machine-readable totals")
    evaluate.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="folder holding the files (default: an images/ folder beside LABELS.csv if there is one, else its folder)",
    )
    evaluate.add_argument(
        "--folds", type=int, default=5, metavar="K", help="grouped cross-validation folds, split by source repository"
    )
    evaluate.add_argument(
        "--fit",
        action="store_true",
        help="also fit the thresholds on all folds but one and score the held-out fold (grouped CV of the fit)",
    )
    evaluate.add_argument(
        "--fit-only", metavar="NAMES", help="with --fit: fit only these comma-separated thresholds (check names)"
    )
    evaluate.add_argument(
        "--fit-start",
        metavar="NAME=VALUE,...",
        help="with --fit: start the fit from these thresholds instead of the current ones (e.g. face_edge_width=1.6)",
    )
    evaluate.add_argument(
        "--write-fitted", type=Path, metavar="JSON", help="with --fit: write the thresholds fitted on every image here"
    )
    evaluate.add_argument(
        "--model-cv",
        action="store_true",
        help="also re-train the decision model on all folds but one and score the held-out fold",
    )
    evaluate.add_argument("--analysis-cache", type=Path, metavar="DIR", help=CACHE_HELP)
    evaluate.set_defaults(handler=run_eval)

    train = subparsers.add_parser(
        "train-model", help="fit the validator's decision model on a labelled corpus and write it into the package"
    )
    train.add_argument("labels", type=Path, metavar="MANIFEST.csv", help="the corpus manifest (labels.csv format)")
    train.add_argument("--images", type=Path, metavar="DIR", help="default: images/ beside the manifest")
    train.add_argument(
        "--out", type=Path, metavar="JSON", help="default: the packaged core/decision_model.json (+ .training.csv)"
    )
    train.add_argument("--analysis-cache", type=Path, metavar="DIR", help=CACHE_HELP)
    train.set_defaults(handler=run_train_model)

    fetch = subparsers.add_parser(
        "corpus-fetch", help="rebuild the validator's development corpus from the pinned commits in its manifest"
    )
    fetch.add_argument("--manifest", type=Path, help="manifest.csv (default: the validator's corpus manifest)")
    fetch.add_argument("--dest", type=Path, help="where the images go (default: images/ beside the manifest)")
    fetch.add_argument(
        "--mirrors",
        type=Path,
        metavar="DIR",
        help="local bare clones as DIR/<owner>+<name>[/repo], tried before downloading from GitHub",
    )
    fetch.add_argument("--offline", action="store_true", help="use only --mirrors, never the network")
    fetch.set_defaults(handler=run_corpus_fetch)


def run_check(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not p.is_file()]
    if missing:
        print(f"avatarctl check: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    from avatarflow_contracts import editor_message
    from avatarflow_validator.bootstrap import open_validator

    with open_validator() as validator:
        for path in args.paths:
            outcome = validator.validate_bytes(path.read_bytes())
            reasons = [str(r) for r in outcome.reasons]
            warnings = [str(w) for w in outcome.warnings]
            if args.json:
                record = {
                    "file": str(path),
                    "decision": "accept" if outcome.accepted else "reject",
                    "reasons": reasons,
                    "warnings": warnings,
                    "scores": outcome.scores,
                }
                print(json.dumps(record, sort_keys=True))
                continue
            verdict = "ACCEPT" if outcome.accepted else "REJECT " + ",".join(reasons)
            print(f"{path}: {verdict}")
            for code in reasons + warnings:
                print(f"    {code}: {editor_message(code)}")
    return 0


def _labelled_folder(args: argparse.Namespace, command: str) -> Path | None:
    """The folder holding the labelled images, or None (after saying why) when some are missing."""
    from avatarflow_validator.evaluation import read_labels

    labels = read_labels(args.labels)
    folder: Path = args.images or (
        args.labels.parent / "images" if (args.labels.parent / "images").is_dir() else args.labels.parent
    )
    missing = [label.file for label in labels if not (folder / label.file).is_file()]
    if missing:
        print(
            f"avatarctl {command}: {len(missing)} of {len(labels)} images missing under {folder} (first: {missing[0]});"
            " for the corpus run avatarctl corpus-fetch",
            file=sys.stderr,
        )
        return None
    return folder


def run_train_model(args: argparse.Namespace) -> int:
    if not args.labels.is_file():
        print(f"avatarctl train-model: no such file: {args.labels}", file=sys.stderr)
        return 2
    folder = _labelled_folder(args, "train-model")
    if folder is None:
        return 2
    import csv

    from avatarflow_validator import decision_training, fitting
    from avatarflow_validator.bootstrap import open_validator
    from avatarflow_validator.core.decision_model import PACKAGED
    from avatarflow_validator.evaluation import format_cross_validation, grouped_folds, read_labels

    labels = read_labels(args.labels)
    records: dict[str, fitting.Record] = {}
    # The hand-set checks alone: the model's inputs must not depend on a model already shipped.
    with open_validator(decision_model=None, analysis_cache=args.analysis_cache) as validator:
        for label in labels:
            outcome = validator.validate_bytes((folder / label.file).read_bytes())
            records[label.file] = fitting.record(label.file, outcome.checks, outcome.superseded, outcome.scores)
    folds = grouped_folds(labels, 5)
    cv, _ = decision_training.cross_validate_model(folds, records)
    print(format_cross_validation(folds, {"model re-trained per fold": cv}))
    model = decision_training.train(labels, records)
    out = args.out or Path(decision_training.__file__).parent / "core" / PACKAGED
    with args.labels.open(newline="") as handle:
        sha256 = {row["file"]: row.get("sha256", "") for row in csv.DictReader(handle)}
    manifest = decision_training.save(
        out, model, trained_on=str(args.labels), labels=labels, records=records, sha256=sha256
    )
    print(f"wrote {out} ({len(model.codes)} code models) and {manifest}")
    for code in model.codes:
        print(f"    {code.name:16s} reject_at {code.reject_at:.4f}  coef {[round(c, 3) for c in code.coef]}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    if not args.labels.is_file():
        print(f"avatarctl eval: no such file: {args.labels}", file=sys.stderr)
        return 2
    from avatarflow_validator.bootstrap import open_validator
    from avatarflow_validator.evaluation import (
        Decision,
        HaarBaseline,
        cross_validate,
        decide_all,
        format_cross_validation,
        format_report,
        grouped_folds,
        read_labels,
        score,
    )

    labels = read_labels(args.labels)
    folder = args.images or (
        args.labels.parent / "images" if (args.labels.parent / "images").is_dir() else args.labels.parent
    )
    missing = [label.file for label in labels if not (folder / label.file).is_file()]
    if missing:
        print(
            f"avatarctl eval: {len(missing)} of {len(labels)} images missing under {folder} (first: {missing[0]});"
            " for the corpus run avatarctl corpus-fetch",
            file=sys.stderr,
        )
        return 2
    from avatarflow_validator import fitting

    records: dict[str, fitting.Record] = {}
    with open_validator(analysis_cache=args.analysis_cache) as validator:

        def ours(file: str, data: bytes) -> Decision:
            outcome = validator.validate_bytes(data)
            records[file] = fitting.record(file, outcome.checks, outcome.superseded, outcome.scores)
            return Decision(file, outcome.accepted, tuple(str(r) for r in outcome.reasons))

        decisions = decide_all(labels, folder, ours)
    haar = decide_all(labels, folder, HaarBaseline().decide)
    report, baseline = score(labels, decisions), score(labels, haar)
    folds = grouped_folds(labels, args.folds)
    cv = {"validator": cross_validate(folds, decisions), "haar": cross_validate(folds, haar)}
    if args.model_cv:
        from avatarflow_validator import decision_training

        hand = {f: fitting.redecide(r, {}, how="hand") for f, r in records.items()}
        cv["hand"] = cross_validate(folds, hand)
        cv["model/fold"], _ = decision_training.cross_validate_model(folds, records)
    fitted_all: dict[str, float] = {}
    if args.fit:
        # The recomputed decision must be the validator's own before a fit can mean anything.
        differ = [f for f, r in records.items() if fitting.redecide(r, {}) != decisions[f]]
        if differ:
            print(f"avatarctl eval: {len(differ)} decisions not reproduced from checks: {differ[:3]}", file=sys.stderr)
            return 1
        names = [n.strip() for n in args.fit_only.split(",") if n.strip()] if args.fit_only else None
        unknown = sorted(set(names or ()) - set(fitting.BOUNDS))
        if unknown:
            print(f"avatarctl eval: not fittable: {', '.join(unknown)}", file=sys.stderr)
            return 2
        try:
            start = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in (args.fit_start or "").split(",") if p)}
        except ValueError:
            print(f"avatarctl eval: --fit-start wants NAME=VALUE,...: {args.fit_start}", file=sys.stderr)
            return 2
        cv["fitted"], per_fold = fitting.cross_validate_fit(folds, records, names, start)
        fitted_all = fitting.fit(labels, records, names=names, start=start)
        if args.write_fitted:
            fitting.save(args.write_fitted, fitted_all, trained_on=str(args.labels), images=len(labels))
    if args.json:
        totals = {"validator": report.totals(), "haar_baseline": baseline.totals()}
        totals["grouped_cv"] = {"folds": len(folds), **{name: result.totals() for name, result in cv.items()}}
        if fitted_all:
            totals["fitted_on_all"] = fitted_all
        print(json.dumps(totals, sort_keys=True))
    else:
        print(format_report("avatarflow validator", report))
        print()
        print(format_report("Haar cascade baseline (exactly one face -> accept)", baseline))
        print()
        print(format_cross_validation(folds, cv))
        if fitted_all:
            defaults = fitting.defaults(list(records.values()))
            print("thresholds fitted on every image (current value in brackets; then each fold's fit):")
            for name, value in sorted(fitted_all.items()):
                each = " ".join(f"{t[name]:.4g}" for t in per_fold)
                print(f"    {name:24s} {value:9.4f}  ({defaults[name]})  folds: {each}")
    return 0


def run_corpus_fetch(args: argparse.Namespace) -> int:
    from avatarflow_validator.corpus import (
        MANIFEST,
        Fetcher,
        git_mirror_fetcher,
        github_raw_fetcher,
        read_manifest,
        rebuild,
    )

    manifest = args.manifest or MANIFEST
    dest = args.dest or manifest.parent / "images"
    fetchers: list[Fetcher] = []
    if args.mirrors:
        fetchers.append(git_mirror_fetcher(args.mirrors))
    if not args.offline:
        fetchers.append(github_raw_fetcher())
    if not fetchers:
        print("avatarctl corpus-fetch: --offline needs --mirrors", file=sys.stderr)
        return 2
    entries = read_manifest(manifest)
    report = rebuild(entries, dest, fetchers)
    print(f"{dest}: {report.written} written, {report.present} already present, {len(report.failed)} failed")
    for problem in report.failed:
        print(f"    {problem}", file=sys.stderr)
    return 1 if report.failed else 0
