"""The stage template: one delivery policy from decode to commit, so no record is lost, blocked or skipped.

Every consuming service declares its handler with :func:`stage_consumer`. Each record ends in
exactly one of three ways (:func:`process_record`), whatever fails on the way:

* **ack**: the handler's output events reached the broker, then the offset is committed
  (``AckPolicy.MANUAL`` + ``message.ack()``).
* **nack and retry**: an infrastructure fault (broker, S3 or database unreachable) outlasted the
  in-process retries, or the policy itself hit an unexpected error. Nothing is committed: the
  consumer seeks back to the record and tries again after a pause, for as long as the fault lasts.
* **dead-letter**: a data fault (undecodable bytes, schema errors, a rule the record cannot pass,
  an output too large for the broker). The original bytes go to the dead-letter topic with their
  context in ``dlt-*`` headers (an S3 copy when they would not fit), the stage's failure event
  (``avatar.failed``) is published when it has one, and the offset is committed.

A failure inside the failure path (``on_failure`` raising, an oversized failure event) still
dead-letters the record; a dead letter that cannot be written is retried, never skipped. Handlers
are deterministic and output event ids derive from the input's, so a redelivery publishes the very
same events again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from avatarflow_contracts import (
    DeadLetter,
    Envelope,
    MalformedEvent,
    PoisonEvent,
    Topic,
    dead_letter_topic,
    decode_event,
    encode_event,
    retry_topic,
)
from avatarflow_contracts.events import DLT_PREFIX, MAX_EXCEPTION_MESSAGE
from avatarflow_contracts.topics import (
    CE_SPECVERSION,
    HEADER_CE_ID,
    HEADER_CE_SOURCE,
    HEADER_CE_SPECVERSION,
    HEADER_CE_TIME,
    HEADER_CE_TYPE,
    HEADER_EVENT_TYPE,
    HEADER_REPLAY_ORIGINAL_TOPIC,
    HEADER_SCHEMA_VERSION,
    HEADER_TRACEPARENT,
)
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from . import metrics
from .errors import PermanentError, RecordTooLarge, TransientError
from .logging import get_logger
from .settings import ServiceSettings
from .tracing import continue_trace, current_traceparent, make_traceparent

if TYPE_CHECKING:  # storage imports boto3
    from .storage import ObjectStore

InT = TypeVar("InT", bound=Envelope)
log = get_logger("avatarflow.messaging")


def backoff_delays(settings: ServiceSettings) -> list[float]:
    """Delays between attempts: initial, doubling, capped."""
    delays, delay = [], settings.retry_backoff_initial_s
    for _ in range(settings.max_attempts - 1):
        delays.append(min(delay, settings.retry_backoff_max_s))
        delay *= 2
    return delays


def fqcn(error: BaseException) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


_INFRA_NAMES = frozenset(
    {
        "OperationalError",  # SQLAlchemy / DB-API: connection refused, server gone, admin shutdown
        "InterfaceError",
        "DisconnectionError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
    }
)


def is_infrastructure_fault(error: BaseException) -> bool:
    """True for a fault of a dependency (broker, S3, database, network), not of the record.

    Such faults are retried for as long as they last (the partition waits); everything else that
    exhausts its retries is a data fault and ends in the dead-letter topic.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (PermanentError, PoisonEvent)):
            return False
        if isinstance(current, (TransientError, OSError, TimeoutError, KafkaConnectionError)):
            return True
        if any(cls.__name__ in _INFRA_NAMES for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


class EventBus:
    """Publishes contract events (keyed by space_id, trace headers) and dead-letter records."""

    def __init__(self, broker: KafkaBroker, settings: ServiceSettings, store: ObjectStore | None = None) -> None:
        self.broker = broker
        self.settings = settings
        self.service = settings.service_name
        self.store = store
        self._publishers: dict[str, Any] = {}
        # group -> event topic -> the stage that handles it (routes records on the group's retry topic)
        self.retry_routes: dict[str, dict[str, StageSpec[Any]]] = {}

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
            except (MessageSizeTooLargeError, RecordTooLargeError) as exc:
                # Producer- or broker-side size limit: the same bytes will never fit, do not retry.
                raise RecordTooLarge(f"record for {topic} is too large ({len(value)} bytes): {exc}") from exc
            except (TimeoutError, KafkaError, OSError) as exc:
                if attempt >= len(delays):
                    raise TransientError(f"publish to {topic} failed: {type(exc).__name__}") from exc
                metrics.RETRIES.labels(self.service, "publish").inc()
                log.warning("publish_retry", topic=topic, attempt=attempt + 1, error=type(exc).__name__)
                await asyncio.sleep(delays[attempt])

    async def publish(self, event: Envelope, *, attempts: int | None = None) -> None:
        """``attempts`` (default AVATARFLOW_MAX_ATTEMPTS) bounds the tries; a caller that holds an HTTP
        request open passes fewer, since each try may wait out the producer's request timeout."""
        with continue_trace(event.trace_id):
            await self._send(
                event.TOPIC.value, encode_event(event), event.space_id.encode(), self._headers(event), attempts
            )

    def _headers(self, event: Envelope) -> dict[str, str]:
        return {
            # The current span's context; the broker's telemetry middleware writes its producer span's
            # over it when tracing is on. Either way the consumer continues the upload's trace.
            HEADER_TRACEPARENT: current_traceparent() or make_traceparent(event.trace_id),
            HEADER_EVENT_TYPE: event.event_type,
            HEADER_SCHEMA_VERSION: event.schema_version,
            "content-type": "application/json",
            # CloudEvents Kafka binding (binary mode): the same facts, in the standard names.
            HEADER_CE_SPECVERSION: CE_SPECVERSION,
            HEADER_CE_ID: str(event.event_id),
            HEADER_CE_TYPE: event.event_type,
            HEADER_CE_SOURCE: f"/avatarflow/{self.service}",
            HEADER_CE_TIME: event.occurred_at.isoformat(),
        }

    def _object_store(self) -> ObjectStore:
        if self.store is None:  # services without storage of their own (the notifier) get one on demand
            from .storage import ObjectStore

            self.store = ObjectStore.from_settings(self.settings)
        return self.store

    async def dead_letter(
        self,
        message: KafkaMessage,
        *,
        group: str,
        error: BaseException,
        attempts: int,
        note: str | None = None,
    ) -> DeadLetter:
        """Write the record to the dead-letter topic: original key and bytes, context in ``dlt-*`` headers.

        When the original bytes plus headers would not fit under the producer's request limit, the
        bytes are copied to S3 (``dead-letters/<group>/<topic>/<partition>/<offset>``) and the value is
        that copy's ObjectRef, so a dead letter always fits.
        """
        record = message.raw_message
        value: bytes = record.value or b""
        key: bytes | None = record.key
        # A replayed record may carry the dlt-* headers of its previous dead-lettering: replace them.
        original = [(k, v or b"") for k, v in (getattr(record, "headers", None) or ()) if not k.startswith(DLT_PREFIX)]
        # A record from the retry topic keeps naming the event topic it came from, so it can be replayed again.
        source_topic = dict(original).get(HEADER_REPLAY_ORIGINAL_TOPIC, b"").decode() or record.topic
        if source_topic != record.topic:
            via = f"replayed via {record.topic}[{record.partition}]@{record.offset}"
            note = f"{note}; {via}" if note else via
        letter = DeadLetter(
            service=self.service,
            consumer_group=group,
            topic=source_topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=getattr(record, "timestamp", None),
            error_type=fqcn(error),
            error=str(error)[:MAX_EXCEPTION_MESSAGE],
            attempts=attempts,
            note=note[:MAX_EXCEPTION_MESSAGE] if note else None,
        )
        limit = self.settings.kafka_max_request_bytes - 1024  # room for the batch framing
        if _record_size(key, value, original + letter.to_headers()) > limit:
            ref = await self._object_store().put_bytes(
                f"dead-letters/{group}/{record.topic}/{record.partition}/{record.offset}",
                value,
                "application/octet-stream",
            )
            value = ref.model_dump_json().encode()
            letter = letter.model_copy(update={"value_location": "s3"})
            if _record_size(key, value, original + letter.to_headers()) > limit:
                original = []
                letter = letter.model_copy(update={"headers_dropped": True})
        headers = {k: v.decode("utf-8", "backslashreplace") for k, v in original}
        headers.update({k: v.decode() for k, v in letter.to_headers()})
        await self._send(dead_letter_topic(group), value, key, headers)
        metrics.DEAD_LETTERS.labels(self.service, type(error).__name__).inc()
        log.warning(
            "dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error_type=letter.error_type,
            error=letter.error[:500],
            value_location=letter.value_location,
        )
        return letter


def _record_size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


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

    routes = bus.retry_routes.setdefault(spec.group_id, {})
    if not routes:
        _group_channels(broker, bus, settings, spec.group_id)
    routes[spec.topic.value] = spec
    return consume


def _group_channels(broker: KafkaBroker, bus: EventBus, settings: ServiceSettings, group: str) -> None:
    """The group's own retry topic (consumed by this group alone) and dead-letter topic (published)."""
    service, retry, dead = settings.service_name, retry_topic(group), dead_letter_topic(group)
    bus._publishers[dead] = broker.publisher(
        dead,
        title=f"{service}:{dead}:publish",
        description=(
            f"Dead letters of group {group}: the original key and bytes (an S3 ObjectRef when too large), "
            "context in dlt-* headers (see dead-letter.schema.json)"
        ),
    )

    @broker.subscriber(
        retry,
        # Its own consumer group (named like the topic): the source topic's group keeps exactly its old
        # members, so its rebalances (which Tansu makes slow) are not touched by the retry consumer.
        group_id=retry,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        title=f"{service}:{retry}:consume",
        description=f"Records replayed from {dead} (avatarctl replay-dlq --group {group}), for this group only",
    )
    async def consume_retry(message: KafkaMessage) -> None:
        headers = dict(getattr(message.raw_message, "headers", None) or ())
        original = (headers.get(HEADER_REPLAY_ORIGINAL_TOPIC) or b"").decode("utf-8", "replace")
        routes = bus.retry_routes[group]
        spec = routes.get(original)
        if spec is not None:
            await process_record(message, bus=bus, settings=settings, spec=spec)
            return
        unroutable = MalformedEvent(f"retry record names topic {original!r}, not one group {group} consumes")
        try:
            await _dead_letter(message, bus, settings, next(iter(routes.values())), unroutable, attempts=1)
        except Exception:
            await retry_later(message, settings)


@dataclass
class _Retry:
    """The record waits: a dependency is down (or the policy failed); nothing is committed."""

    error: BaseException


async def process_record(
    message: KafkaMessage, *, bus: EventBus, settings: ServiceSettings, spec: StageSpec[InT]
) -> None:
    """Run one record under the delivery policy: it ends acked, nacked for a retry, or dead-lettered."""
    try:
        await _deliver(message, bus, settings, spec)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a fault in the policy itself (e.g. the commit failed): never skip the record
        log.error("delivery_retry", topic=spec.topic.value, error_type=fqcn(exc), error=str(exc)[:500])
        await retry_later(message, settings)


async def _deliver(message: KafkaMessage, bus: EventBus, settings: ServiceSettings, spec: StageSpec[InT]) -> None:
    service, topic = settings.service_name, spec.topic.value
    raw: bytes = message.raw_message.value or b""
    try:
        event = decode_event(raw, spec.model)
    except PoisonEvent as exc:
        if await _dead_letter(message, bus, settings, spec, exc, attempts=1):
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
        result = await _run_with_retries(event, spec, settings, bound)
        if isinstance(result, _Retry):
            bound.warning("waiting_for_dependency", error_type=fqcn(result.error), error=str(result.error)[:300])
            metrics.EVENTS_CONSUMED.labels(service, topic, "retry").inc()
            await retry_later(message, settings)
            return
        outputs, failure, attempts = result
        if failure is None:
            try:
                await publish_then_ack(message, bus, outputs)
            except RecordTooLarge as exc:  # an output the broker will never take: a data fault
                failure = exc
            except Exception as exc:
                if not is_infrastructure_fault(exc):
                    raise
                await retry_later(message, settings)
                return
            else:
                metrics.EVENTS_CONSUMED.labels(service, topic, "processed").inc()
                waited = (datetime.now(UTC) - event.occurred_at).total_seconds()
                metrics.STAGE_LATENCY_SECONDS.labels(service).observe(max(waited, 0.0))
                bound.info("processed", outputs=[o.event_type for o in outputs], attempts=attempts)
                return
        failure_event, note = None, None
        if spec.on_failure is not None:
            try:
                failure_event = spec.on_failure(event, failure, attempts)
            except Exception as exc:  # the failure path failed: the record is still dead-lettered
                note = f"on_failure raised {fqcn(exc)}: {exc}"
                bound.error("on_failure_raised", error_type=fqcn(exc), error=str(exc)[:300])
        if await _dead_letter(
            message, bus, settings, spec, failure, attempts=attempts, failure_event=failure_event, note=note
        ):
            metrics.EVENTS_CONSUMED.labels(service, topic, "failed").inc()
            bound.error("failed", error_type=fqcn(failure), error=str(failure)[:500], attempts=attempts)
    finally:
        metrics.IN_FLIGHT.labels(service).dec()
        metrics.PROCESSING_SECONDS.labels(service).observe(time.perf_counter() - started)


async def _dead_letter(
    message: KafkaMessage,
    bus: EventBus,
    settings: ServiceSettings,
    spec: StageSpec[Any],
    error: BaseException,
    *,
    attempts: int,
    failure_event: Envelope | None = None,
    note: str | None = None,
) -> bool:
    """Dead-letter the record, publish its failure event, commit. False when it must be retried instead."""
    try:
        await bus.dead_letter(message, group=spec.group_id, error=error, attempts=attempts, note=note)
        if failure_event is not None:
            try:
                await bus.publish(failure_event)
            except RecordTooLarge as exc:  # the dead letter already holds the record for replay
                log.error("failure_event_too_large", topic=spec.topic.value, error=str(exc)[:300])
    except Exception as exc:
        if not is_infrastructure_fault(exc):
            raise
        await retry_later(message, settings)
        return False
    await message.ack()
    return True


async def _run_with_retries(
    event: InT, spec: StageSpec[InT], settings: ServiceSettings, bound: Any
) -> tuple[list[Envelope], BaseException | None, int] | _Retry:
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
                if is_infrastructure_fault(exc):
                    return _Retry(exc)  # the dependency is still down: wait, do not give up on the record
                return [], exc, attempt
            metrics.RETRIES.labels(settings.service_name, "handle").inc()
            bound.warning("retrying", attempt=attempt, error_type=type(exc).__name__, error=str(exc)[:300])
            await asyncio.sleep(delays[attempt - 1])


async def publish_then_ack(message: KafkaMessage, bus: EventBus, outputs: list[Envelope]) -> None:
    """Publish every output (broker-acknowledged), then commit the record."""
    for output in outputs:
        await bus.publish(output)
    await message.ack()


async def retry_later(message: KafkaMessage, settings: ServiceSettings) -> None:
    """Not committed: seek back so the next poll returns this record again, after a pause so an
    outage does not turn into a hot loop."""
    try:
        await message.nack()
    finally:
        await asyncio.sleep(settings.retry_backoff_max_s)


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
