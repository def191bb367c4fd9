"""The notifier's own Prometheus metrics (HTTP responses and durations are the runtime's
``avatarflow_http_*``). Labels carry event types only: no ids, no personal data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_APPLIED = Counter(
    "avatarflow_notifier_events_applied_total",
    "Events applied to the status store, by outcome (changed, unchanged, rejected, unsupported)",
    ["event_type", "outcome"],
)
SSE_STREAMS = Gauge("avatarflow_notifier_sse_streams", "Open live status streams")
