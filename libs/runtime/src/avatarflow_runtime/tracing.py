"""OpenTelemetry tracing for every service: one upload is one trace, ingest -> validator -> matting ->
animator -> notifier.

Configured once per service at bootstrap (:meth:`ServiceRuntime.create`) from the standard ``OTEL_*``
variables, and **off by default**:

* ``OTEL_TRACES_EXPORTER`` unset or ``none`` (the default here, unlike the SDK's own default), or
  ``OTEL_SDK_DISABLED=true``: no SDK, no spans, no exporter. The W3C ``traceparent`` header is still
  read by every consumer and forwarded by every producer (the API's no-op tracer passes the incoming
  context through unchanged), so turning tracing on in one service later needs no change elsewhere.
* ``OTEL_TRACES_EXPORTER=otlp``: spans are batched (``OTEL_BSP_*``) and sent over OTLP/HTTP with the JSON
  encoding to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces`` appended) or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, with ``OTEL_EXPORTER_OTLP_HEADERS`` / ``_TIMEOUT`` /
  ``_COMPRESSION``. (The protobuf encoding needs protobuf >= 5, which the mediapipe pin rules out; an
  OTLP/HTTP receiver such as the Collector's takes both encodings on the same port.) ``console``
  prints spans to stdout. ``OTEL_SERVICE_NAME`` (default: the service's name),
  ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_TRACES_SAMPLER`` / ``_ARG`` are honoured by the SDK itself.

The spans come from FastStream's ``KafkaTelemetryMiddleware`` (a ``process`` span per consumed record,
``create``/``publish`` spans per produced one, the context in the record's ``traceparent`` header) and
from the FastAPI instrumentation (a server span per request, continuing a caller's ``traceparent``).
Ingest uses the request's trace id as the upload's ``trace_id``, so the id in the events, in the log
lines (:func:`add_trace_context`) and in the tracing backend is one and the same.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("avatarflow.tracing")

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
# Health probes and scrapes would be most of the spans and tell nothing about an upload.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"
_OFF = {"", "none"}
_OTLP = {"otlp", "otlp_json_http"}
_W3C = TraceContextTextMapPropagator()


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


@dataclass
class Tracing:
    """One service's tracing: the provider its broker middleware and HTTP instrumentation use."""

    tracer_provider: trace.TracerProvider
    enabled: bool
    exporters: tuple[str, ...] = ()

    def shutdown(self) -> None:
        """Flush the spans still batched (a stopping pod's last records) and stop exporting."""
        shutdown = getattr(self.tracer_provider, "shutdown", None)
        if self.enabled and shutdown is not None:
            shutdown()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> Tracing:
    """The service's tracing as the ``OTEL_*`` variables say (off unless an exporter is named)."""
    env = os.environ if environ is None else environ
    names = tuple(n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip())
    if _truthy(env.get("OTEL_SDK_DISABLED")) or all(n in _OFF for n in names):
        return Tracing(trace.NoOpTracerProvider(), enabled=False)
    unknown = [n for n in names if n not in _OFF | _OTLP | {"console"}]
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").lower()
    if unknown or (protocol == "grpc" and any(n in _OTLP for n in names)):
        # A misspelt exporter must not take the service down; it must be visible, though.
        log.error(
            "tracing_not_configured: OTEL_TRACES_EXPORTER=%s OTEL_EXPORTER_OTLP_PROTOCOL=%s; supported: otlp "
            "(OTLP/HTTP), console, none",
            ",".join(names),
            protocol or "unset",
        )
        return Tracing(trace.NoOpTracerProvider(), enabled=False)

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (which wins over ours).
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER (parent-based, always on)
    for name in dict.fromkeys(names):
        if name in _OTLP:
            from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)  # for any other library's tracer in this process
    enabled = tuple(n for n in dict.fromkeys(names) if n not in _OFF)
    log.info("tracing_enabled: service=%s exporters=%s", resource.attributes.get(SERVICE_NAME), ",".join(enabled))
    return Tracing(provider, enabled=True, exporters=enabled)


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex), or None outside any valid trace context."""
    span_context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else None


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None outside any valid trace context."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)  # the very header the broker's telemetry middleware writes
    return carrier.get("traceparent")


@contextmanager
def continue_trace(trace_id: str) -> Iterator[None]:
    """Within this block, a code path with no trace context of its own (tracing off at ingest, a CLI
    replaying a record) publishes into the upload's trace (the event's ``trace_id``) instead of none.
    A valid current context (a request's or a consumed record's span) is left as it is."""
    if trace.get_current_span().get_span_context().is_valid:
        yield
        return
    parent = SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(secrets.token_hex(8), 16),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        yield
    finally:
        otel_context.detach(token)


def add_trace_context(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current trace and span ids on every line logged inside a trace."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = trace.format_trace_id(span_context.trace_id)
        event_dict["span_id"] = trace.format_span_id(span_context.span_id)
    return event_dict


def kafka_telemetry(tracing: Tracing) -> Any:
    """FastStream's Kafka middleware on this service's provider: consumers continue the record's
    ``traceparent``, producers write theirs."""
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
    from opentelemetry.metrics import NoOpMeterProvider

    # Spans only: the services' metrics are Prometheus ones (/metrics), so the middleware's OpenTelemetry
    # instruments would be work for nothing.
    return KafkaTelemetryMiddleware(
        tracer_provider=tracing.tracer_provider, meter_provider=NoOpMeterProvider(), include_messages_counters=False
    )


# Query parameters whose values are credentials: the notifier's SSE stream takes ``?access_token=`` (a
# browser EventSource cannot send headers), presigned S3 URLs carry signatures.
_SECRET_QUERY = re.compile(
    r"(?i)(^|[?&])(access_token|token|jwt|password|secret|sig|signature|x-amz-signature|x-amz-credential"
    r"|x-amz-security-token)=[^&#\s]*"
)
# Where the HTTP instrumentation writes the request's URL or query (old and new semantic conventions).
_URL_ATTRIBUTES = ("http.target", "http.url", "url.query", "url.full")


def redact_query(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1\2=[redacted]", text)


def _redact_request_attributes(span: Any, _scope: dict[str, Any]) -> None:
    """server_request_hook: a token in the query string must never reach a span (it would reach the
    tracing backend, readable by whoever reads traces)."""
    if span is None or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and (redacted := redact_query(value)) != value:
            span.set_attribute(key, redacted)


def instrument_fastapi(app: Any, tracing: Tracing) -> None:
    """A server span per request (continuing the caller's ``traceparent``), health probes excluded,
    credentials in the query string redacted. Request headers are not recorded (Authorization)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.tracer_provider,
        excluded_urls=EXCLUDED_URLS,
        server_request_hook=_redact_request_attributes,
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
    )
