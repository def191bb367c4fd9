"""One durable pipeline (Tansu on SeaweedFS, PostgreSQL, five service processes) for the reliability suite.

Every reliability module shares it (startup is 30-60 s on a 2-core machine); fault tests restore
what they break before they return. Measured figures are collected in ``reliability_figures`` and
written to test-artifacts/reliability-figures.json for docs/reliability.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from reliability_support import ACCEPT_IMAGES, RATE_LIMIT_PER_MINUTE, REJECT_IMAGES
from tcp_proxy import TcpProxy

from avatarflow.devstack.harness import PipelineHarness


@pytest.fixture(scope="session")
def database_proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """The notifier's way to its database, which a fault test can cut (tcp_proxy.py says why)."""
    url = sa.engine.make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def s3_proxy() -> Iterator[TcpProxy]:
    """The services' way to S3, which a fault test can cut without taking the broker's storage away."""
    proxy = TcpProxy(("127.0.0.1", 9)).start()  # the harness fixture points it at the stack's S3
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def harness(
    postgres_url: str, database_proxy: TcpProxy, s3_proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineHarness]:
    workdir = tmp_path_factory.mktemp("reliability")
    proxied = sa.engine.make_url(postgres_url).set(host="127.0.0.1", port=database_proxy.port)
    pipeline = PipelineHarness(
        workdir,
        postgres_url,  # the harness's own reads (terminal statuses) go straight to the server
        extra_env={
            "AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
            "AVATARFLOW_DATABASE_URL": proxied.render_as_string(hide_password=False),
            "AVATARFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_proxy.port}",
        },
    )
    # The stack's S3 port is known once it runs, which is before any service connects.
    s3_proxy.upstream = lambda: _host_port(pipeline.endpoints.s3_endpoint)
    try:
        pipeline.start()
        yield pipeline
    finally:
        pipeline.stop()


def _host_port(url: str) -> tuple[str, int]:
    parsed = urlsplit(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


@pytest.fixture(scope="session")
def mixed_images(shared_dir: Path) -> list[Path]:
    """Small images: 2 avatars to make (the animator's seconds-long pack dominates), 4 rejections."""
    folder = shared_dir / "avatar-images"
    names = [ACCEPT_IMAGES[0], REJECT_IMAGES[0], REJECT_IMAGES[1], ACCEPT_IMAGES[1], REJECT_IMAGES[2], REJECT_IMAGES[3]]
    return [folder / name for name in names]


@pytest.fixture(scope="session")
def light_images(mixed_images: list[Path]) -> list[Path]:
    """1 avatar to make, 5 rejections: for faults that do not hit the matting or animator stage."""
    rejects = [image for image in mixed_images if not image.name.startswith("accept_")]
    return [mixed_images[0], *rejects, rejects[0]]


@pytest.fixture(scope="session")
def reliability_figures(artifacts_dir: Path) -> Iterator[dict[str, Any]]:
    figures: dict[str, Any] = {}
    try:
        yield figures
    finally:
        if figures:
            path = artifacts_dir / "reliability-figures.json"
            existing = json.loads(path.read_text()) if path.exists() else {}
            existing.update(figures)
            path.write_text(json.dumps(existing, indent=2, sort_keys=True, default=str))
