"""Token rules shared by every HTTP service."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from avatarflow_runtime.auth import (
    AuthError,
    Forbidden,
    bearer_token,
    mint_token,
    require_editor,
    verify_token,
)

SECRET = "s" * 32


def test_valid_editor_token() -> None:
    principal = verify_token(mint_token(SECRET, subject="u1", space_id="A"), SECRET)
    assert (principal.subject, principal.space_id, principal.role) == ("u1", "A", "editor")
    require_editor(principal, "A")
    with pytest.raises(Forbidden):
        require_editor(principal, "B")


def test_viewer_cannot_act_as_editor() -> None:
    with pytest.raises(Forbidden):
        require_editor(verify_token(mint_token(SECRET, subject="u", space_id="A", role="viewer"), SECRET), "A")


def _unsigned(claims: dict[str, object]) -> str:
    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


@pytest.mark.parametrize(
    "token",
    [
        mint_token(SECRET, subject="u", space_id="A", ttl_s=-10),  # expired
        mint_token("another-secret-another-secret-xx", subject="u", space_id="A"),  # forged
        _unsigned(
            {
                "sub": "u",
                "space_id": "A",
                "role": "editor",
                "exp": int(time.time()) + 60,
                "iat": int(time.time()),
                "iss": "avatarflow",
                "aud": "avatarflow",
            }
        ),  # alg none
        jwt.encode(
            {"sub": "u", "space_id": "A", "role": "editor", "exp": int(time.time()) + 60},
            SECRET,
            algorithm="HS512",
        ),  # wrong algorithm
        "not.a.token",
        "",
        mint_token(SECRET, subject="u", space_id="A", role="admin"),  # type: ignore[arg-type]
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthError):
        verify_token(token, SECRET)


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    for header in (None, "", "Basic abc", "Bearer "):
        with pytest.raises(AuthError):
            bearer_token(header)
