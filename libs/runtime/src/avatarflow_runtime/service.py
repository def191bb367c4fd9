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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from .asyncapi import add_record_headers
from .auth import AuthError, Forbidden
from .errors import TransientError
from .http_limits import RequestLimits, body_limit, timed_protocol
from .logging import configure_logging, get_logger, security_event
from .messaging import EventBus, FailureFactory, StageConsumer, report_consumer_lag
from .metrics import HTTP_RESPONSES, HTTP_SECONDS
from .settings import InsecureSecret, ServiceSettings
from .storage import ObjectStore
from .tracing import Tracing, configure_tracing, instrument_fastapi, kafka_telemetry

# Broker address written into generated AsyncAPI documents (stable, so the drift test is too).
DOC_BOOTSTRAP = "kafka:9092"
ReadinessCheck = Callable[[], Awaitable[None]]
log = get_logger("avatarflow.service")


def make_broker(settings: ServiceSettings, tracing: Tracing | None = None) -> KafkaBroker:
    tracing = tracing or Tracing(trace.NoOpTracerProvider(), enabled=False)
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
        # Consumers continue each record's traceparent, producers write theirs (spans only when tracing is on).
        middlewares=[kafka_telemetry(tracing)],
    )


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    broker: KafkaBroker
    bus: EventBus
    store: ObjectStore | None
    tracing: Tracing
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    started: bool = False

    @classmethod
    def create(cls, settings: ServiceSettings, *, with_storage: bool = True) -> ServiceRuntime:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        tracing = configure_tracing(settings.service_name)  # OTEL_* variables; off by default
        broker = make_broker(settings, tracing)
        store = ObjectStore.from_settings(settings) if with_storage else None
        bus = EventBus(broker, settings, store)
        runtime = cls(settings=settings, broker=broker, bus=bus, store=store, tracing=tracing)
        runtime.readiness_checks["broker"] = runtime._check_broker
        if store is not None:
            runtime.readiness_checks["storage"] = store.ping
        return runtime

    def consumer(self, group: str, *, on_failure: FailureFactory | None = None) -> StageConsumer:
        """A consumer group of this service (see :class:`StageConsumer`): ``.subscribe(topic, handler)``."""
        return StageConsumer(self.broker, self.bus, self.settings, str(group), on_failure=on_failure)

    async def _check_broker(self) -> None:
        if not await self.broker.ping(timeout=3.0):
            raise RuntimeError("broker not reachable")

    def asyncapi(self, title: str, description: str) -> dict[str, Any]:
        spec = AsyncAPI(self.broker, title=title, version="1.0.0", description=description, schema_version="3.0.0")
        document: dict[str, Any] = add_record_headers(json.loads(spec.to_specification().to_json()))
        return document

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
            await asyncio.to_thread(self.tracing.shutdown)  # export the last batched spans
            log.info("service_stopped")

    def build_app(
        self,
        *,
        title: str,
        description: str,
        routers: Sequence[APIRouter] = (),
        unauthorized_detail: str | None = None,
    ) -> FastAPI:
        app = http_app(
            self.settings,
            title=title,
            description=description,
            lifespan=self.lifespan,
            routers=[health_router(self, self.settings.service_name), *routers],
            unauthorized_detail=unauthorized_detail,
        )
        app.state.runtime = self
        self.instrument_http(app)
        return app

    def instrument_http(self, app: FastAPI) -> None:
        """Server spans for the app's requests, continuing a caller's ``traceparent`` (tracing on)."""
        instrument_fastapi(app, self.tracing)


def http_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: Sequence[APIRouter],
    unauthorized_detail: str | None = None,
) -> FastAPI:
    """A service's FastAPI app: its routers, the one error shape, request limits and HTTP metrics.

    :meth:`ServiceRuntime.build_app` passes the broker's lifespan and the health router; the
    notifier's API alone (its tests serve it without a broker) passes its own."""
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan, **api_docs_urls(settings))
    for router in routers:
        app.include_router(router)
    install_error_handlers(app, unauthorized_detail=unauthorized_detail)
    install_request_limits(app, settings)
    app.add_middleware(HttpMetrics, service=settings.service_name)
    return app


class ApiDocsUrls(TypedDict):
    docs_url: str | None
    redoc_url: str | None
    openapi_url: str | None


