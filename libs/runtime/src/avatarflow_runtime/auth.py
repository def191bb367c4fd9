"""Bearer-token authorisation shared by every HTTP service.

Tokens are HS256 JWTs with ``sub`` (the user), ``space_id`` and ``role`` (``editor`` or ``viewer``)
claims, plus ``exp``, ``iat``, ``iss`` and ``aud``. Only HS256 is accepted: ``alg: none`` and any
other algorithm are refused before the signature is even looked at.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt

ALGORITHM = "HS256"
Role = Literal["editor", "viewer"]


class AuthError(Exception):
    """The request's credentials are missing or invalid (HTTP 401)."""


class Forbidden(Exception):
    """Valid credentials that do not grant this action (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    space_id: str
    role: Role
    # The token's ``exp`` (Unix seconds): long-lived connections (SSE) end when it passes, so a
    # stream never outlives the credential that opened it.
    expires_at: float = float("inf")


def mint_token(
    secret: str,
    *,
    subject: str,
    space_id: str,
    role: Role = "editor",
    ttl_s: int = 3600,
    issuer: str = "avatarflow",
    audience: str = "avatarflow",
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": subject,
        "space_id": space_id,
        "role": role,
        "iat": issued,
        "exp": issued + ttl_s,
        "iss": issuer,
        "aud": audience,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str, *, issuer: str = "avatarflow", audience: str = "avatarflow") -> Principal:
    """Return the token's principal or raise AuthError. Never echoes the token in errors."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthError("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise AuthError("token algorithm not allowed")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("invalid token") from exc
    role = claims.get("role")
    space_id = claims.get("space_id")
    subject = claims.get("sub")
    if role not in ("editor", "viewer") or not isinstance(space_id, str) or not space_id:
        raise AuthError("token lacks a valid role or space_id")
    if not isinstance(subject, str) or not subject:
        raise AuthError("token lacks a subject")
    return Principal(subject=subject, space_id=space_id, role=role, expires_at=float(claims["exp"]))


def bearer_token(authorization_header: str | None) -> str:
    if not authorization_header:
        raise AuthError("missing bearer token")
    scheme, _, token = authorization_header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("authorization header must be 'Bearer <token>'")
    return token.strip()


def require_editor(principal: Principal, space_id: str) -> None:
    if principal.role != "editor" or principal.space_id != space_id:
        # Same answer whether the space exists or not, so nothing leaks about other spaces.
        raise Forbidden("not an editor of this space")
