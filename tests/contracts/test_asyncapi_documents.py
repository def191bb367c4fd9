"""Each service's AsyncAPI document (generated from its real broker) names what its records really carry.

Issue 16, the template: handlers are typed subscribers, so a consumed channel shows the event's
schema, not an empty payload; every message names its Kafka headers; each consumer group's retry
and dead-letter channels are in the document.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import pytest
from avatarflow_contracts import (
    ConsumerGroup,
    DeadLetter,
    Envelope,
    FaceValidated,
    ImageUploaded,
    ObjectRef,
    dead_letter_topic,
    retry_topic,
)
from avatarflow_contracts.export import SCHEMA_DIR
from avatarflow_contracts.headers import DeadLetterHeaders, EventHeaders, RetryHeaders, headers_schema
from avatarflow_runtime.messaging import EventBus, typed_handler
from avatarflow_runtime.service import make_broker
from avatarflow_runtime.settings import ServiceSettings

# service -> (consumer group or None, {consumed topic: payload schema}, {published topic: payload schema})
EXPECTED: dict[str, tuple[ConsumerGroup | None, dict[str, str], dict[str, str]]] = {
    "ingest": (None, {}, {"image.uploaded": "ImageUploaded"}),
    "validator": (
        ConsumerGroup.VALIDATOR,
        {"image.uploaded": "ImageUploaded"},
        {"face.validated": "FaceValidated", "face.rejected": "FaceRejected", "avatar.failed": "AvatarFailed"},
    ),
    "matting": (
        ConsumerGroup.MATTING,
        {"face.validated": "FaceValidated"},
        {"avatar.matted": "AvatarMatted", "avatar.failed": "AvatarFailed"},
    ),
    "animator": (
        ConsumerGroup.ANIMATOR,
        {"avatar.matted": "AvatarMatted"},
        {"avatar.rendered": "AvatarRendered", "avatar.failed": "AvatarFailed"},
    ),
    "notifier": (
        ConsumerGroup.NOTIFIER,
        {
            "image.uploaded": "ImageUploaded",
            "face.validated": "FaceValidated",
            "face.rejected": "FaceRejected",
            "avatar.matted": "AvatarMatted",
            "avatar.rendered": "AvatarRendered",
            "avatar.failed": "AvatarFailed",
        },
        {},
    ),
}
CLOUDEVENTS = {"ce_id", "ce_type", "ce_source", "ce_time", "ce_specversion"}


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    """The committed documents: test_committed_schemas_match_the_models proves they are what the
    services' brokers generate (``avatarctl export-schemas --check``)."""
    return {
        service: json.loads((SCHEMA_DIR / "asyncapi" / f"{service}.asyncapi.json").read_text()) for service in EXPECTED
    }


def _channel(document: dict[str, Any], service: str, address: str, action: str) -> dict[str, Any]:
    channel = document["channels"].get(f"{service}:{address}:{action}")
    assert channel is not None, f"{service} has no {action} channel for {address}"
    assert channel["address"] == address
    return channel


def _message(document: dict[str, Any], channel: dict[str, Any]) -> dict[str, Any]:
    (reference,) = channel["messages"].values()
    return document["components"]["messages"][reference["$ref"].rsplit("/", 1)[-1]]


def _payload_names(message: dict[str, Any]) -> list[str]:
    payload = message["payload"]
    options = payload.get("oneOf") or payload.get("anyOf") or [payload]
    return [option["$ref"].rsplit("/", 1)[-1] for option in options]


