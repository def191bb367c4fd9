"""``avatarctl check`` and ``avatarctl eval``: the validator on local files, no infrastructure."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    check = subparsers.add_parser("check", help="validate local image files")
    check.add_argument("--json", action="store_true", help="one JSON object per file per line")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.set_defaults(handler=run_check)

    evaluate = subparsers.add_parser("eval", help="score the validator (and a Haar baseline) on labels.csv")
    evaluate.add_argument("labels", type=Path, metavar="LABELS.csv")
    evaluate.add_argument("--json", action="store_true", help="print machine-readable totals")
    evaluate.set_defaults(handler=run_eval)


def run_check(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not p.is_file()]
    if missing:
        print(f"avatarctl check: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    from avatarflow_contracts import editor_message
    from avatarflow_validator.core import Validator

    with Validator() as validator:
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


def run_eval(args: argparse.Namespace) -> int:
    if not args.labels.is_file():
        print(f"avatarctl eval: no such file: {args.labels}", file=sys.stderr)
        return 2
    from avatarflow_validator.core import Validator
    from avatarflow_validator.evaluation import (
        Decision,
        HaarBaseline,
        decide_all,
        format_report,
        read_labels,
        score,
    )

    labels = read_labels(args.labels)
    folder = args.labels.parent
    with Validator() as validator:

        def ours(file: str, data: bytes) -> Decision:
            outcome = validator.validate_bytes(data)
            return Decision(file, outcome.accepted, tuple(str(r) for r in outcome.reasons))

        report = score(labels, decide_all(labels, folder, ours))
    baseline = score(labels, decide_all(labels, folder, HaarBaseline().decide))
    if args.json:
        print(json.dumps({"validator": report.totals(), "haar_baseline": baseline.totals()}, sort_keys=True))
    else:
        print(format_report("avatarflow validator", report))
        print()
        print(format_report("Haar cascade baseline (exactly one face -> accept)", baseline))
    return 0
