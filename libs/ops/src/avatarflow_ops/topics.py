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
        started = last_new = time.monotonic()
        # A topic nobody has written yet (a group's dead-letter topic before its first dead letter)
        # has no partitions: with ``until``, keep looking for it until the timeout.
        wait_s = timeout_s if until is not None else min(10.0, timeout_s)
        partitions = await _partitions(consumer, topic, wait_s)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if tps:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
        while tps:
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


async def _partitions(consumer: AIOKafkaConsumer, topic: str, wait_s: float) -> set[int]:
    deadline = time.monotonic() + wait_s
    while True:
        # A fresh metadata request (AIOKafkaConsumer.topics() would not refresh partitions_for_topic).
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
        if partitions or time.monotonic() >= deadline:
            return set(partitions or ())
        await asyncio.sleep(0.5)