def api_docs_urls(settings: ServiceSettings) -> ApiDocsUrls:
    """FastAPI keyword arguments: /docs, /redoc and /openapi.json, or none of them when
    ``AVATARFLOW_HTTP_API_DOCS=false`` (production need not publish its API surface)."""
    if settings.http_api_docs:
        return {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"}
    return {"docs_url": None, "redoc_url": None, "openapi_url": None}


class HttpMetrics:
    """ASGI middleware: ``avatarflow_http_responses_total`` by route template, method and status, and
    ``avatarflow_http_request_seconds`` by route template."""

    def __init__(self, app: Any, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            HTTP_RESPONSES.labels(self.service, template, scope["method"], str(status)).inc()
            HTTP_SECONDS.labels(self.service, template).observe(time.perf_counter() - started)


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


class ReadinessSource(Protocol):
    """What ``/readyz`` reads: whether the service has started, and its checks by name."""

    @property
    def started(self) -> bool: ...

    @property
    def readiness_checks(self) -> Mapping[str, ReadinessCheck]: ...


def health_router(runtime: ReadinessSource, service: str) -> APIRouter:
    """``/healthz``, ``/readyz`` (which names the service: a caller can tell it reached the right one)
    and ``/metrics``."""
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
            {"status": "ready" if ok else "not_ready", "service": service, "checks": results},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def install_request_limits(app: FastAPI, settings: ServiceSettings) -> None:
    """413 for an oversized body (at once when Content-Length says so), 408 for a stalled one."""
    app.add_middleware(
        RequestLimits,
        max_body_bytes=body_limit(settings),
        idle_timeout_s=settings.http_body_idle_timeout_s,
        total_timeout_s=settings.http_body_timeout_s,
    )


# ``error`` codes for errors raised by the framework (routing, body parsing, our request limits).
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "temporarily_unavailable",
}


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape of every service: ``{"error": machine code, "detail": sentence}``."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def validation_detail(exc: RequestValidationError) -> str:
    """Where and what, never the offending value (FastAPI's own 422 body echoes it as ``input``)."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "The request is invalid."


def request_fields(request: Request) -> dict[str, str]:
    """What a security line says about a request: route template (not the path), method, client."""
    route = getattr(request.scope.get("route"), "path", "unmatched")
    client = request.client.host if request.client else "unknown"
    return {"route": route, "method": request.method, "client": client}


UNAVAILABLE_DETAIL = "A dependency is temporarily unavailable; please try again."
INTERNAL_DETAIL = "Something went wrong on our side; please try again later."


def install_error_handlers(app: FastAPI, *, unauthorized_detail: str | None = None) -> None:
    """401/403 from the auth rules, the framework's own errors (404, 405, 408, 413, 422...), a
    :class:`TransientError` no route caught (503, retry) and any other unhandled exception (500) in the
    common shape. ``unauthorized_detail``: one sentence for every 401 instead of the reason (which is
    logged either way), for a service that tells a caller nothing about why its token failed.

    The 503 and 500 bodies never carry the exception's text (it may name internal hosts or keys); the
    exception's type is logged, and uvicorn still logs the traceback of a 500."""

    @app.exception_handler(AuthError)
    async def _unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        security_event("unauthorized", status=401, reason=str(exc), **request_fields(request))
        detail = unauthorized_detail or str(exc)
        return error_response(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        security_event("forbidden", status=403, reason=str(exc), **request_fields(request))
        return error_response(403, "forbidden", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or ERROR_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_detail(exc))

    @app.exception_handler(TransientError)
    async def _unavailable(request: Request, exc: TransientError) -> JSONResponse:
        log.warning("request_unavailable", error=type(exc).__name__, **request_fields(request))
        return error_response(503, "temporarily_unavailable", UNAVAILABLE_DETAIL, {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's outermost middleware calls this, sends the answer and re-raises the exception.
        log.error("request_failed", error=type(exc).__name__, **request_fields(request))
        return error_response(500, "internal_error", INTERNAL_DETAIL)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the service under uvicorn (SIGTERM/SIGINT -> graceful shutdown).

    A service that verifies bearer tokens refuses to start with a missing, published or short
    ``AVATARFLOW_JWT_SECRET`` (exit status 2, one log line saying why)."""
    import uvicorn

    if settings.verifies_tokens:
        try:
            settings.require_token_secret()
        except InsecureSecret as exc:
            log.error("insecure_jwt_secret", reason=str(exc))
            raise SystemExit(2) from None

    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_budget()[0])),
        server_header=False,
        # uvicorn's own h11 protocol plus a header deadline (slow-header clients get 408).
        http=timed_protocol(settings.http_header_timeout_s),
    )
