"""The stage template: one delivery policy from decode to commit, so no record is lost, blocked or skipped.

A stage's handler is a typed FastStream subscriber (``async def handle(event: ImageUploaded) ->
list[Envelope]``) registered with :meth:`StageConsumer.subscribe`. FastStream decodes the record with
:func:`event_decoder` and calls the handler inside :class:`DeliveryPolicy`, the middleware of the
group's router, under which each record ends in exactly one of three ways, whatever fails on the way:

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
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from avatarflow_contracts import (
    EVENT_MODELS,
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
from avatarflow_contracts.headers import DeadLetterValue
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
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter

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
        "ConnectionClosedError",  # botocore: the connection dropped mid-request (after its own retries)
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

    def declare(self, topic: Topic | str, schema: Any, description: str = "") -> None:
        """Register a publisher so it appears (with its payload schema) in the AsyncAPI document."""
        name = str(topic)
        if name not in self._publishers:
            self._publishers[name] = self.broker.publisher(
                name,
                schema=schema,
                title=f"{self.service}:{name}:publish",
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
        record = single_record(message)
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


Handler = Callable[[Any], Awaitable[list[Envelope]]]
FailureFactory = Callable[[Any, BaseException, int], Envelope | None]


class StageConsumer:
    """One consumer group of a service: its typed subscribers, its retry and dead-letter channels, and
    the delivery policy (:class:`DeliveryPolicy`) that every one of its records goes through.

    ``subscribe(topic, handle)`` registers ``handle`` as the FastStream subscriber of ``topic``. A
    handler is typed with the topic's event model and returns the events it produced::

        async def handle(self, event: ImageUploaded) -> list[Envelope]: ...

    so the service's AsyncAPI document shows the payload schema FastStream reads off that signature.
    The record's bytes are decoded by :func:`event_decoder`, never by FastStream's JSON decoding, so a
    record that is not a valid event is poison for the policy (dead-lettered) instead of an error
    outside it. ``on_failure`` builds the group's terminal failure event (``avatar.failed``); None
    for a group that has none (the notifier).
    """

    def __init__(
        self,
        broker: KafkaBroker,
        bus: EventBus,
        settings: ServiceSettings,
        group: str,
        *,
        on_failure: FailureFactory | None = None,
    ) -> None:
        self.bus, self.settings, self.group, self.on_failure = bus, settings, group, on_failure
        self.service = settings.service_name
        # Event topic -> its model, in the order subscribed.
        self.models: dict[str, type[Envelope]] = {}
        # The policy is a middleware of this group's router, so it wraps exactly this group's handlers.
        self.router = KafkaRouter(middlewares=[partial(DeliveryPolicy, consumer=self)])
        broker.include_router(self.router)
        dead, retry = dead_letter_topic(group), retry_topic(group)
        bus.declare(
            dead,
            DeadLetterValue,
            f"Dead letters of group {group}: the original key and bytes (an S3 ObjectRef when too large), "
            "context in dlt-* headers",
        )
        self.retry = self.router.subscriber(
            retry,
            # Its own consumer group (named like the topic): the source topic's group keeps exactly its old
            # members, so its rebalances (which Tansu makes slow) are not touched by the retry consumer.
            group_id=retry,
            **self._consumer_options(),
            title=f"{self.service}:{retry}:consume",
            description=f"Records replayed from {dead} (avatarctl replay-dlq --group {group}), for this group only",
        )

    def _consumer_options(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "ack_policy": AckPolicy.MANUAL,  # the policy acks (commits) or nacks each record itself
            "auto_offset_reset": "earliest",  # never "latest": Tansu's end offsets are unreliable
            "session_timeout_ms": settings.kafka_session_timeout_ms,
            "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
            "max_poll_interval_ms": settings.kafka_max_poll_interval_ms,
            "no_reply": True,  # a reply_to header must not make FastStream publish the handler's result
            "parser": tolerant_headers,
        }

    def subscribe(self, topic: Topic, handle: Handler, *, members: int = 1) -> None:
        """Consume ``topic`` in this group with ``handle`` (``members`` consumers in this process), and
        route the group's retry records that came from ``topic`` to the same handler."""
        model = EVENT_MODELS[topic]
        typed = typed_handler(handle, model)
        for _ in range(members):
            subscriber = self.router.subscriber(
                topic.value,
                group_id=self.group,
                **self._consumer_options(),
                title=f"{self.service}:{topic.value}:consume",
                description=f"Consumes {model.__name__} events ({topic.value}) in group {self.group}",
            )
            subscriber(typed, decoder=event_decoder(model))
        self.models[topic.value] = model
        self.retry(typed, filter=self._routes_to(topic.value), decoder=self._retry_decoder(model))

    def event_topic(self, message: KafkaMessage) -> str:
        """The event topic of a record: its own, or for a retry record the one it names."""
        record = single_record(message)
        return replayed_topic(message) if record.topic == retry_topic(self.group) else record.topic

    def _routes_to(self, topic: str) -> Callable[[KafkaMessage], bool]:
        """A retry record goes to the handler of the topic it names. One naming a topic this group does
        not consume goes to the first handler, whose decoder refuses it (poison: dead-lettered)."""

        def accepts(message: KafkaMessage) -> bool:
            named = replayed_topic(message)
            return named == topic or (named not in self.models and topic == next(iter(self.models)))

        return accepts

    def _retry_decoder(self, model: type[Envelope]) -> Callable[[KafkaMessage], Awaitable[Envelope]]:
        async def decode(message: KafkaMessage) -> Envelope:
            named = replayed_topic(message)
            if named != model.TOPIC.value:
                raise MalformedEvent(f"retry record names topic {named!r}, not one group {self.group} consumes")
            return decode_event(message.body, model)

        return decode


