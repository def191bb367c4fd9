"""CPU cost of tracing per record: a consumer that publishes one follow-up event per record, through
FastStream's in-memory test broker (no network, so the tracing work is not hidden behind broker
round trips), three ways:

* ``no middleware``: the broker as it was before tracing;
* ``off``: the default (``OTEL_TRACES_EXPORTER`` unset): the telemetry middleware on the API's no-op
  tracer, which only reads and forwards ``traceparent``;
* ``on``: the SDK with a batch span processor and an exporter that drops the spans (the export
  itself runs in the processor's thread, off the record's path).

    .venv/bin/python benchmarks/bench_tracing.py [--records 3000] [--rounds 5]

Prints the median CPU microseconds (this process's CPU time, less sensitive than wall time to other
load on the machine) per record of each way, and their ratios to ``no middleware``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Sequence

from avatarflow_contracts import AvatarFailed, ImageUploaded, ObjectRef, encode_event
from avatarflow_runtime.settings import ServiceSettings
from avatarflow_runtime.tracing import Tracing, configure_tracing, kafka_telemetry
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class DropSpans(SpanExporter):
    def export(self, spans: Sequence[object]) -> SpanExportResult:  # type: ignore[override]
        return SpanExportResult.SUCCESS


def uploaded() -> ImageUploaded:
    ref = ObjectRef(bucket="avatarflow", key="originals/x.jpg", size=10, sha256="0" * 64, content_type="image/jpeg")
    return ImageUploaded(upload_id=uuid.uuid4(), space_id="s", editor_id="e", original=ref)


async def per_record_us(tracing: Tracing | None, records: int) -> float:
    from avatarflow_runtime.messaging import EventBus

    settings = ServiceSettings(service_name="bench")
    broker = KafkaBroker(middlewares=[kafka_telemetry(tracing)] if tracing is not None else [])
    bus = EventBus(broker, settings)
    done = asyncio.Event()
    seen = 0

    @broker.subscriber("image.uploaded")
    async def handle(message: KafkaMessage) -> None:
        event = ImageUploaded.model_validate_json(message.body)
        await bus.publish(
            event.follow_up(
                AvatarFailed,
                stage="validator",
                error_code="bench",
                error="bench",
                editor_message="bench",
                retry_advice="retry_upload",
                attempts=1,
            )
        )

    @broker.subscriber("avatar.failed")
    async def sink(message: KafkaMessage) -> None:
        nonlocal seen
        seen += 1
        if seen == records:
            done.set()

    values = [encode_event(uploaded()) for _ in range(records)]
    async with TestKafkaBroker(broker) as test_broker:
        started = time.process_time()
        for value in values:
            await test_broker.publish(value, topic="image.uploaded")
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.process_time() - started
    return elapsed / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    provider = TracerProvider()  # what configure_tracing builds for otlp, with a dropping exporter
    provider.add_span_processor(BatchSpanProcessor(DropSpans()))
    on = Tracing(provider, enabled=True, exporters=("drop",))
    ways: dict[str, Tracing | None] = {"no middleware": None, "off": configure_tracing("bench", {}), "on": on}
    results: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):  # interleaved, so a load change on the machine hits every way alike
        for name, tracing in ways.items():
            results[name].append(asyncio.run(per_record_us(tracing, args.records)))
    base = statistics.median(results["no middleware"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:14s} {median:8.1f} us/record  x{median / base:.2f}")
    on.shutdown()


if __name__ == "__main__":
    main()
