"""Issue 17 item 1: the notifier keeps no second copy of what the runtime does for every service.

Its operations endpoints (``/healthz``, ``/readyz``, ``/metrics``), its error handlers, its HTTP
metrics middleware and its lifespan are the runtime's, on both apps (the service's and the API
alone), and none of its modules configures logging or redaction, registers exception handlers or
middleware of its own. Built without infrastructure: nothing here is started."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import avatarflow_notifier
import pytest
from avatarflow_notifier.adapters.catalogue import Catalogue
from avatarflow_notifier.adapters.store import StatusStore
from avatarflow_notifier.app import create_app, create_service_app
from avatarflow_notifier.settings import NotifierSettings
from avatarflow_runtime.service import HttpMetrics, ServiceRuntime, install_error_handlers
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

PACKAGE = Path(avatarflow_notifier.__file__).parent
OPERATIONS = ("/healthz", "/readyz", "/metrics")


def settings() -> NotifierSettings:
    return NotifierSettings(
        database_url="sqlite+aiosqlite://",
        jwt_secret="a-test-secret-that-is-long-enough-0123456789",
        s3_endpoint_url="http://127.0.0.1:1",
        kafka_bootstrap_servers="127.0.0.1:1",
    )


@pytest.fixture
def apps() -> Iterator[list[FastAPI]]:
    api_settings = settings()
    store = StatusStore.from_url(api_settings.database_url, support_url="x")
    yield [create_service_app(settings()), create_app(api_settings, store, Catalogue.from_settings(api_settings))]


def endpoint_modules(app: FastAPI) -> dict[str, str]:
    """Each API route's path and the module of its endpoint, through included routers."""
    found: dict[str, str] = {}

    def walk(routes: Sequence[BaseRoute]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found[route.path] = route.endpoint.__module__
            elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps included routers whole
                walk(route.original_router.routes)

    walk(app.routes)
    return found


def handler_modules(app: FastAPI) -> dict[object, str]:
    return {exc: handler.__module__ for exc, handler in app.exception_handlers.items()}


def runtime_handlers() -> dict[object, str]:
    """What a bare FastAPI app holds once the runtime installed its error model."""
    bare = FastAPI()
    install_error_handlers(bare)
    return handler_modules(bare)


def test_both_apps_serve_the_runtimes_operations_endpoints_and_error_model(apps: list[FastAPI]) -> None:
    for app in apps:
        modules = endpoint_modules(app)
        for path in OPERATIONS:
            assert modules[path] == "avatarflow_runtime.service", path
        assert any(module.startswith("avatarflow_notifier.web.") for module in modules.values())
        assert handler_modules(app) == runtime_handlers()
        assert HttpMetrics in [m.cls for m in app.user_middleware]
        own = [m.cls for m in app.user_middleware if getattr(m.cls, "__module__", "").startswith("avatarflow_notifier")]
        assert own == []


def test_the_service_app_runs_under_the_runtimes_lifespan(apps: list[FastAPI]) -> None:
    runtime = apps[0].state.runtime
    assert isinstance(runtime, ServiceRuntime)
    # Start and stop work are the runtime's hooks, not a lifespan of the notifier's wrapped around it.
    assert [hook.__qualname__ for hook in runtime.on_startup] == ["Housekeeping.start"]
    assert [hook.__qualname__ for hook in runtime.on_shutdown] == ["Housekeeping.stop"]
    wiring = ast.parse(textwrap.dedent(inspect.getsource(create_service_app))).body[0]
    assert isinstance(wiring, ast.FunctionDef)
    nested = [node for node in ast.walk(wiring) if node is not wiring and isinstance(node, ast.AsyncFunctionDef)]
    assert nested == []
    assert not [kw for kw in ast.walk(wiring) if isinstance(kw, ast.keyword) and kw.arg == "lifespan"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_notifier_module_reimplements_logging_metrics_or_error_handling() -> None:
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        modules = imported_modules(path)
        where = path.relative_to(PACKAGE)
        # Logging and its redaction are configured by the runtime (avatarflow_runtime.logging) only.
        assert not {"logging", "structlog"} & modules, where
        assert "exception_handler" not in source and "add_middleware" not in source, where
        assert "lifespan_context" not in source, where
        if path.name != "metrics.py":  # the notifier's own event counters; HTTP metrics are the runtime's
            assert not any(m.startswith("prometheus_client") for m in modules), where
