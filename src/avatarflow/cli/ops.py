"""Operations subcommands: mint-token, export-schemas, rejections, replay-dlq."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mint = subparsers.add_parser("mint-token", help="mint a development JWT for an editor or viewer")
    mint.add_argument("--space", required=True)
    mint.add_argument("--sub", default="editor-1")
    mint.add_argument("--role", choices=["editor", "viewer"], default="editor")
    mint.add_argument("--ttl", type=int, default=3600)
    mint.set_defaults(handler=_mint_token)

    export = subparsers.add_parser("export-schemas", help="write (or --check) the JSON Schemas and AsyncAPI docs")
    export.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    export.set_defaults(handler=_export_schemas)


def _mint_token(args: argparse.Namespace) -> int:
    from avatarflow_runtime.auth import mint_token
    from avatarflow_runtime.settings import ServiceSettings

    settings = ServiceSettings()
    print(
        mint_token(
            settings.jwt_secret.get_secret_value(),
            subject=args.sub,
            space_id=args.space,
            role=args.role,
            ttl_s=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )
    return 0


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
