"""Run avatarflow services as real OS processes (run command, integration and fault tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .launcher import TELEMETRY_OFF_ENV, die_with_parent

SERVICES = ("ingest", "validator", "matting", "animator", "notifier")


# A service is ready once its consumers have joined their groups. On a broker shared by earlier
# processes of the same group (the test stack), Tansu can hold that join for up to the group's
# rebalance timeout (max.poll.interval, 300 s): 120 s was seen to fall short.
READY_TIMEOUT_S = 330.0


def reserve_port(port: int = 0) -> socket.socket:
    """A socket bound (not listening) to 127.0.0.1:``port`` (0: a free one) with SO_REUSEADDR.

    While it is held, no other process's ``bind(port 0)`` is handed that port, yet the service, whose
    uvicorn also sets SO_REUSEADDR, can still bind and listen on it. Without this, a port picked and
    released before a child starts stays free through the child's start-up (seconds to minutes of
    lifespan before uvicorn binds), and a parallel test worker was once handed the same port: its
    service answered this one's /readyz, and every request after it was a 404.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class ServiceProcess:
    """One service process on a port reserved for it from creation until the service is ready.

    ``/readyz`` must also name this service: an answer from some other server on the port is not ready.
    """

    name: str
    env: dict[str, str]
    log_path: Path
    port: int = 0
    popen: subprocess.Popen[bytes] | None = None
    _reservation: socket.socket | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._reservation = reserve_port(self.port)
        self.port = int(self._reservation.getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout_s: float = READY_TIMEOUT_S) -> ServiceProcess:
        if self._reservation is None:  # a restart: hold the port again until the new process is ready
            self._reservation = reserve_port(self.port)
        env = {
            **os.environ,
            **TELEMETRY_OFF_ENV,
            **self.env,
            "AVATARFLOW_HTTP_HOST": "127.0.0.1",
            "AVATARFLOW_HTTP_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", f"avatarflow_{self.name}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log.close()
        if wait_ready:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            if self._answers_ready():
                self._release_port()
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s:\n{self.log_tail()}")

    def _answers_ready(self) -> bool:
        try:
            response = httpx.get(f"{self.base_url}/readyz", timeout=2)
            return response.status_code == 200 and response.json().get("service") == self.name
        except (httpx.HTTPError, ValueError):
            return False

    def _release_port(self) -> None:
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9: no graceful shutdown, nothing committed after the last commit."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout_s: float = 60) -> None:
        self._release_port()
        if self.popen is None or self.popen.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def _signal(self, sig: int) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        if sig == signal.SIGKILL:
            self.popen.wait(timeout=10)


def pipeline_env(
    service_env: dict[str, str],
    *,
    ingest_url: str,
    notifier_url: str,
    seed_catalogue: bool = True,
    **overrides: str,
) -> dict[str, str]:
    """Environment for all five services of one local pipeline (demo, end-to-end tests, load, faults).

    ``overrides`` are extra ``AVATARFLOW_*`` variables (or others) that win over these defaults.
    """
    env = {
        **service_env,
        "AVATARFLOW_NOTIFIER_MIGRATE_ON_START": "true",
        "AVATARFLOW_NOTIFIER_SEED_CATALOGUE": "true" if seed_catalogue else "false",
        # The editor page (served by the notifier) uploads to ingest; ingest links back to the status.
        "AVATARFLOW_NOTIFIER_INGEST_PUBLIC_URL": ingest_url,
        "AVATARFLOW_INGEST_STATUS_BASE_URL": notifier_url,
        "AVATARFLOW_INGEST_CORS_ORIGINS": notifier_url,
        # Matting and animator records take seconds on a shared CPU; also bounds a rebalance on Tansu.
        "AVATARFLOW_KAFKA_MAX_POLL_INTERVAL_MS": "120000",
    }
    env.update(overrides)
    return env


def start_all(procs: list[ServiceProcess], env: dict[str, str] | None = None, timeout_s: float = 300) -> None:
    """Start every process at once (they warm up in parallel), then wait until each is ready."""
    for proc in procs:
        if env is not None:
            proc.env = env
        proc.start(wait_ready=False)
    for proc in procs:
        proc.wait_ready(timeout_s=timeout_s)
