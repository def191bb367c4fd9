"""Notifier wiring: settings -> store, catalogue, runtime -> one FastAPI app (the HTTP API and the
event consumers in one process).

Authorisation, in short (details in ``web/``): editor endpoints need an editor token of their space,
public endpoints, pages and the operations endpoints ignore credentials.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources

from avatarflow_runtime.service import ReadinessCheck, health_router, http_app
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .adapters.broadcast import Broadcaster
from .adapters.catalogue import Catalogue
from .adapters.store import StatusStore
from .consumer import DESCRIPTION, TITLE, build_runtime
from .housekeeping import Housekeeping, migrate_if_configured
from .settings import NotifierSettings
from .web import ROUTERS
from .web.deps import UNAUTHORIZED_DETAIL, NotifierContext


def create_service_app(settings: NotifierSettings | None = None) -> FastAPI:
    """The notifier's HTTP API with its Kafka consumers, started and stopped by the runtime's lifespan."""
    settings = settings or NotifierSettings()
    store = StatusStore.from_url(settings.database_url, support_url=settings.notifier_support_url)
    context = NotifierContext.create(settings, store, Catalogue.from_settings(settings), None)
    runtime = build_runtime(settings, store)
    # /readyz: the broker connection (the consumers) and the database.
    runtime.readiness_checks["database"] = store.ping
    housekeeping = Housekeeping(settings, store, context.catalogue)
    runtime.on_startup.append(housekeeping.start)
    runtime.on_shutdown.append(housekeeping.stop)
    app = runtime.build_app(
        title=TITLE, description=DESCRIPTION, routers=ROUTERS, unauthorized_detail=UNAUTHORIZED_DETAIL
    )
    return serve_web(app, context)


def create_app(
    settings: NotifierSettings,
    store: StatusStore,
    catalogue: Catalogue,
    *,
    broadcaster: Broadcaster | None = None,
    readiness: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
) -> FastAPI:
    """The notifier's HTTP API alone, without a broker (tests serve it; events are applied directly).
    ``store`` and ``catalogue`` are owned by the caller (closed by it). ``readiness``: more checks for
    ``/readyz`` besides the database, by name."""
    context = NotifierContext.create(settings, store, catalogue, broadcaster)
    checks = ApiReadiness({"database": store.ping, **(readiness or {})})

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate_if_configured(settings)
        yield

    routers = [health_router(checks, settings.service_name), *ROUTERS]
    app = http_app(
        settings,
        title=TITLE,
        description=DESCRIPTION,
        lifespan=lifespan,
        routers=routers,
        unauthorized_detail=UNAUTHORIZED_DETAIL,
    )
    return serve_web(app, context)


def serve_web(app: FastAPI, context: NotifierContext) -> FastAPI:
    """What both apps add to the runtime's: the routers' objects and the pages' static files."""
    context.install(app)
    static = StaticFiles(directory=str(resources.files("avatarflow_notifier") / "static"))
    app.mount("/static", static, name="static")
    return app


@dataclass
class ApiReadiness:
    """``/readyz`` of the API alone: ready once served, while every check passes."""

    readiness_checks: dict[str, ReadinessCheck]
    started: bool = True
