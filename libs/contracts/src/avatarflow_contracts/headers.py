"""The Kafka headers of each kind of record, as schemas (they appear in every AsyncAPI document).

The value of an event record is the event's JSON (its model); its headers say the same facts in
the CloudEvents Kafka binding's names, plus W3C trace context. A retry record is a replayed event
with two more headers; a dead-letter record keeps the original value and headers and adds the
``dlt-*`` context of :class:`~avatarflow_contracts.events.DeadLetter`. The models are documentation
of what producers write: consumers read the value, never rely on a header to decode it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .events import (
    DLT_ATTEMPTS,
    DLT_CONSUMER_GROUP,
    DLT_EXCEPTION_FQCN,
    DLT_EXCEPTION_MESSAGE,
    DLT_FAILED_AT,
    DLT_HEADERS_DROPPED,
    DLT_ID,
    DLT_NOTE,
    DLT_ORIGINAL_OFFSET,
    DLT_ORIGINAL_PARTITION,
    DLT_ORIGINAL_TIMESTAMP,
    DLT_ORIGINAL_TOPIC,
    DLT_SCHEMA_VERSION,
    DLT_SERVICE,
    DLT_VALUE_LOCATION,
)
from .topics import (
    HEADER_CE_ID,
    HEADER_CE_SOURCE,
    HEADER_CE_SPECVERSION,
    HEADER_CE_TIME,
    HEADER_CE_TYPE,
    HEADER_EVENT_TYPE,
    HEADER_REPLAY_ORIGINAL_TOPIC,
    HEADER_REPLAYED_FROM,
    HEADER_SCHEMA_VERSION,
    HEADER_TRACEPARENT,
)


class _Headers(BaseModel):
    # Header values are strings on the wire; the field names are the header names (aliases).
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class EventHeaders(_Headers):
    """Headers of every event record (CloudEvents 1.0 Kafka binding, binary content mode)."""

    traceparent: str = Field(alias=HEADER_TRACEPARENT, description="W3C trace context of the publishing span")
    event_type: str = Field(alias=HEADER_EVENT_TYPE, description="the payload's event_type")
    schema_version: str = Field(alias=HEADER_SCHEMA_VERSION, description="the payload's schema_version (MAJOR.MINOR)")
    content_type: Literal["application/json"] = Field(alias="content-type")
    ce_specversion: Literal["1.0"] = Field(alias=HEADER_CE_SPECVERSION)
    ce_id: str = Field(alias=HEADER_CE_ID, description="the payload's event_id")
    ce_type: str = Field(alias=HEADER_CE_TYPE, description="the payload's event_type")
    ce_source: str = Field(alias=HEADER_CE_SOURCE, pattern=r"^/avatarflow/", description="/avatarflow/<service>")
    ce_time: str = Field(alias=HEADER_CE_TIME, description="the payload's occurred_at (ISO 8601, with offset)")


class RetryHeaders(EventHeaders):
    """Headers of a record on ``<group>.retry``: the dead-lettered event's own, and where it came from."""

    replay_original_topic: str = Field(
        alias=HEADER_REPLAY_ORIGINAL_TOPIC, description="the event topic the record was consumed from"
    )
    replayed_from_dlq: str = Field(alias=HEADER_REPLAYED_FROM, description="the dead letter's dlt-id")


class DeadLetterHeaders(_Headers):
    """The ``dlt-*`` headers of a record on ``<group>.dlq`` (besides the original record's own headers)."""

    dead_letter_id: str = Field(alias=DLT_ID)
    schema_version: str = Field(alias=DLT_SCHEMA_VERSION)
    failed_at: str = Field(alias=DLT_FAILED_AT)
    service: str = Field(alias=DLT_SERVICE)
    consumer_group: str = Field(alias=DLT_CONSUMER_GROUP)
    topic: str = Field(alias=DLT_ORIGINAL_TOPIC)
    partition: str = Field(alias=DLT_ORIGINAL_PARTITION)
    offset: str = Field(alias=DLT_ORIGINAL_OFFSET)
    timestamp_ms: str | None = Field(default=None, alias=DLT_ORIGINAL_TIMESTAMP)
    error_type: str = Field(alias=DLT_EXCEPTION_FQCN, description="exception class, fully qualified")
    error: str = Field(alias=DLT_EXCEPTION_MESSAGE, description="exception message (truncated)")
    attempts: str = Field(alias=DLT_ATTEMPTS)
    value_location: Literal["inline", "s3"] = Field(
        alias=DLT_VALUE_LOCATION, description="inline: the value is the original bytes; s3: an ObjectRef of a copy"
    )
    headers_dropped: Literal["true"] | None = Field(default=None, alias=DLT_HEADERS_DROPPED)
    note: str | None = Field(default=None, alias=DLT_NOTE)


def headers_schema(model: type[_Headers]) -> dict[str, Any]:
    """The JSON Schema of a headers model, keyed by header name (an AsyncAPI message's ``headers``)."""
    return model.model_json_schema(by_alias=True)


# The value of a dead-letter record (the payload its AsyncAPI channel documents).
DeadLetterValue = Annotated[
    bytes,
    Field(
        title="DeadLetterValue",
        description=(
            "The original record's value, byte for byte (it may not be a valid event at all), or, with "
            "dlt-value-location: s3, the JSON ObjectRef of its copy in S3"
        ),
    ),
]
