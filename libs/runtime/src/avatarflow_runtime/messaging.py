"""The stage template: at-least-once consumption, bounded retries, dead-letter topic, idempotent output.

Every consuming service declares its handler with :func:`stage_consumer`. The flow per record:

1. Decode with the contract (``decode_event``). Malformed JSON, wrong types, an unknown major
   schema version or an oversized record -> dead-letter topic, offset committed, stream goes on.
2. Run the handler with retries: :class:`TransientError` and unexpected exceptions are retried
   with exponential backoff up to ``max_attempts``; :class:`PermanentError` stops at once.
3. Publish the handler's output events and wait for the broker's acknowledgement.
4. Only then commit the offset (``AckPolicy.MANUAL`` + ``message.ack()``). A crash anywhere before
   this point means the record is delivered again; handlers are deterministic and output event ids
   derive from the input's, so a redelivery publishes the very same events again.
5. When the handler fails for good, the record goes to the dead-letter topic (for replay after a
   fix) and the stage's failure event (``avatar.failed``) is published, so the upload still reaches
   a terminal status.

If publishing itself keeps failing (broker down), the record is not committed: the consumer seeks
back to it and tries again after a pause, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka.errors import KafkaError
from avatarflow_contracts import (
    DeadLetter,
    Envelope,
    PoisonEvent,
    Topic,
    decode_event,
    encode_event,
)
from avatarflow_contracts.topics import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, HEADER_TRACEPARENT
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from . import metrics
from .errors import PermanentError, TransientError
from .logging import get_logger
from .settings import ServiceSettings
from .tracing import make_traceparent

InT = TypeVar("InT", bound=Envelope)
log = get_logger("avatarflow.messaging")


def backoff_delays(settings: ServiceSettings) -> list[float]:
    """Delays between attempts: initial, doubling, capped."""
    delays, delay = [], settings.retry_backoff_initial_s
    for _ in range(settings.max_attempts - 1):
        delays.append(min(delay, settings.retry_backoff_max_s))
        delay *= 2
    return delays


class EventBus:
    """Publishes contract events (keyed by space_id, trace headers) and dead-letter records."""

    def __init__(self, broker: KafkaBroker, settings: ServiceSettings) -> None:
        self.broker = broker
        self.settings = settings
        self.service = settings.service_name
        self._publishers: dict[str, Any] = {}

    def declare(self, topic: Topic, schema: type[Any], description: str = "") -> None:
        """Register a publisher so it appears (with its payload schema) in the AsyncAPI document."""
        if topic.value not in self._publishers:
            self._publishers[topic.value] = self.broker.publisher(
                topic.value,
                schema=schema,
                title=f"{self.service}:{topic.value}:publish",
                description=description,
            )

    async def _send(
        self, topic: str, value: bytes, key: bytes | None, headers: dict[str, str], attempts: int | None = None
    ) -> None:
        publisher = self._publishers.get(topic)
        delays = backoff_delays(self.settings)
        if attempts is not None:
            delays = delays[: max(attempts, 1) - 1]
        for attempt in range(len(delays) + 1):
            try:
                if publisher is not None:
                    await publisher.publish(value, key=key, headers=headers)
                else:
                    await self.broker.publish(value, topic=topic, key=key, headers=headers)
                metrics.EVENTS_PUBLISHED.labels(self.service, topic).inc()
                return
            except (TimeoutError, KafkaError, OSError) as exc:
                if attempt >= len(delays):
                    raise TransientError(f"publish to {topic} failed: {type(exc).__name__}") from exc
                metrics.RETRIES.labels(self.service, "publish").inc()
                log.warning("publish_retry", topic=topic, attempt=attempt + 1, error=type(exc).__name__)
                await asyncio.sleep(delays[attempt])

    async def publish(self, event: Envelope, *, attempts: int | None = None) -> None:
        """``attempts`` (default AVATARFLOW_MAX_ATTEMPTS) bounds the tries; a caller that holds an HTTP
        request open passes fewer, since each try may wait out the producer's request timeout."""
        headers = {
            HEADER_TRACEPARENT: make_traceparent(event.trace_id),
            HEADER_EVENT_TYPE: event.event_type,
            HEADER_SCHEMA_VERSION: event.schema_version,
            "content-type": "application/json",
        }
        await self._send(event.TOPIC.value, encode_event(event), event.space_id.encode(), headers, attempts)

    async def dead_letter(self, message: KafkaMessage, *, error: BaseException, error_type: str, attempts: int) -> None:
        record = message.raw_message
        raw_headers = getattr(record, "headers", None) or ()
        letter = DeadLetter(
            service=self.service,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key_b64=base64.b64encode(record.key).decode() if record.key else None,
            value_b64=base64.b64encode(record.value or b"").decode(),
            headers=[(k, base64.b64encode(v or b"").decode()) for k, v in raw_headers],
            error_type=error_type,
            error=str(error)[:4000],
            attempts=attempts,
        )
        await self._send(
            Topic.DEAD_LETTER.value,
            letter.model_dump_json().encode(),
            record.key,
            {"content-type": "application/json", "error_type": error_type, "source_topic": record.topic},
        )
        metrics.DEAD_LETTERS.labels(self.service, error_type).inc()
        log.warning(
            "dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error_type=error_type,
            error=str(error)[:500],
        )


Handler = Callable[[InT], Awaitable[list[Envelope]]]
FailureFactory = Callable[[InT, BaseException, int], Envelope | None]


