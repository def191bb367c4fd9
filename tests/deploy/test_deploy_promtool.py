"""Metrics exposed with prometheus-client pass `promtool check metrics` (the tool the lead reuses on the
services' real /metrics output through tests/deploy/promtool.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from promtool import check_metrics, promtool_or_fail


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_or_fail()


def sample_pipeline_metrics() -> str:
    """The metric families docs/operations.md tells operators to watch, as the services define them."""
    registry = CollectorRegistry()
    processed = Counter(
        "avatarflow_events_processed",
        "Events handled by a pipeline stage, by outcome.",
        ["stage", "outcome"],
        registry=registry,
    )
    rejections = Counter(
        "avatarflow_rejections",
        "Uploads rejected by the validator, by reason.",
        ["reason"],
        registry=registry,
    )
    latency = Histogram(
        "avatarflow_stage_duration_seconds",
        "Time a stage spends on one event.",
        ["stage"],
        buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        registry=registry,
    )
    in_flight = Gauge("avatarflow_renders_in_flight", "Avatar renders running in this pod.", registry=registry)
    processed.labels(stage="validator", outcome="validated").inc(3)
    processed.labels(stage="validator", outcome="rejected").inc()
    rejections.labels(reason="no_face").inc()
    latency.labels(stage="matting").observe(1.7)
    in_flight.set(1)
    return generate_latest(registry).decode()


def test_prometheus_client_output_passes_promtool(promtool: Path) -> None:
    text = sample_pipeline_metrics()
    assert "avatarflow_stage_duration_seconds_bucket" in text
    assert check_metrics(text, promtool) == []


def test_promtool_reports_a_badly_named_counter(promtool: Path) -> None:
    # Hand-written exposition with a counter lacking the _total suffix: the helper must surface it.
    bad = "# HELP renders Renders.\n# TYPE renders counter\nrenders 3\n"
    findings = check_metrics(bad, promtool)
    assert any("_total" in finding for finding in findings), findings
