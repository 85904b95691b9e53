"""Real servers on 127.0.0.1 for tests that need a hostile peer: drips, bombs, loops, silence.

``HostileServer`` is an HTTP/1.1 server whose routes are plain functions of the request handler;
``RawServer`` hands each accepted TCP connection to a function (for non-HTTP peers, e.g. a TLS
ClientHello catcher). Both listen on an ephemeral port, record what they saw, and ``stop()`` joins
every thread they started: handlers that wait or drip do so on ``stopping`` so they end at once.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SeenRequest:
    """One request line and its headers (names lower-cased) as the server received them."""

    path: str
    headers: dict[str, str]


Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    """Dispatches GET to the server's routes by path (query ignored); unknown paths get a 404."""

    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like real feed servers
    timeout = 5  # an idle keep-alive connection ends by itself, so stop() never waits long
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner = self.server.owner
        with owner.lock:
            owner.seen.append(SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = owner.routes.get(self.path.split("?", 1)[0])
        try:
            if route is None:
                self.reply(404, b"not found")
            else:
                route(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up, as hostile tests expect it to

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Send a complete response with a Content-Length."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def redirect(self, location: str, status: int = 302) -> None:
        """Send a redirect to ``location``."""
        self.reply(status, b"", {"Location": location})

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the server is stopping (then end the handler)."""
        return self.server.owner.stopping.wait(seconds)

    def drip(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte at a time, ``interval`` seconds apart, until done or stopping."""
        self.close_connection = True
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            if self.wait(interval):
                return

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep pytest output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: nothing outlives the test
    owner: HostileServer

    def verify_request(self, request: object, client_address: object) -> bool:
        with self.owner.lock:
            self.owner.connections += 1
        return True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-response is what these tests provoke; anything else is a bug.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class HostileServer:
    """An HTTP server on 127.0.0.1:<ephemeral> running in a thread until ``stop()``."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.seen: list[SeenRequest] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server((LOOPBACK, 0), Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def url(self, path: str = "/", host: str = LOOPBACK) -> str:
        """The URL of ``path`` on this server (``host`` may be a name the test resolves to us)."""
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str) -> Callable[[Route], Route]:
        """Decorator: serve ``path`` with the decorated function."""

        def register(function: Route) -> Route:
            self.routes[path] = function
            return function

        return register

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        with self.lock:
            return [seen.path for seen in self.seen]

    def stop(self) -> None:
        """Stop serving, wake waiting handlers, and join every thread."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _RawHandler(socketserver.BaseRequestHandler):
    server: _RawTCPServer

    def handle(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.connections += 1
        self.request.settimeout(5)
        try:
            owner.serve(self.request, owner.stopping)
        except OSError:
            pass  # the client hung up


class _RawTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = False
    allow_reuse_address = True
    owner: RawServer


class RawServer:
    """A TCP server on 127.0.0.1:<ephemeral>; ``serve(sock, stopping)`` handles each connection."""

    def __init__(self, serve: Callable[[socket.socket, threading.Event], None]) -> None:
        self.serve = serve
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _RawTCPServer((LOOPBACK, 0), _RawHandler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wake waiting handlers, and join every thread."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
