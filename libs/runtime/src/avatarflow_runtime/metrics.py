"""Prometheus metrics shared by every stage. Labels never carry personal data (no ids, no names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "avatarflow_events_consumed_total",
    "Events consumed, by outcome (processed, duplicate, dead_lettered, failed)",
    ["service", "topic", "outcome"],
)
EVENTS_PUBLISHED = Counter("avatarflow_events_published_total", "Events published", ["service", "topic"])
DEAD_LETTERS = Counter("avatarflow_dead_letters_total", "Records sent to the dead-letter topic", ["service", "reason"])
RETRIES = Counter("avatarflow_retries_total", "Retried attempts after a transient fault", ["service", "operation"])
PROCESSING_SECONDS = Histogram(
    "avatarflow_processing_seconds",
    "Wall time to process one event (all attempts)",
    ["service"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
IN_FLIGHT = Gauge("avatarflow_in_flight", "Events being processed now", ["service"])
STAGE_LATENCY_SECONDS = Histogram(
    "avatarflow_stage_latency_seconds",
    "Time from the input event's occurred_at to this stage's output being published (queueing + processing)",
    ["service"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 300),
)
CONSUMER_LAG = Gauge(
    "avatarflow_consumer_lag",
    "Records not yet consumed by this process's consumers (highwater - position, assigned partitions)",
    ["service", "group", "topic"],
)
HTTP_RESPONSES = Counter(
    "avatarflow_http_responses_total",
    "HTTP responses by route template (never the concrete path: it holds space and upload ids), method "
    "and status code; 401/403/429 counts show credential probing and throttling",
    ["service", "route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "avatarflow_http_request_seconds",
    "HTTP request duration by route template (an SSE stream counts until it closes)",
    ["service", "route"],
)
