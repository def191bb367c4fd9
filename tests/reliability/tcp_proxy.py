"""A TCP forwarder the fault tests can cut: the way to take "the database" away from one pipeline.

The machine's PostgreSQL is shared (other sessions' databases, other test workers), so it is never
stopped: the notifier reaches its database through this proxy instead. The services reach S3 through
one too, so an S3 outage can be theirs alone (the test broker, Tansu, keeps its log in the same
SeaweedFS: stopping SeaweedFS also stops the broker, which production Kafka would not do).
``cut()`` closes every forwarded connection and stops listening (new connections are refused, as
from a server that is down), ``restore()`` listens on the same port again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

Address = tuple[str, int]


class TcpProxy:
    def __init__(self, upstream: Address | Callable[[], Address]) -> None:
        """``upstream``: an address, or a function giving it at each connection (a server started later)."""
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def restore(self) -> None:
        if self._listener is None:
            self._listen()

    stop = cut

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                target = self.upstream() if callable(self.upstream) else self.upstream
                server = socket.create_connection(target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    server.close()
                    return
                self._connections.update((client, server))
                self.accepted += 1
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._connections.discard(src)
                self._connections.discard(dst)
