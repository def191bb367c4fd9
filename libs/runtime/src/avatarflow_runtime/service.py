"""Service skeleton shared by all five services.

Each service is a FastAPI app (its HTTP API if it has one, plus ``/healthz``, ``/readyz`` and
``/metrics``) whose lifespan starts and stops a FastStream ``KafkaBroker`` carrying the service's
subscribers and publishers. Graceful shutdown: on SIGTERM uvicorn runs the lifespan exit, the broker
stops its subscribers and waits (``graceful_timeout``) for the message in hand to be processed and
committed, then the process exits.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .auth import AuthError, Forbidden
from .logging import configure_logging, get_logger
from .messaging import EventBus, report_consumer_lag
from .settings import ServiceSettings
from .storage import ObjectStore

# Broker address written into generated AsyncAPI documents (stable, so the drift test is too).
DOC_BOOTSTRAP = "kafka:9092"
ReadinessCheck = Callable[[], Awaitable[None]]
log = get_logger("avatarflow.service")


def make_broker(settings: ServiceSettings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        request_timeout_ms=15_000,
        max_request_size=settings.kafka_max_request_bytes,
        # The record in hand (an animator render) gets the pod's termination grace period, less the HTTP drain.
        graceful_timeout=settings.shutdown_budget()[1],
        # Errors inside handlers are ours to report (structlog); FastStream's own lines stay quiet.
        log_level=30,
    )


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    broker: KafkaBroker
    bus: EventBus
    store: ObjectStore | None
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    started: bool = False

    @classmethod
    def create(cls, settings: ServiceSettings, *, with_storage: bool = True) -> ServiceRuntime:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        broker = make_broker(settings)
        store = ObjectStore.from_settings(settings) if with_storage else None
        runtime = cls(settings=settings, broker=broker, bus=EventBus(broker, settings, store), store=store)
        runtime.readiness_checks["broker"] = runtime._check_broker
        if store is not None:
            runtime.readiness_checks["storage"] = store.ping
        return runtime

    async def _check_broker(self) -> None:
        if not await self.broker.ping(timeout=3.0):
            raise RuntimeError("broker not reachable")

    def asyncapi(self, title: str, description: str) -> dict[str, Any]:
        spec = AsyncAPI(self.broker, title=title, version="1.0.0", description=description, schema_version="3.0.0")
        return json.loads(spec.to_specification().to_json())

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        for hook in self.on_startup:
            await hook()
        await _start_broker_with_retry(self.broker)
        self.started = True
        lag_reporter = asyncio.create_task(report_consumer_lag(self.broker, self.settings.service_name))
        log.info("service_started", http_port=self.settings.http_port)
        try:
            yield
        finally:
            self.started = False
            lag_reporter.cancel()
            log.info("service_stopping")
            await self.broker.stop()
            for hook in self.on_shutdown:
                await hook()
            log.info("service_stopped")

    def build_app(self, *, title: str, description: str, routers: list[APIRouter] = ()) -> FastAPI:  # type: ignore[assignment]
        app = FastAPI(title=title, description=description, version="1.0.0", lifespan=self.lifespan)
        app.state.runtime = self
        app.include_router(health_router(self))
        for router in routers:
            app.include_router(router)
        install_auth_error_handlers(app)
        return app


async def _start_broker_with_retry(broker: KafkaBroker, attempts: int = 30) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await broker.start()
            return
        except Exception as exc:  # broker not reachable yet (e.g. compose start order)
            if attempt == attempts:
                raise
            log.warning("broker_start_retry", attempt=attempt, error=type(exc).__name__)
            await asyncio.sleep(min(0.5 * attempt, 5))


def health_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: broker, storage (and database) reachable")
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        ok = runtime.started
        for name, check in runtime.readiness_checks.items():
            try:
                await asyncio.wait_for(check(), timeout=5)
                results[name] = "ok"
            except Exception as exc:
                ok = False
                results[name] = f"unavailable ({type(exc).__name__})"
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": results}, status_code=200 if ok else 503
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def install_auth_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def _unauthorized(_request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(
            {"error": "unauthorized", "detail": str(exc)},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(_request: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"error": "forbidden", "detail": str(exc)}, status_code=403)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the service under uvicorn (SIGTERM/SIGINT -> graceful shutdown)."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_budget()[0])),
        server_header=False,
    )
