"""Read what is on a topic from offset 0 (no consumer group, nothing committed).

Tansu's end offsets are unreliable (ListOffsets(latest) is off by a batch), so we never ask for
the end: we read until ``idle_s`` passes with no new record, or until ``until`` is satisfied.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    idle_s: float = 2.0,
    timeout_s: float = 30.0,
    until: Callable[[list[Record]], bool] | None = None,
) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Record] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + 10
        while not partitions and time.monotonic() < deadline:
            await consumer.client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or [])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started = last_new = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for tp_records in batch.values():
                for r in tp_records:
                    records.append(Record(r.topic, r.partition, r.offset, r.key, r.value or b"", dict(r.headers or ())))
                    last_new = time.monotonic()
            now = time.monotonic()
            if until is not None and until(records):
                break
            if until is None and now - last_new >= idle_s:
                break
            if now - started >= timeout_s:
                break
    finally:
        await consumer.stop()
    return records
