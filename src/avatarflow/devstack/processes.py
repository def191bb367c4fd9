"""Run avatarflow services as real OS processes (run command, integration and fault tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .launcher import TELEMETRY_OFF_ENV, die_with_parent, free_port

SERVICES = ("ingest", "validator", "matting", "animator", "notifier")


# A service is ready once its consumers have joined their groups. On a broker shared by earlier
# processes of the same group (the test stack), Tansu can hold that join for up to the group's
# rebalance timeout (max.poll.interval, 300 s): 120 s was seen to fall short.
READY_TIMEOUT_S = 330.0


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout_s: float = READY_TIMEOUT_S) -> ServiceProcess:
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
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9: no graceful shutdown, nothing committed after the last commit."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout_s: float = 60) -> None:
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
