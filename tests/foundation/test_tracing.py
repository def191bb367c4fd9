"""Tracing configuration from the standard OTEL_* variables, and the trace context in log lines."""

from __future__ import annotations

import io
import json
import logging
import sys

import httpx
import pytest
from avatarflow_runtime.logging import configure_logging, get_logger
from avatarflow_runtime.tracing import (
    Tracing,
    configure_tracing,
    continue_trace,
    current_trace_id,
    current_traceparent,
    instrument_fastapi,
    parse_traceparent,
)
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},  # an endpoint alone turns nothing on
    ],
)
def test_tracing_is_off_unless_an_exporter_is_named(env: dict[str, str]) -> None:
    tracing = configure_tracing("validator", env)
    assert not tracing.enabled
    assert isinstance(tracing.tracer_provider, trace.NoOpTracerProvider)


@pytest.mark.parametrize(
    "env", [{"OTEL_TRACES_EXPORTER": "zipkin"}, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}]
)
def test_an_unsupported_exporter_leaves_tracing_off_and_says_so(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="avatarflow.tracing"):
        assert not configure_tracing("matting", env).enabled
    assert "tracing_not_configured" in caplog.text


def test_otlp_exporter_names_the_service_from_otel_service_name_or_its_own() -> None:
    own = configure_tracing("animator", {"OTEL_TRACES_EXPORTER": "otlp"})
    named = configure_tracing("animator", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "animator-gpu"})
    try:
        assert own.enabled and own.exporters == ("otlp",)
        assert isinstance(own.tracer_provider, TracerProvider)
        assert own.tracer_provider.resource.attributes[SERVICE_NAME] == "animator"
        assert named.tracer_provider.resource.attributes[SERVICE_NAME] == "animator-gpu"
    finally:
        own.shutdown()
        named.shutdown()


def test_a_publish_outside_any_trace_continues_the_uploads_trace() -> None:
    assert current_trace_id() is None
    with continue_trace(TRACE_ID):
        assert current_trace_id() == TRACE_ID
        assert parse_traceparent(current_traceparent()) == TRACE_ID
    assert current_trace_id() is None


def test_a_publish_inside_a_span_keeps_that_spans_context() -> None:
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("request") as span:
        own = trace.format_trace_id(span.get_span_context().trace_id)
        with continue_trace(TRACE_ID):
            assert current_trace_id() == own != TRACE_ID
            traceparent = current_traceparent() or ""
            assert traceparent.startswith(f"00-{own}-{trace.format_span_id(span.get_span_context().span_id)}-")


def test_log_lines_carry_the_current_trace_and_span(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("validator")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    get_logger("t").info("outside")
    with provider.get_tracer("t").start_as_current_span("image.uploaded process") as span:
        get_logger("t").info("inside", trace_id="0" * 31 + "1")  # the current trace wins over a bound one
        logging.getLogger("aiokafka").warning("library line")  # stdlib records too
    outside, inside, library = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert "trace_id" not in outside and "span_id" not in outside
    for line in (inside, library):
        assert line["trace_id"] == trace.format_trace_id(context.trace_id)
        assert line["span_id"] == trace.format_span_id(context.span_id)


async def test_request_spans_continue_the_callers_trace_and_never_hold_a_token_or_a_probe() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI()

    @app.get("/v1/spaces/{space_id}/events")
    async def events(space_id: str) -> dict[str, str]:
        return {"trace_id": current_trace_id() or ""}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    instrument_fastapi(app, Tracing(provider, enabled=True))
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlLTEifQ.c2lnbmF0dXJlLXZhbHVl"
    caller = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        answer = await client.get(
            f"/v1/spaces/s-1/events?access_token={token}&cursor=7", headers={"traceparent": caller}
        )
        await client.get("/healthz")
    assert answer.json() == {"trace_id": TRACE_ID}  # the handler runs in the caller's trace
    (span,) = exporter.get_finished_spans()  # the probe made none
    assert span.name == "GET /v1/spaces/{space_id}/events"
    assert span.parent is not None and trace.format_span_id(span.parent.span_id) == "00f067aa0ba902b7"
    values = " ".join(str(v) for v in (span.attributes or {}).values())
    assert token not in values and "access_token=[redacted]" in values and "cursor=7" in values
