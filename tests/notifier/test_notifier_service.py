"""The notifier as it runs in production (``python -m avatarflow_notifier``: app.create_service_app) on
the real broker and S3: the runtime's lifespan starts the consumers after the startup hooks
(migrations, catalogue seed), its /readyz checks the broker and the database, its /metrics counts
the notifier's routes, and an event on the broker reaches the editor's status."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from avatarflow_contracts import Envelope, Topic, encode_event
from avatarflow_runtime.auth import mint_token
from notifier_factories import T0, Run

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.harness import FAST_REBALANCE_ENV
from avatarflow.devstack.processes import ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def notifier(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    workdir: Path = tmp_path_factory.mktemp("notifier-service")
    env = {
        **stack.service_env(),
        **FAST_REBALANCE_ENV,
        "AVATARFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'notifier.db'}",
        "AVATARFLOW_NOTIFIER_MIGRATE_ON_START": "true",
        "AVATARFLOW_NOTIFIER_SEED_CATALOGUE": "true",
    }
    proc = ServiceProcess("notifier", env, workdir / "notifier.log").start()
    yield proc
    proc.stop()


async def produce(bootstrap: str, events: list[tuple[Topic, Envelope]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, event in events:
            await producer.send_and_wait(topic.value, encode_event(event), key=event.space_id.encode())
    finally:
        await producer.stop()


def test_the_service_is_ready_with_broker_and_database_and_counts_its_routes(notifier: ServiceProcess) -> None:
    ready = httpx.get(f"{notifier.base_url}/readyz", timeout=10)
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "service": "notifier", "checks": {"broker": "ok", "database": "ok"}},
    )
    assert httpx.get(f"{notifier.base_url}/healthz", timeout=10).json() == {"status": "ok"}
    # The seeded catalogue (a startup hook) is served.
    assert httpx.get(f"{notifier.base_url}/v1/public/assets/catalogue/aurora/poster", timeout=10).status_code == 200
    refused = httpx.get(f"{notifier.base_url}/v1/spaces/s/avatar-status", timeout=10)
    assert refused.json() == {"error": "unauthorized", "detail": "missing or invalid credentials"}
    assert refused.headers["www-authenticate"] == "Bearer"
    metrics = httpx.get(f"{notifier.base_url}/metrics", timeout=10).text
    assert (
        'avatarflow_http_responses_total{method="GET",route="/v1/spaces/{space_id}/avatar-status",'
        'service="notifier",status="401"}'
    ) in metrics


def test_an_event_on_the_broker_reaches_the_editor_status(stack: StackEndpoints, notifier: ServiceProcess) -> None:
    space = f"service-{uuid.uuid4().hex[:10]}"
    run = Run(space, T0)
    asyncio.run(produce(stack.kafka_bootstrap, [(Topic.IMAGE_UPLOADED, run.uploaded()),
                                                (Topic.FACE_REJECTED, run.rejected())]))  # fmt: skip
    secret = stack.service_env()["AVATARFLOW_JWT_SECRET"]
    headers = {"authorization": f"Bearer {mint_token(secret, subject='alice', space_id=space)}"}
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        body = httpx.get(f"{notifier.base_url}/v1/spaces/{space}/avatar-status", headers=headers, timeout=10).json()
        status = (body.get("latest_upload") or {}).get("status")
        if status == "rejected":
            break
        time.sleep(0.5)
    assert status == "rejected", notifier.log_tail()
