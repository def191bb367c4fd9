"""``avatarctl``: the project's command line.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function that
adds its parsers and sets ``handler`` (a callable taking the parsed args and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Set before any subcommand imports onnxruntime (which phones home by default).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

COMMAND_MODULES = (
    "avatarflow.cli.validation",  # check, eval
    "avatarflow.cli.matting",  # matting-eval, matting-figure
    "avatarflow.cli.matting_sheets",  # matting-sheets
    "avatarflow.cli.render",  # render
    "avatarflow.cli.ops",  # mint-token, export-schemas, rejections, replay-dlq
    "avatarflow.cli.demo",  # demo (the run command)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatarctl", description="avatarflow command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