def event_decoder(model: type[InT]) -> Callable[[KafkaMessage], Awaitable[InT]]:
    """FastStream decoder: the record's bytes as a validated ``model``, or a PoisonEvent (undecodable
    bytes, schema errors, naive timestamps, unknown major versions: see ``decode_event``)."""

    async def decode(message: KafkaMessage) -> InT:
        return decode_event(message.body, model)

    return decode


def replayed_topic(message: KafkaMessage) -> str:
    """The event topic a retry-topic record names (``replay-original-topic``)."""
    return str(message.headers.get(HEADER_REPLAY_ORIGINAL_TOPIC, ""))


async def tolerant_headers(
    record: ConsumerRecord[Any, Any], parse: Callable[[ConsumerRecord[Any, Any]], Awaitable[KafkaMessage]]
) -> KafkaMessage:
    """FastStream's parser, also for records whose header values are not UTF-8 (or are null).

    FastStream decodes every header value as UTF-8; one odd header would fail the parse before the
    policy runs, so the record would be neither committed nor dead-lettered, and the next commit would
    move past it. Such values are shown with replacement characters; the raw record (what a dead letter
    copies, value byte for byte, headers with undecodable bytes escaped) stays as it came.
    """
    headers = record.headers or ()
    if all(isinstance(value, bytes) and _is_utf8(value) for _, value in headers):
        return await parse(record)
    readable = [(name, (value or b"").decode("utf-8", "replace").encode()) for name, value in headers]
    message = await parse(replace(record, headers=readable))
    message.raw_message = record
    return message


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def typed_handler(handle: Handler, model: type[Envelope]) -> Handler:
    """``handle`` as FastStream should see it: one event parameter, typed with the topic's ``model``.

    A handler declared for exactly that model is used as it is. One declared for a base class (the
    notifier applies any Envelope) is narrowed to ``model`` per topic, so that each channel of the
    AsyncAPI document shows its own payload. Anything else is a wiring mistake, refused at start.
    """
    parameters = list(inspect.signature(handle).parameters.values())
    if len(parameters) != 1:
        raise TypeError(f"{handle!r} must take exactly one parameter, the event")
    declared = get_type_hints(handle).get(parameters[0].name)
    if not (isinstance(declared, type) and issubclass(model, declared)):
        raise TypeError(f"{handle!r} takes {declared!r}, but {model.TOPIC.value} carries {model.__name__}")
    if declared is model:
        return handle

    async def narrowed(event: Envelope) -> list[Envelope]:
        return await handle(event)

    # inspect reads __signature__ from any function (typeshed does not declare the attribute).
    narrowed.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [parameters[0].replace(annotation=model)], return_annotation=list[Envelope]
    )
    narrowed.__name__ = narrowed.__qualname__ = getattr(handle, "__name__", "handle")
    return narrowed


