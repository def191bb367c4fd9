"""``avatarctl-ops``: the operations commands, one parser per command.

``avatarctl`` registers the same parsers (``add_mint_token``, ``add_rejections``, ``add_replay_dlq``)
beside its development commands, so both offer identical flags and behaviour. Each handler imports its
command module only when it runs: building the parser costs no Kafka or S3 imports.
"""

from __future__ import annotations

import argparse
import sys

SubParsers = argparse._SubParsersAction  # argparse has no public name for what add_subparsers returns


def _mint_token(args: argparse.Namespace) -> int:
    from .tokens import mint_token_command

    return mint_token_command(args)


def _rejections(args: argparse.Namespace) -> int:
    from .rejections import rejections_command

    return rejections_command(args)


def _replay_dlq(args: argparse.Namespace) -> int:
    from .dlq import replay_dlq_command

    return replay_dlq_command(args)


def add_mint_token(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    mint = subparsers.add_parser("mint-token", help="mint a development JWT for an editor or viewer")
    mint.add_argument("--space", required=True)
    mint.add_argument("--sub", default="editor-1")
    mint.add_argument("--role", choices=["editor", "viewer"], default="editor")
    mint.add_argument("--ttl", type=int, default=3600)
    mint.set_defaults(handler=_mint_token)


def add_rejections(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    rejections = subparsers.add_parser(
        "rejections", help="analytics example: consume face.rejected and print counts by reason code"
    )
    rejections.add_argument("--bootstrap", default=None, help="default: AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS")
    rejections.add_argument("--since", default="24h", help="ISO timestamp or a duration like 30m, 24h, 7d")
    rejections.add_argument("--group", default=None, help="commit progress in this consumer group (optional)")
    rejections.add_argument("--json", action="store_true")
    rejections.set_defaults(handler=_rejections)


def add_replay_dlq(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    replay = subparsers.add_parser(
        "replay-dlq", help="after a fix, re-run one consumer group's dead letters (that group only)"
    )
    replay.add_argument("--bootstrap", default=None)
    replay.add_argument(
        "--group", required=True, help="the consumer group that failed, e.g. avatarflow-notifier: its .dlq is read"
    )
    replay.add_argument("--topic", default=None, help="only records that came from this topic")
    replay.add_argument("--again", action="store_true", help="include dead letters an earlier replay already sent")
    replay.add_argument("--since", default=None, help="only records dead-lettered since (ISO or 30m/24h/7d)")
    replay.add_argument("--error-type", default=None, help="only this error type, e.g. UnknownSchemaVersion")
    replay.add_argument("--dry-run", action="store_true")
    replay.set_defaults(handler=_replay_dlq)


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    """Every operations command (mint-token, rejections, replay-dlq)."""
    add_mint_token(subparsers)
    add_rejections(subparsers)
    add_replay_dlq(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatarctl-ops", description="avatarflow operations commands")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
