"""A fault-injecting HTTP reverse proxy on 127.0.0.1, for the delivery-reliability tests.

Put it between syndicate and a real CMS (``url = proxy.url`` in the partner's config) and program
what goes wrong, by method and path::

    with FaultProxy(site.url) as proxy:
        proxy.drop_after_forward("POST", r"^/wp-json/wp/v2/posts/?(\\?|$)", times=3)  # lost answers
        proxy.answer(503, "GET", r"/wp-json/", times=2, retry_after=1)            # "come back later"
        ...
        proxy.count("POST", r"/posts", outcome="dropped")

Rules are tried in the order they were added; the first one that matches the request (method and a
regular expression searched in the request target, path and query string) and still has uses left
decides what happens to it:

* ``drop_after_forward``: forward the request, let the upstream act on it and answer, then close the
  client's connection without a byte of the answer (``rst=True``: with a TCP reset) — the lost
  answer of a write that did happen;
* ``status``: answer at once with a status (503, 429, …), headers such as ``Retry-After`` and a small
  body, without forwarding — the upstream never sees the request;
* ``reset``: read the request, then reset the connection without forwarding it;
* ``delay``: wait, then go on to the next matching rule (or forward) — a slow network or upstream.
  The request goes on even if its client gave up or was killed meanwhile (``outcome`` then says
  ``client-gone``): a write can land after its sender stopped waiting for it.

A rule applies to the next ``times`` matching requests (``None``: all of them), after letting
``skip`` matching requests through untouched. Everything the proxy saw is recorded (``seen``) and
can be counted (``count``). It is bounded: request bodies are capped, every upstream call has a
timeout, delays end as soon as the proxy stops, and ``stop()`` (or leaving the ``with`` block) joins
every thread it started. Nothing listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade"}
ACTIONS = ("drop_after_forward", "status", "reset", "delay")


@dataclass
class Rule:
    """One programmed fault; ``hits`` counts the requests it was applied to."""

    action: str
    method: str = "*"
    path: str = ".*"
    times: int | None = 1
    skip: int = 0
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    rst: bool = False
    hits: int = 0
    passed: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} (one of {', '.join(ACTIONS)})")
        self._pattern = re.compile(self.path)

    def matches(self, method: str, target: str) -> bool:
        return (self.method == "*" or self.method.upper() == method.upper()) and bool(self._pattern.search(target))

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass(frozen=True)
class Seen:
    """One request as the proxy handled it.

    ``outcome``: ``forwarded`` (answered by the upstream), ``dropped`` (forwarded, answer withheld),
    ``status`` (answered by the proxy), ``reset`` (not forwarded), ``upstream-error`` (the upstream
    could not be reached: a 502 was answered), ``client-gone`` (forwarded, but the client had left
    before the answer came back: a killed client's write still reached the upstream).
    ``started`` and ``finished`` are ``time.monotonic()`` values."""

    method: str
    target: str
    outcome: str
    status: int | None
    started: float
    finished: float


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every handler thread
    allow_reuse_address = True
    owner: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped answer never poisons a pool
    timeout = 15  # a client that sends nothing is let go
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _handle(self) -> None:
        self.server.owner._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle  # noqa: N815


class FaultProxy:
    """A threaded reverse proxy to ``upstream`` (a base URL) on 127.0.0.1, port chosen by the kernel."""

    def __init__(self, upstream: str, *, upstream_timeout: float = 60.0, max_body: int = 64 * 1024 * 1024) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the upstream must be an http:// URL")
        self.upstream = upstream.rstrip("/")
        self._host, self._port = parts.hostname, parts.port or 80
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self.upstream_timeout = upstream_timeout
        self.max_body = max_body
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        self.stopping.clear()
        server = _Server((LOOPBACK, 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end delays, and join every thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The proxy's base URL (the upstream's path prefix, if any, is added when forwarding)."""
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    # --- programming ------------------------------------------------------------------------------

    def add(self, action: str, method: str = "*", path: str = ".*", *, times: int | None = 1, skip: int = 0,
            **options: Any) -> Rule:
        """Add a rule (see the module's docstring); returns it, so its ``hits`` can be read later."""
        rule = Rule(action, method, path, times=times, skip=skip, **options)
        with self.lock:
            self.rules.append(rule)
        return rule

    def drop_after_forward(self, method: str = "*", path: str = ".*", *, times: int | None = 1, skip: int = 0,
                           rst: bool = False) -> Rule:
        """Forward, let the upstream act, then close the client's connection without answering."""
        return self.add("drop_after_forward", method, path, times=times, skip=skip, rst=rst)

    def answer(self, status: int, method: str = "*", path: str = ".*", *, times: int | None = 1, skip: int = 0,
               retry_after: float | str | None = None, headers: dict[str, str] | None = None,
               body: bytes | str = b"") -> Rule:
        """Answer ``status`` without forwarding (with ``Retry-After`` when given)."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after) if not isinstance(retry_after, float) else f"{retry_after:g}"
        data = body.encode() if isinstance(body, str) else body
        return self.add("status", method, path, times=times, skip=skip, status=status, headers=extra, body=data)

    def reset(self, method: str = "*", path: str = ".*", *, times: int | None = 1, skip: int = 0) -> Rule:
        """Read the request, then reset the connection without forwarding it."""
        return self.add("reset", method, path, times=times, skip=skip)

    def delay(self, seconds: float, method: str = "*", path: str = ".*", *, times: int | None = 1,
              skip: int = 0) -> Rule:
        """Wait ``seconds`` before going on (to the next rule, or forwarding)."""
        return self.add("delay", method, path, times=times, skip=skip, seconds=seconds)

    def clear(self) -> None:
        """Remove every rule: from now on the proxy forwards everything faithfully."""
        with self.lock:
            self.rules.clear()

    def count(self, method: str | None = None, path: str | None = None, outcome: str | None = None) -> int:
        """How many requests seen match ``method``, the ``path`` regex and ``outcome``."""
        pattern = re.compile(path) if path is not None else None
        with self.lock:
            return sum(1 for s in self.seen
                       if (method is None or s.method == method.upper())
                       and (pattern is None or pattern.search(s.target))
                       and (outcome is None or s.outcome == outcome))

    # --- handling ---------------------------------------------------------------------------------

    def _take(self, method: str, target: str, after: int) -> tuple[int, Rule | None]:
        """The next rule (from index ``after``) that applies to this request, its use counted."""
        with self.lock:
            for index in range(after, len(self.rules)):
                rule = self.rules[index]
                if rule.exhausted or not rule.matches(method, target):
                    continue
                if rule.passed < rule.skip:
                    rule.passed += 1
                    continue
                rule.hits += 1
                return index, rule
        return len(self.rules), None

    def _handle(self, h: _Handler) -> None:
        method, target = h.command, h.path
        h.close_connection = True
        started = time.monotonic()

        def record(outcome: str, status: int | None) -> None:
            with self.lock:
                self.seen.append(Seen(method, target, outcome, status, started, time.monotonic()))

        self._handle_request(h, method, target, record)

    def in_flight(self, at: float, method: str | None = None, path: str | None = None) -> list[Seen]:
        """The requests that were being handled at ``at`` (a ``time.monotonic()`` value)."""
        pattern = re.compile(path) if path is not None else None
        with self.lock:
            return [s for s in self.seen if s.started <= at <= s.finished
                    and (method is None or s.method == method.upper())
                    and (pattern is None or pattern.search(s.target))]

    def _handle_request(self, h: _Handler, method: str, target: str, record: Any) -> None:
        try:
            body = self._read_body(h)
        except ValueError as exc:
            code = 413 if "large" in str(exc) else 400
            self._reply(h, code, {}, str(exc).encode())
            record("status", code)
            return
        except OSError:
            record("client-gone", None)
            return
        index = 0
        while True:
            index, rule = self._take(method, target, index)
            if rule is None or rule.action != "delay":
                break
            if self.stopping.wait(rule.seconds):
                self._abort(h, rst=True)
                record("reset", None)
                return
            index += 1
        if rule is not None and rule.action == "status":
            headers = {"Content-Type": "application/json; charset=UTF-8", **rule.headers}
            payload = rule.body or (b'{"code":"fault_proxy","message":"injected HTTP %d","data":{"status":%d}}'
                                    % (rule.status, rule.status))
            outcome = "status" if self._reply(h, rule.status, headers, payload) else "client-gone"
            record(outcome, rule.status)
            return
        if rule is not None and rule.action == "reset":
            self._abort(h, rst=True)
            record("reset", None)
            return
        try:
            status, headers, payload = self._forward(method, target, h.headers, body)
        except OSError as exc:
            self._reply(h, 502, {"Content-Type": "text/plain"}, f"fault proxy: upstream failed: {exc}".encode())
            record("upstream-error", 502)
            return
        if rule is not None and rule.action == "drop_after_forward":
            self._abort(h, rst=rule.rst)
            record("dropped", status)
            return
        if self._client_gone(h):
            record("client-gone", status)
            return
        outcome = "forwarded" if self._reply(h, status, headers, payload) else "client-gone"
        record(outcome, status)

    def _read_body(self, h: _Handler) -> bytes:
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = h.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise ValueError("malformed chunked body") from None
                if size == 0:
                    while h.rfile.readline(1024).strip():  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > self.max_body:
                    raise ValueError("request body too large")
                chunks.append(h.rfile.read(size))
                h.rfile.readline(8)
        length = int(h.headers.get("Content-Length") or 0)
        if length > self.max_body:
            raise ValueError("request body too large")
        data = h.rfile.read(length) if length else b""
        if len(data) != length:
            raise OSError("the client sent a short body")
        return data

    def _forward(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.upstream_timeout)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
            out["Host"] = self._netloc
            out["Connection"] = "close"
            if body or method.upper() in ("POST", "PUT", "PATCH"):
                out["Content-Length"] = str(len(body))
            conn.request(method, self._prefix + target, body=body or None, headers=out)
            response = conn.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            return response.status, kept, payload  # type: ignore[return-value]
        finally:
            conn.close()

    @staticmethod
    def _reply(h: _Handler, status: int, headers: Any, payload: bytes) -> bool:
        """Send a complete answer; False when the client is gone."""
        try:
            h.send_response_only(status)
            items = headers.items() if isinstance(headers, dict) else headers
            for name, value in items:
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("Connection", "close")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
            h.wfile.flush()
            return True
        except OSError:
            return False

    @staticmethod
    def _client_gone(h: _Handler) -> bool:
        """Has the client closed its end (killed, or gave up) while we were busy?"""
        try:
            readable, _, _ = select.select([h.connection], [], [], 0)
            return bool(readable) and h.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    @staticmethod
    def _abort(h: _Handler, rst: bool) -> None:
        """Close the client's connection without answering (with a TCP reset when ``rst``)."""
        try:
            if rst:  # linger 0: close() sends RST; the file objects hold the socket open until closed
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                h.rfile.close()
                h.wfile.close()
                h.connection.close()
            else:
                h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        h.wfile = _Discard()  # BaseHTTPRequestHandler flushes wfile when it finishes: nothing may go out


class _Discard:
    """A write end that swallows everything (after a connection was deliberately cut)."""

    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
