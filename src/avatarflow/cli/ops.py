"""Operations subcommands: mint-token, export-schemas, rejections, replay-dlq.

mint-token, rejections and replay-dlq live in the lean ``avatarflow-ops`` package (``avatarctl-ops``,
installable without the ML stack); avatarctl registers the very same parsers and handlers. Only
export-schemas, which renders every service's AsyncAPI document, stays here.
"""

from __future__ import annotations

import argparse
import sys

from avatarflow_ops.cli import SubParsers, add_mint_token, add_rejections, add_replay_dlq


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    add_mint_token(subparsers)
    export = subparsers.add_parser("export-schemas", help="write (or --check) the JSON Schemas and AsyncAPI docs")
    export.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    export.set_defaults(handler=_export_schemas)
    add_rejections(subparsers)
    add_replay_dlq(subparsers)


def _export_schemas(args: argparse.Namespace) -> int:
    from avatarflow.contracts_docs import expected_files

    drift = []
    for path, text in expected_files().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            drift.append(path)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    for path in drift:
        print(f"{'drift' if args.check else 'wrote'}: {path}")
    if args.check and drift:
        print("schemas differ from the models: run `avatarctl export-schemas`", file=sys.stderr)
        return 1
    return 0