def _header_names(document: dict[str, Any], message: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(every header the message's schema names, the required ones)."""
    schema = document["components"]["schemas"][message["headers"]["$ref"].rsplit("/", 1)[-1]]
    return set(schema["properties"]), set(schema.get("required", ()))


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_each_channel_names_its_payload_schema_and_headers(documents: dict[str, Any], service: str) -> None:
    document = documents[service]
    _, consumed, published = EXPECTED[service]
    for address, schema in consumed.items():
        message = _message(document, _channel(document, service, address, "consume"))
        assert _payload_names(message) == [schema]
        assert schema in document["components"]["schemas"]
        _, required = _header_names(document, message)
        assert CLOUDEVENTS | {"traceparent"} <= required
        assert message["correlationId"]["location"] == "$message.payload#/trace_id"
    for address, schema in published.items():
        message = _message(document, _channel(document, service, address, "publish"))
        assert _payload_names(message) == [schema]
        assert _header_names(document, message)[1] >= CLOUDEVENTS
    # Nothing is left undocumented: no channel without a real payload or without headers.
    for name, message in document["components"]["messages"].items():
        assert "EmptyPayload" not in str(message["payload"]), name
        assert "headers" in message, name


@pytest.mark.parametrize("service", sorted(s for s, (group, _, _) in EXPECTED.items() if group is not None))
def test_each_group_documents_its_retry_and_dead_letter_channels(documents: dict[str, Any], service: str) -> None:
    document = documents[service]
    group, consumed, _ = EXPECTED[service]
    assert group is not None
    retry = _message(document, _channel(document, service, retry_topic(group.value), "consume"))
    # A replayed record is the event as first consumed, so the retry channel carries the group's payloads.
    assert sorted(_payload_names(retry)) == sorted(consumed.values())
    _, required = _header_names(document, retry)
    assert {"replay-original-topic", "replayed-from-dlq"} | CLOUDEVENTS <= required
    dead = _message(document, _channel(document, service, dead_letter_topic(group.value), "publish"))
    assert _payload_names(dead) == ["DeadLetterValue"]
    _, required = _header_names(document, dead)
    assert {"dlt-original-topic", "dlt-original-partition", "dlt-original-offset", "dlt-exception-fqcn"} <= required
    assert {"dlt-exception-message", "dlt-original-consumer-group", "dlt-value-location"} <= required
    # Only this group's own channels: a replay never reaches another group.
    others = {g.value for g in ConsumerGroup} - {group.value}
    assert not any(other in channel for channel in document["channels"] for other in others)


def test_dead_letter_headers_schema_matches_what_a_dead_letter_writes() -> None:
    minimal = DeadLetter(
        service="validator",
        consumer_group="avatarflow-validator",
        topic="image.uploaded",
        partition=0,
        offset=7,
        error_type="avatarflow_contracts.codec.MalformedEvent",
        error="not JSON",
        attempts=1,
    )
    full = minimal.model_copy(update={"timestamp_ms": 1, "headers_dropped": True, "note": "replayed via retry"})
    schema = headers_schema(DeadLetterHeaders)
    # Every header a dead letter can carry is documented, and the required ones are always written.
    assert {name for name, _ in full.to_headers()} == set(schema["properties"])
    assert set(schema["required"]) == {name for name, _ in minimal.to_headers()}


def test_event_headers_schema_matches_what_the_bus_publishes() -> None:
    settings = ServiceSettings(service_name="validator", kafka_bootstrap_servers="kafka:9092")
    bus = EventBus(make_broker(settings), settings)
    sent: list[dict[str, str]] = []

    async def capture(topic: str, value: bytes, key: bytes | None, headers: dict[str, str], attempts: Any) -> None:
        sent.append(headers)

    bus._send = capture  # type: ignore[method-assign]
    event = ImageUploaded(
        upload_id="6f1c3c2e-1f7a-4d0e-9a59-6c9f0f5f3a10",  # type: ignore[arg-type]
        space_id="s-1",
        editor_id="e-1",
        original=ObjectRef(bucket="avatarflow", key="o/x.jpg", size=1, sha256="0" * 64, content_type="image/jpeg"),
    )
    asyncio.run(bus.publish(event))
    (headers,) = sent
    documented = set(headers_schema(EventHeaders)["properties"])
    assert set(headers) <= documented and set(headers) >= CLOUDEVENTS
    assert set(headers_schema(RetryHeaders)["properties"]) - documented == {
        "replay-original-topic",
        "replayed-from-dlq",
    }
    assert EventHeaders.model_validate(headers).ce_id == str(event.event_id)


async def _any_event(event: Envelope) -> list[Envelope]:
    return []


async def _an_upload_handler(event: ImageUploaded) -> list[Envelope]:
    return []


def test_typed_handlers_are_taken_as_declared_or_narrowed_and_wrong_ones_refused() -> None:
    assert typed_handler(_an_upload_handler, ImageUploaded) is _an_upload_handler
    narrowed = typed_handler(_any_event, ImageUploaded)  # the notifier's shape: any event, per topic
    (parameter,) = inspect.signature(narrowed).parameters.values()
    assert parameter.annotation is ImageUploaded
    with pytest.raises(TypeError, match=r"face\.validated carries FaceValidated"):
        typed_handler(_an_upload_handler, FaceValidated)

    async def two_parameters(event: ImageUploaded, extra: int) -> list[Envelope]:
        return []

    with pytest.raises(TypeError, match="exactly one parameter"):
        typed_handler(two_parameters, ImageUploaded)
