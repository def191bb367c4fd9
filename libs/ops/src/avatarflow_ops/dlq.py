"""``replay-dlq``: after a fix, re-run one consumer group's dead letters (that group only)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from .common import bootstrap as bootstrap_of
from .common import parse_since
from .topics import read_topic


def replay_dlq_command(args: argparse.Namespace) -> int:
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

    bootstrap = bootstrap_of(args.bootstrap)
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
