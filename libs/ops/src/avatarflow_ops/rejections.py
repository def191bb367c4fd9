"""``rejections``: the analytics example consumer (face.rejected counts by reason code)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from datetime import datetime
from typing import Any

from .common import bootstrap, parse_since
from .topics import read_topic


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


def rejections_command(args: argparse.Namespace) -> int:
    from avatarflow_contracts import Topic

    since = parse_since(args.since)
    records = asyncio.run(read_topic(bootstrap(args.bootstrap), Topic.FACE_REJECTED.value, idle_s=2, timeout_s=120))
    counts, uploads = count_rejections(records, since)
    if args.group:
        asyncio.run(_commit_group(bootstrap(args.bootstrap), args.group, Topic.FACE_REJECTED.value, records))
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
