"""Every HTTP service bounds what a client may hold open (issue 19 item 6), probed over raw sockets
against a real ingest process: a huge declared body, slow headers, a stalled body, a silent client."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator

import pytest
from avatarflow_runtime.http_limits import MULTIPART_OVERHEAD_BYTES

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.processes import ServiceProcess

pytestmark = pytest.mark.integration
HEADER_TIMEOUT_S = 1.5
BODY_IDLE_TIMEOUT_S = 1.5
UPLOAD_CAP = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def ingest(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = {
        **stack.service_env(),
        "AVATARFLOW_JWT_SECRET": secrets.token_urlsafe(32),
        "AVATARFLOW_HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "AVATARFLOW_HTTP_BODY_IDLE_TIMEOUT_S": str(BODY_IDLE_TIMEOUT_S),
        "AVATARFLOW_INGEST_MAX_UPLOAD_BYTES": str(UPLOAD_CAP),
    }
    proc = ServiceProcess("ingest", env, tmp_path_factory.mktemp("ingest") / "ingest.log").start()
    yield proc
    proc.stop()


def exchange(proc: ServiceProcess, data: bytes, wait_s: float = 10) -> tuple[bytes, float]:
    """Send ``data`` and nothing more; (everything the server answered until it closed, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", proc.port), timeout=wait_s) as sock:
        if data:
            sock.sendall(data)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    return answer, time.monotonic() - started


def upload_head(length: int) -> bytes:
    return (
        f"POST /v1/spaces/s/uploads HTTP/1.1\r\nHost: ingest\r\nContent-Type: multipart/form-data; "
        f"boundary=b\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_content_length_over_the_cap_gets_413_at_once(ingest: ServiceProcess) -> None:
    answer, seconds = exchange(ingest, upload_head(100 * 1024**3))  # 100 GB announced, nothing sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"request_too_large"' in answer.replace(b" ", b"")
    assert str(UPLOAD_CAP + MULTIPART_OVERHEAD_BYTES).encode() in answer  # the cap it applied
    assert seconds < HEADER_TIMEOUT_S  # answered, not timed out


def test_slow_headers_get_408_and_the_connection_closes(ingest: ServiceProcess) -> None:
    answer, seconds = exchange(ingest, b"POST /v1/spaces/s/uploads HTTP/1.1\r\nHost: ingest\r\n")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert HEADER_TIMEOUT_S - 0.2 <= seconds < HEADER_TIMEOUT_S + 5


def test_a_silent_connection_is_closed(ingest: ServiceProcess) -> None:
    answer, seconds = exchange(ingest, b"")
    assert seconds < HEADER_TIMEOUT_S + 5 and (answer == b"" or answer.startswith(b"HTTP/1.1 408"))


def test_a_stalled_body_gets_408(ingest: ServiceProcess) -> None:
    body_start = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.jpg\r\n\r\n\xff\xd8"
    answer, seconds = exchange(ingest, upload_head(100_000) + body_start)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b'"error":"request_timeout"' in answer.replace(b" ", b"")
    assert BODY_IDLE_TIMEOUT_S - 0.2 <= seconds < BODY_IDLE_TIMEOUT_S + 5


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (headers and a Content-Length body): a lone recv may return only
    part of it, and the rest would then be read as the next response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_normal_request_still_works_on_a_kept_alive_connection(ingest: ServiceProcess) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: ingest\r\n\r\n"
    with socket.create_connection(("127.0.0.1", ingest.port), timeout=10) as sock:
        sock.sendall(request)
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        # Idle between requests for less than uvicorn's keep-alive (5 s), longer than the header deadline:
        # the header deadline counts from a request's first byte, so the next request is served.
        time.sleep(HEADER_TIMEOUT_S + 0.5)
        sock.sendall(request)
        answer = _read_response(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
