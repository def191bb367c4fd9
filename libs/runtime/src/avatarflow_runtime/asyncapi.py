"""What FastStream's AsyncAPI generator leaves out of a service's document: the records' headers.

FastStream documents each channel's payload (read off the handlers' and publishers' types) but not
the Kafka headers, and it names a ``correlation_id`` header no avatarflow record carries.
:func:`add_record_headers` gives every message the headers its channel's records really carry
(:mod:`avatarflow_contracts.headers`) and the correlation id they really share (the payload's
``trace_id``, one per upload).
"""

from __future__ import annotations

from typing import Any

from avatarflow_contracts.headers import DeadLetterHeaders, EventHeaders, RetryHeaders, headers_schema
from avatarflow_contracts.topics import DEAD_LETTER_SUFFIX, RETRY_SUFFIX

HEADER_MODELS = (EventHeaders, RetryHeaders, DeadLetterHeaders)
TRACE_CORRELATION = {
    "description": "trace_id: shared by every event of one upload",
    "location": "$message.payload#/trace_id",
}


def headers_model(address: str) -> type[EventHeaders] | type[DeadLetterHeaders]:
    """The headers of the records on a channel: dead letters, retry records or events."""
    if address.endswith(DEAD_LETTER_SUFFIX):
        return DeadLetterHeaders
    if address.endswith(RETRY_SUFFIX):
        return RetryHeaders
    return EventHeaders


def add_record_headers(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (an AsyncAPI 3.0 document from FastStream) with each message's headers set."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in HEADER_MODELS:
        schemas[model.__name__] = headers_schema(model)
    messages = components.get("messages", {})
    for channel in document.get("channels", {}).values():
        model = headers_model(channel["address"])
        for reference in channel.get("messages", {}).values():
            message = messages[reference["$ref"].rsplit("/", 1)[-1]]
            message["headers"] = {"$ref": f"#/components/schemas/{model.__name__}"}
            if model is DeadLetterHeaders:  # the value is the original bytes: maybe not even JSON
                message.pop("correlationId", None)
            else:
                message["correlationId"] = dict(TRACE_CORRELATION)
    return document