@dataclass
class StageSpec(Generic[InT]):
    topic: Topic
    group_id: str
    model: type[InT]
    handle: Handler[InT]
    # Builds the terminal failure event (avatar.failed) when processing fails for good; None for
    # consumers that have no failure event of their own (e.g. the notifier).
    on_failure: FailureFactory[InT] | None = None


def stage_consumer(broker: KafkaBroker, bus: EventBus, settings: ServiceSettings, spec: StageSpec[InT]) -> Any:
    """Register the FastStream subscriber for one stage and return it."""
    service = settings.service_name

    @broker.subscriber(
        spec.topic.value,
        group_id=spec.group_id,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",  # never "latest": Tansu's end offsets are unreliable
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        title=f"{service}:{spec.topic.value}:consume",
        description=f"Consumes {spec.model.__name__} events ({spec.topic.value}) in group {spec.group_id}",
    )
    async def consume(message: KafkaMessage) -> None:
        await process_record(message, bus=bus, settings=settings, spec=spec)

    return consume


async def process_record(
    message: KafkaMessage, *, bus: EventBus, settings: ServiceSettings, spec: StageSpec[InT]
) -> None:
    service = settings.service_name
    topic = spec.topic.value
    raw: bytes = message.raw_message.value or b""
    try:
        event = decode_event(raw, spec.model)
    except PoisonEvent as exc:
        await _settle(message, bus.dead_letter(message, error=exc, error_type=type(exc).__name__, attempts=1), settings)
        metrics.EVENTS_CONSUMED.labels(service, topic, "dead_lettered").inc()
        return

    bound = log.bind(
        upload_id=str(event.upload_id),
        space_id=event.space_id,
        trace_id=event.trace_id,
        event_id=str(event.event_id),
    )
    metrics.IN_FLIGHT.labels(service).inc()
    started = time.perf_counter()
    try:
        outputs, failure, attempts = await _run_with_retries(event, spec, settings, bound)
        if failure is None:
            await _settle(message, _publish_all(bus, outputs), settings)
            metrics.EVENTS_CONSUMED.labels(service, topic, "processed").inc()
            waited = (datetime.now(UTC) - event.occurred_at).total_seconds()
            metrics.STAGE_LATENCY_SECONDS.labels(service).observe(max(waited, 0.0))
            bound.info("processed", outputs=[o.event_type for o in outputs], attempts=attempts)
            return
        failure_event = spec.on_failure(event, failure, attempts) if spec.on_failure else None

        async def give_up() -> None:
            await bus.dead_letter(message, error=failure, error_type=type(failure).__name__, attempts=attempts)
            if failure_event is not None:
                await bus.publish(failure_event)

        await _settle(message, give_up(), settings)
        metrics.EVENTS_CONSUMED.labels(service, topic, "failed").inc()
        bound.error("failed", error_type=type(failure).__name__, error=str(failure)[:500], attempts=attempts)
    finally:
        metrics.IN_FLIGHT.labels(service).dec()
        metrics.PROCESSING_SECONDS.labels(service).observe(time.perf_counter() - started)


async def _run_with_retries(
    event: InT, spec: StageSpec[InT], settings: ServiceSettings, bound: Any
) -> tuple[list[Envelope], BaseException | None, int]:
    delays = backoff_delays(settings)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await spec.handle(event), None, attempt
        except (PermanentError, PoisonEvent) as exc:  # retrying cannot help
            return [], exc, attempt
        except Exception as exc:  # TransientError or an unexpected fault: retry, bounded
            if attempt > len(delays):
                return [], exc, attempt
            metrics.RETRIES.labels(settings.service_name, "handle").inc()
            bound.warning("retrying", attempt=attempt, error_type=type(exc).__name__, error=str(exc)[:300])
            await asyncio.sleep(delays[attempt - 1])


async def _publish_all(bus: EventBus, outputs: list[Envelope]) -> None:
    for output in outputs:
        await bus.publish(output)


async def _settle(message: KafkaMessage, publishing: Awaitable[None], settings: ServiceSettings) -> None:
    """Publish, then commit. If publishing fails, rewind to this record so it is delivered again."""
    try:
        await publishing
    except Exception:
        # Not committed: seek back so the next poll returns this record again, after a pause so a
        # broker outage does not turn into a hot loop.
        await message.nack()
        await asyncio.sleep(settings.retry_backoff_max_s)
        raise
    await message.ack()


async def report_consumer_lag(broker: KafkaBroker, service: str, interval_s: float = 5.0) -> None:
    """Export each subscriber's lag (highwater from fetch responses - position) until cancelled.

    Highwater marks come from fetch responses, not ListOffsets, so they stay right on brokers whose
    end-offset answers are off (Tansu). KEDA scales on the broker-side lag; this gauge lets an SRE
    see the same thing from the pod.
    """
    while True:
        totals: dict[tuple[str, str], int] = {}
        for subscriber in list(broker.subscribers):
            consumer = getattr(subscriber, "consumer", None)
            group = getattr(consumer, "_group_id", None) if consumer is not None else None
            if consumer is None or group is None:
                continue
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                try:
                    position = await consumer.position(tp)
                except Exception:  # rebalancing: skip this round
                    continue
                totals[(group, tp.topic)] = totals.get((group, tp.topic), 0) + max(highwater - position, 0)
        for (group, topic), lag in totals.items():
            metrics.CONSUMER_LAG.labels(service, group, topic).set(lag)
        await asyncio.sleep(interval_s)
