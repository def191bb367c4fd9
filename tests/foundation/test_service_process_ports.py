"""The harness's service processes own their ports from creation until the service is ready.

CI once failed five end-to-end tests at once: the notifier's port had been picked, released, and handed
to a parallel test worker's service during the notifier's start-up; that service answered the
notifier's ``/readyz`` and then 404'd every notifier route.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from avatarflow.devstack.processes import ServiceProcess


class _ReusingServer(ThreadingHTTPServer):
    allow_reuse_address = True  # as uvicorn's listener (asyncio sets SO_REUSEADDR on Unix)


@contextmanager
def readyz_server(port: int, service: str) -> Iterator[None]:
    """A server on ``port`` whose /readyz says ready and names ``service``."""
    body = json.dumps({"status": "ready", "service": service, "checks": {}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = _ReusingServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_a_reserved_port_is_not_handed_out_but_the_service_can_listen_on_it(tmp_path: Path) -> None:
    proc = ServiceProcess("notifier", {}, tmp_path / "notifier.log")
    try:
        with socket.socket() as other, pytest.raises(OSError) as refused:
            other.bind(("127.0.0.1", proc.port))  # what a parallel worker's free_port() would need
        assert refused.value.errno == errno.EADDRINUSE
        handed_out = set()
        for _ in range(2000):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                handed_out.add(probe.getsockname()[1])
        assert proc.port not in handed_out
        with readyz_server(proc.port, "notifier"):  # the service itself binds and listens
            proc.wait_ready(timeout_s=10)
    finally:
        proc.stop()


def test_readiness_from_another_service_on_the_port_is_not_readiness(tmp_path: Path) -> None:
    proc = ServiceProcess("notifier", {}, tmp_path / "notifier.log")
    try:
        with readyz_server(proc.port, "ingest"), pytest.raises(TimeoutError):
            proc.wait_ready(timeout_s=1.5)
        with readyz_server(proc.port, "notifier"):
            proc.wait_ready(timeout_s=10)
    finally:
        proc.stop()