def single_record(message: KafkaMessage) -> ConsumerRecord[Any, Any]:
    """The record under a message: stages subscribe one record at a time (never batches)."""
    record = message.raw_message
    assert not isinstance(record, tuple), "stage subscribers are not batch subscribers"
    return record


class DeliveryPolicy(BaseMiddleware):
    """The FastStream middleware of a :class:`StageConsumer`'s router: runs each record under the policy.

    It decodes the record (the handler call's decoder), calls the handler (``call_next``) with bounded
    retries, publishes the outputs and commits, or dead-letters, or nacks for a retry. Nothing raises
    out of it, so FastStream never sees a record the policy has not settled.
    """

    def __init__(self, msg: Any, /, *, context: Any, consumer: StageConsumer) -> None:
        super().__init__(msg, context=context)
        self.consumer = consumer

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> None:
        message: KafkaMessage = msg
        try:
            await _deliver(message, lambda: call_next(message), self.consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a fault in the policy itself (e.g. the commit failed): never skip the record
            topic = self.consumer.event_topic(message)
            log.error("delivery_retry", topic=topic, error_type=fqcn(exc), error=str(exc)[:500])
            await retry_later(message, self.consumer.settings)


@dataclass
class _Retry:
    """The record waits: a dependency is down (or the policy failed); nothing is committed."""

    error: BaseException


async def _deliver(message: KafkaMessage, handle: Callable[[], Awaitable[Any]], consumer: StageConsumer) -> None:
    service, topic, settings = consumer.service, consumer.event_topic(message), consumer.settings
    try:
        event: Envelope = await message.decode()  # type: ignore[assignment]  # our decoder returns an Envelope or raises
    except Exception as exc:  # decoding is pure: whatever it raises is about the bytes, never a dependency
        if await _dead_letter(message, consumer, exc, attempts=1):
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
        result = await _run_with_retries(handle, settings, bound)
        if isinstance(result, _Retry):
            bound.warning("waiting_for_dependency", error_type=fqcn(result.error), error=str(result.error)[:300])
            metrics.EVENTS_CONSUMED.labels(service, topic, "retry").inc()
            await retry_later(message, settings)
            return
        outputs, failure, attempts = result
        if failure is None:
            try:
                await publish_then_ack(message, consumer.bus, outputs)
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
        if consumer.on_failure is not None:
            try:
                failure_event = consumer.on_failure(event, failure, attempts)
            except Exception as exc:  # the failure path failed: the record is still dead-lettered
                note = f"on_failure raised {fqcn(exc)}: {exc}"
                bound.error("on_failure_raised", error_type=fqcn(exc), error=str(exc)[:300])
        if await _dead_letter(message, consumer, failure, attempts=attempts, failure_event=failure_event, note=note):
            metrics.EVENTS_CONSUMED.labels(service, topic, "failed").inc()
            bound.error("failed", error_type=fqcn(failure), error=str(failure)[:500], attempts=attempts)
    finally:
        metrics.IN_FLIGHT.labels(service).dec()
        metrics.PROCESSING_SECONDS.labels(service).observe(time.perf_counter() - started)


async def _dead_letter(
    message: KafkaMessage,
    consumer: StageConsumer,
    error: BaseException,
    *,
    attempts: int,
    failure_event: Envelope | None = None,
    note: str | None = None,
) -> bool:
    """Dead-letter the record, publish its failure event, commit. False when it must be retried instead."""
    try:
        await consumer.bus.dead_letter(message, group=consumer.group, error=error, attempts=attempts, note=note)
        if failure_event is not None:
            try:
                await consumer.bus.publish(failure_event)
            except RecordTooLarge as exc:  # the dead letter already holds the record for replay
                log.error("failure_event_too_large", topic=consumer.event_topic(message), error=str(exc)[:300])
    except Exception as exc:
        if not is_infrastructure_fault(exc):
            raise
        await retry_later(message, consumer.settings)
        return False
    await message.ack()
    return True


async def _run_with_retries(
    handle: Callable[[], Awaitable[Any]], settings: ServiceSettings, bound: Any
) -> tuple[list[Envelope], BaseException | None, int] | _Retry:
    delays = backoff_delays(settings)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await handle(), None, attempt
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
