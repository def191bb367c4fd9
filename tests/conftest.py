"""Shared fixtures: real broker, real S3, real SQL database.

Precedence (issue 2): environment variables pointing at existing endpoints win
(AVATARFLOW_TEST_KAFKA_BOOTSTRAP, AVATARFLOW_TEST_S3_ENDPOINT + keys, AVATARFLOW_TEST_POSTGRES_URL);
else testcontainers where a Docker engine answers (AVATARFLOW_TEST_USE_TESTCONTAINERS=0 turns that off);
else the embedded launcher (Tansu + SeaweedFS). Tests that break infrastructure on purpose (faults)
always start their own launcher stack.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / "var" / "numba-cache"))

from avatarflow.devstack import DevStack, StackEndpoints  # noqa: E402

SHARED_DIR = Path(os.environ.get("AVATARFLOW_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DIR} (set AVATARFLOW_SHARED_DIR)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    import sqlalchemy as sa

    base = os.environ.get("AVATARFLOW_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    name = f"avatarflow_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def shared_endpoints() -> Iterator[StackEndpoints | None]:
    """Endpoints given by the environment or by testcontainers, for the whole session; None: none."""
    kafka = os.environ.get("AVATARFLOW_TEST_KAFKA_BOOTSTRAP")
    s3 = os.environ.get("AVATARFLOW_TEST_S3_ENDPOINT")
    if kafka and s3:
        yield StackEndpoints(
            kafka_bootstrap=kafka,
            s3_endpoint=s3,
            s3_access_key=os.environ.get("AVATARFLOW_TEST_S3_ACCESS_KEY", "minioadmin"),
            s3_secret_key=os.environ.get("AVATARFLOW_TEST_S3_SECRET_KEY", "minioadmin"),
            bucket=os.environ.get("AVATARFLOW_TEST_S3_BUCKET", "avatarflow"),
            database_url=os.environ.get("AVATARFLOW_TEST_POSTGRES_URL", DEFAULT_PG_URL),
        )
    elif os.environ.get("AVATARFLOW_TEST_USE_TESTCONTAINERS", "auto") != "0" and _docker_available():
        yield from _testcontainers_stack()
    else:
        yield None


@pytest.fixture(scope="module")
def stack(
    shared_endpoints: StackEndpoints | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackEndpoints]:
    """Broker + S3 for one test module (SQLite database file unless a test asks for PostgreSQL).

    The embedded stack (Tansu + SeaweedFS, ~4 s to start and stop) is per module, not per session:
    on a broker shared across modules, a module's services consumed the events earlier modules left
    (the animator rendered their backlog first), and their consumer groups' joins waited on members
    of earlier modules' processes (CI saw a notifier's join held past its 330 s start-up bound).
    """
    if shared_endpoints is not None:
        yield shared_endpoints
        return
    with DevStack(workdir=tmp_path_factory.mktemp("stack")) as local:
        assert local.endpoints is not None
        yield local.endpoints


def _testcontainers_stack() -> Iterator[StackEndpoints]:
    """Apache Kafka + MinIO + PostgreSQL containers, where a Docker engine is available."""
    import asyncio

    import boto3
    from avatarflow_runtime.provision import create_topics
    from testcontainers.kafka import KafkaContainer
    from testcontainers.minio import MinioContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer() as kafka, MinioContainer() as minio, PostgresContainer("postgres:16") as pg:
        cfg = minio.get_config()
        endpoint = f"http://{cfg['endpoint']}"
        boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=cfg["access_key"], aws_secret_access_key=cfg["secret_key"]
        ).create_bucket(Bucket="avatarflow")
        bootstrap = kafka.get_bootstrap_server()
        asyncio.run(create_topics(bootstrap, partitions=4))
        yield StackEndpoints(
            kafka_bootstrap=bootstrap,
            s3_endpoint=endpoint,
            s3_access_key=cfg["access_key"],
            s3_secret_key=cfg["secret_key"],
            bucket="avatarflow",
            database_url=pg.get_connection_url().replace("psycopg2", "psycopg"),
        )
