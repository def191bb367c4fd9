"""The runtime's one error model (issue 17 item 1): whatever a service's route lets escape is
answered as ``{error, detail}``. A :class:`TransientError` is 503 with ``Retry-After`` (the client
retries), any other exception 500; neither echoes the exception's text, and both are counted in the
runtime's HTTP metrics like every other answer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from avatarflow_runtime.errors import TransientError
from avatarflow_runtime.metrics import HTTP_RESPONSES
from avatarflow_runtime.service import http_app
from avatarflow_runtime.settings import ServiceSettings
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

SECRET_TEXT = "s3 at 10.0.0.7 refused key uploads/abc"


@contextlib.asynccontextmanager
async def no_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
def client() -> TestClient:
    router = APIRouter()

    @router.get("/transient")
    async def transient() -> None:
        raise TransientError(SECRET_TEXT)

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET_TEXT)

    settings = ServiceSettings(service_name="errormodel")
    app = http_app(settings, title="t", description="d", lifespan=no_lifespan, routers=[router])
    # Starlette re-raises an unhandled exception after answering; a real server logs it.
    return TestClient(app, raise_server_exceptions=False)


def counted(route: str, status: str) -> float:
    return HTTP_RESPONSES.labels("errormodel", route, "GET", status)._value.get()  # type: ignore[no-any-return]


def test_a_transient_error_is_503_with_retry_after_in_the_one_shape(client: TestClient) -> None:
    before = counted("/transient", "503")
    response = client.get("/transient")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "temporarily_unavailable"
    assert SECRET_TEXT not in response.text
    assert counted("/transient", "503") == before + 1


def test_an_unhandled_exception_is_500_in_the_one_shape(client: TestClient) -> None:
    before = counted("/boom", "500")
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "internal_error"
    assert SECRET_TEXT not in response.text
    assert counted("/boom", "500") == before + 1
