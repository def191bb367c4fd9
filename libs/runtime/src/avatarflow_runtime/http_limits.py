"""Request limits every HTTP service enforces itself, whatever sits in front of it (issue 19 item 6).

* A ``Content-Length`` above the service's body cap is answered 413 at once, before a byte of the
  body is read; a chunked body is cut off with 413 as soon as it passes the cap.
* Headers must arrive within ``http_header_timeout_s`` of the connection's first byte (or of the
  connection itself): :class:`TimedH11Protocol`, a uvicorn h11 protocol with a header deadline
  (uvicorn only times out idle keep-alive connections). A slow-header client gets 408 and is closed.
* A body must keep coming: a gap of ``http_body_idle_timeout_s`` between chunks, or a body still
  unread after ``http_body_timeout_s``, gets 408 (:class:`RequestLimits`, an ASGI middleware).

docs/operations.md lists these next to the chart's ingress limits.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import h11
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import ServiceSettings

# Multipart framing around an uploaded file (boundaries, part headers): the file itself is capped by
# the upload limit, the request may be this much larger.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

Scope = dict[str, Any]
Message = dict[str, Any]


class RequestTimeout(HTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI's body parsing passes it on (anything else
    it turns into 400) and the error handlers answer it in the common error shape."""

    code = "request_timeout"

    def __init__(self, detail: str) -> None:
        super().__init__(408, detail, headers={"connection": "close"})


class BodyTooLarge(HTTPException):
    code = "request_too_large"

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail, headers={"connection": "close"})


def body_limit(settings: ServiceSettings) -> int:
    """The largest request body a service takes: its upload cap plus framing, else ``http_max_body_bytes``."""
    upload_cap = getattr(settings, "ingest_max_upload_bytes", 0)
    return max(settings.http_max_body_bytes, upload_cap + MULTIPART_OVERHEAD_BYTES if upload_cap else 0)


def error_body(error: str, detail: str) -> bytes:
    return json.dumps({"error": error, "detail": detail}).encode()


class RequestLimits:
    """ASGI middleware: 413 on a declared or actual body over ``max_body_bytes``; 408 on a stalled body."""

    def __init__(self, app: Any, *, max_body_bytes: int, idle_timeout_s: float, total_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_s = idle_timeout_s
        self.total_timeout_s = total_timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(send, 413, "request_too_large", self._too_large_detail())
            return
        started = time.monotonic()
        received = 0
        body_done = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                last: Message = await receive()  # only http.disconnect is left to wait for
                return last
            remaining = self.total_timeout_s - (time.monotonic() - started)
            try:
                message: Message = await asyncio.wait_for(receive(), timeout=min(self.idle_timeout_s, remaining))
            except TimeoutError:
                raise RequestTimeout(self._timeout_detail()) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self._too_large_detail())
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except (RequestTimeout, BodyTooLarge) as exc:
            if response_started:
                raise
            await _answer(send, exc.status_code, exc.code, exc.detail)

    def _timeout_detail(self) -> str:
        return (
            f"The request body stalled (no data for {self.idle_timeout_s:g} s, or not complete "
            f"within {self.total_timeout_s:g} s)."
        )

    def _too_large_detail(self) -> str:
        return f"The request body is larger than this service accepts ({self.max_body_bytes} bytes)."


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Any, status: int, error: str, detail: str) -> None:
    body = error_body(error, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a header deadline (set ``header_timeout_s`` on a subclass)."""

    header_timeout_s: float = 10.0

    # uvicorn's protocols are only ever given a Transport (asyncio types the base method wider).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the first bytes of a (next) request: headers due by the deadline
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being sent on this connection; keep-alive handles the rest
        body = error_body("request_timeout", f"Request headers not received within {self.header_timeout_s:g} s.")
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.transport.close()


def timed_protocol(header_timeout_s: float) -> type[TimedH11Protocol]:
    return type("ConfiguredTimedH11Protocol", (TimedH11Protocol,), {"header_timeout_s": header_timeout_s})
