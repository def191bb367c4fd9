"""FastAPI dependencies for the bearer-token rules in :mod:`avatarflow_runtime.auth`."""

from __future__ import annotations

from fastapi import Request

from .auth import Principal, bearer_token, require_editor, verify_token
from .settings import ServiceSettings


def principal_from_request(request: Request, settings: ServiceSettings) -> Principal:
    return principal_from_token(bearer_token(request.headers.get("authorization")), settings)


def principal_from_token(token: str, settings: ServiceSettings) -> Principal:
    return verify_token(
        token,
        settings.jwt_secret.get_secret_value(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def editor_of(request: Request, settings: ServiceSettings, space_id: str) -> Principal:
    principal = principal_from_request(request, settings)
    require_editor(principal, space_id)
    return principal
