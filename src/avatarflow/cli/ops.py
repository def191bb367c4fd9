"""Operations subcommands: mint-token, export-schemas, rejections, replay-dlq."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any


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

    rejections = subparsers.add_parser(
        "rejections", help="analytics example: consume face.rejected and print counts by reason code"
    )
    rejections.add_argument("--bootstrap", default=None, help="default: AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS")
    rejections.add_argument("--since", default="24h", help="ISO timestamp or a duration like 30m, 24h, 7d")
    rejections.add_argument("--group", default=None, help="commit progress in this consumer group (optional)")
    rejections.add_argument("--json", action="store_true")
    rejections.set_defaults(handler=_rejections)

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


def _mint_token(args: argparse.Namespace) -> int:
    from avatarflow_runtime.auth import mint_token
    from avatarflow_runtime.settings import InsecureSecret, ServiceSettings

    settings = ServiceSettings()
    try:  # a token signed with a key no service accepts would only fail later with 401
        settings.require_token_secret()
    except InsecureSecret as exc:
        print(f"mint-token: {exc}", file=sys.stderr)
        return 2
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


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """'30m', '24h', '7d' or an ISO timestamp -> an aware UTC datetime."""
    now = now or datetime.now(UTC)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return now - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bootstrap(value: str | None) -> str:
    from avatarflow_runtime.settings import ServiceSettings

    return value or ServiceSettings().kafka_bootstrap_servers


def count_rejections(records: list[Any], since: datetime) -> tuple[Counter[str], int]:
    """Reason-code counts over face.rejected records since a time (poison records are skipped)."""
    from avatarflow_contracts import FaceRejected, PoisonEvent, decode_event

    counts: Counter[str] = Counter()
    uploads = 0
    for record in records:
        try:
            event = decode_event(record.value, FaceRejected)
        except PoisonEvent:
            continue
        if event.occurred_at < since:
            continue
        uploads += 1
        counts.update(code.value for code in event.reasons)
    return counts, uploads


def _rejections(args: argparse.Namespace) -> int:
    from avatarflow_contracts import Topic

    from avatarflow.devstack.topics import read_topic

    since = parse_since(args.since)
    records = asyncio.run(read_topic(_bootstrap(args.bootstrap), Topic.FACE_REJECTED.value, idle_s=2, timeout_s=120))
    counts, uploads = count_rejections(records, since)
    if args.group:
        asyncio.run(_commit_group(_bootstrap(args.bootstrap), args.group, Topic.FACE_REJECTED.value, records))
    if args.json:
        print(json.dumps({"since": since.isoformat(), "rejected_uploads": uploads, "by_reason": dict(counts)}))
    else:
        print(f"face.rejected since {since.isoformat()}: {uploads} upload(s)")
        for code, n in counts.most_common():
            print(f"  {code:<18} {n}")
    return 0


async def _commit_group(bootstrap: str, group: str, topic: str, records: list[Any]) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    last: dict[int, int] = {}
    for record in records:
        last[record.partition] = max(last.get(record.partition, -1), record.offset)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in last])
        await consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o + 1, "") for p, o in last.items()})
    finally:
        await consumer.stop()


def _replay_dlq(args: argparse.Namespace) -> int:
    """Send ``--group``'s dead letters to that group's retry topic and journal the run.

    Only the group that failed consumes its retry topic, so replaying a notifier failure never re-runs
    validation, matting or a render. Each run is recorded on ``avatarflow.dlq-replays`` (DlqReplay), and
    dead letters an earlier run replayed are skipped unless ``--again``.
    """
    from aiokafka import AIOKafkaProducer
    from avatarflow_contracts import (
        DLQ_REPLAYS_TOPIC,
        DeadLetter,
        DlqReplay,
        ObjectRef,
        ReplayedRecord,
        dead_letter_topic,
        retry_topic,
    )
    from avatarflow_contracts.events import DLT_PREFIX
    from avatarflow_contracts.topics import HEADER_REPLAY_ORIGINAL_TOPIC, HEADER_REPLAYED_FROM

    from avatarflow.devstack.topics import read_topic

    bootstrap = _bootstrap(args.bootstrap)
    group = args.group
    source, target = dead_letter_topic(group), retry_topic(group)
    since = parse_since(args.since) if args.since else None
    done: set[str] = set()
    if not args.again:
        for record in asyncio.run(read_topic(bootstrap, DLQ_REPLAYS_TOPIC, idle_s=1, timeout_s=60)):
            with contextlib.suppress(ValueError):
                journal = DlqReplay.model_validate_json(record.value)
                if journal.consumer_group == group:
                    done.update(str(r.dead_letter_id) for r in journal.records)
    selected: list[tuple[DeadLetter, Any]] = []
    skipped = 0
    for record in asyncio.run(read_topic(bootstrap, source, idle_s=2, timeout_s=120)):
        letter = DeadLetter.from_headers(record.headers)
        if args.topic and letter.topic != args.topic:
            continue
        if since and letter.failed_at < since:
            continue
        if args.error_type and args.error_type not in (letter.error_type, letter.error_type.rsplit(".", 1)[-1]):
            continue
        if str(letter.dead_letter_id) in done:
            skipped += 1
            continue
        selected.append((letter, record))

    def original_value(letter: DeadLetter, record: Any) -> bytes:
        if letter.value_location == "inline":
            return bytes(record.value)
        from avatarflow_runtime.settings import ServiceSettings
        from avatarflow_runtime.storage import ObjectStore

        ref = ObjectRef.model_validate_json(record.value)
        return ObjectStore.from_settings(ServiceSettings()).get_bytes_sync(ref, max_bytes=ref.size)

    journal = DlqReplay(
        consumer_group=group,
        dead_letter_topic=source,
        retry_topic=target,
        filters={
            k: str(v) for k, v in {"topic": args.topic, "since": args.since, "error_type": args.error_type}.items() if v
        },
        records=[
            ReplayedRecord(
                dead_letter_id=letter.dead_letter_id,
                topic=letter.topic,
                partition=letter.partition,
                offset=letter.offset,
                error_type=letter.error_type,
            )
            for letter, _ in selected
        ],
    )

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=64 * 1024 * 1024)
        await producer.start()
        try:
            for letter, record in selected:
                headers = [
                    (k, v)
                    for k, v in record.headers.items()
                    if not k.startswith(DLT_PREFIX) and k not in (HEADER_REPLAY_ORIGINAL_TOPIC, HEADER_REPLAYED_FROM)
                ]
                headers += [
                    (HEADER_REPLAY_ORIGINAL_TOPIC, letter.topic.encode()),
                    (HEADER_REPLAYED_FROM, str(letter.dead_letter_id).encode()),
                ]
                await producer.send_and_wait(target, original_value(letter, record), key=record.key, headers=headers)
            await producer.send_and_wait(DLQ_REPLAYS_TOPIC, journal.model_dump_json().encode(), key=group.encode())
        finally:
            await producer.stop()

    for letter, _ in selected:
        print(
            f"{'would replay' if args.dry_run else 'replay'} {letter.topic}[{letter.partition}]@{letter.offset} "
            f"({letter.error_type}) -> {target}"
        )
    if not args.dry_run and selected:
        asyncio.run(publish())
    verb = "selected" if args.dry_run else f"replayed to {target}"
    if selected and not args.dry_run:
        verb += f" (journal {DLQ_REPLAYS_TOPIC} {journal.replay_id})"
    print(f"{len(selected)} record(s) {verb}; {skipped} already replayed")
    return 0
