"""Services that verify bearer tokens refuse to start with a key anyone may know (issue 19, item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from avatarflow_runtime.settings import PUBLIC_JWT_SECRETS, InsecureSecret, ServiceSettings
from pydantic import SecretStr

from avatarflow.devstack import StackEndpoints

PUBLISHED = next(iter(PUBLIC_JWT_SECRETS))


@pytest.mark.parametrize(
    ("secret", "reason"),
    [("", "not set"), (PUBLISHED, "published"), ("x" * 31, "31 bytes, under 32")],
)
def test_weak_secrets_are_refused_with_the_reason(secret: str, reason: str) -> None:
    with pytest.raises(InsecureSecret, match=reason) as info:
        ServiceSettings(jwt_secret=SecretStr(secret)).require_token_secret()
    assert secret == "" or secret not in str(info.value)  # the refusal never prints the key


def test_a_long_unpublished_secret_is_accepted() -> None:
    ServiceSettings(jwt_secret=SecretStr("y" * 32)).require_token_secret()
    # Multi-byte characters count as bytes, not characters: 16 x 2 bytes is enough.
    ServiceSettings(jwt_secret=SecretStr("é" * 16)).require_token_secret()


# Every token-verifying service, and every kind of weak key, each once in a real process (a service's
# start-up costs seconds of imports; the reasons themselves are unit-tested above for every kind).
@pytest.mark.parametrize(
    ("service", "secret"), [("ingest", None), ("validator", PUBLISHED), ("notifier", "short-secret")]
)
def test_token_verifying_services_exit_instead_of_starting(service: str, secret: str | None, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARFLOW_")}
    env |= {"AVATARFLOW_HTTP_PORT": "0", "AVATARFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/n.db"}
    if secret is not None:
        env["AVATARFLOW_JWT_SECRET"] = secret
    # On a service that starts, this times out (it waits for its broker) instead of exiting.
    done = subprocess.run(
        [sys.executable, "-m", f"avatarflow_{service}"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "insecure_jwt_secret" in done.stderr and "AVATARFLOW_JWT_SECRET" in done.stderr
    if secret:
        assert secret not in done.stderr


def test_each_embedded_stack_mints_its_own_strong_secret() -> None:
    def endpoints() -> StackEndpoints:
        return StackEndpoints("127.0.0.1:1", "http://127.0.0.1:2", "k", "s", "b", "sqlite://")

    first, second = endpoints(), endpoints()
    assert first.jwt_secret != second.jwt_secret
    env = first.service_env()
    ServiceSettings(jwt_secret=SecretStr(env["AVATARFLOW_JWT_SECRET"])).require_token_secret()
    assert env["AVATARFLOW_JWT_SECRET"] not in PUBLIC_JWT_SECRETS
