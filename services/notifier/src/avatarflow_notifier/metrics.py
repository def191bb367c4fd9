"""Prometheus metrics. Labels carry route templates and event types only: no ids, no personal data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPLIED = Counter(
    "avatarflow_notifier_events_applied_total",
    "Events applied to the status store, by outcome (changed, unchanged, rejected, unsupported)",
    ["event_type", "outcome"],
)
HTTP_REQUESTS = Counter(
    "avatarflow_notifier_http_requests_total",
    "HTTP requests by route template, method and status code",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "avatarflow_notifier_http_request_seconds",
    "HTTP request latency by route template",
    ["route"],
)
SSE_STREAMS = Gauge("avatarflow_notifier_sse_streams", "Open live status streams")
