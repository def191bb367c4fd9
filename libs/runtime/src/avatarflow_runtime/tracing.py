"""W3C trace-context propagation in Kafka headers (``traceparent``)."""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def make_traceparent(trace_id: str, span_id: str | None = None) -> str:
    return f"00-{trace_id}-{span_id or secrets.token_hex(8)}-01"


def parse_traceparent(value: str | bytes | None) -> str | None:
    """Return the trace id from a traceparent header, or None if absent or invalid."""
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = _TRACEPARENT.match(text.strip())
    if not match or match.group(1) == "0" * 32:
        return None
    return match.group(1)
