"""Guarded HTTP for untrusted feeds and images: deadline, size cap, redirects, SSRF, conditional GET.

Feeds come from the open web, so every download is treated as hostile (SECURITY-RESEARCH A1–A5):

- **Whole-download deadline.** urllib3's timeout bounds each socket operation, not the download; a
  server dripping one byte every two seconds never trips it. Checking the clock between chunks does
  not help either, because a chunk read blocks until the chunk is full. SIGALRM only works in the
  main thread and we fetch from a thread pool. So every fetch has a watchdog that, when the
  deadline passes, calls ``shutdown()`` on each socket the fetch opened (one thread keeps every
  fetch's deadline). That wakes a read blocked
  in any thread at once (it sees end-of-file), and the fetch reports the deadline.
- **Size cap after decompression**, enforced while streaming decoded chunks (urllib3 ≥ 2.7 bounds
  each decompression step), and refused before reading when Content-Length is already too big.
- **Redirects followed by hand**, at most ``max_redirects``, each hop re-checked: http/https only,
  no loops, and the address check below.
- **SSRF guard with DNS pinning.** The host is normalised (NFKC/IDNA, then the browser rules that
  make ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` IPv4 addresses), resolved once per
  fetch, every address is checked, and the socket is connected to exactly those addresses by a
  urllib3 connection class whose ``_new_conn`` we override. The hostname stays the connection's
  host, so the Host header, TLS SNI and certificate verification all use the name, never the IP,
  and there is no second lookup for a DNS-rebinding answer to slip into.

Error messages name the host and path, never the query string or userinfo: feed URLs may carry
tokens. Exceptions from urllib3 (whose messages contain full URLs) are re-raised as our own with
``from None``, so tracebacks do not carry them either.

The transport is urllib3 itself, not requests: we already replace its connection classes, follow
redirects by hand and stream the body ourselves, so requests would add only a Session per fetch and
its import, which a sync that gets 304s for every feed feels (bench/why.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import http
import http.client
import ipaddress
import itertools
import logging
import re
import socket
import ssl
import sys
import threading
import time
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.response
import urllib3.util
import urllib3.util.response
import urllib3.util.ssl_

from . import urls

__all__ = [
    "BadURL",
    "BlockedAddress",
    "ConnectionFailed",
    "EmptyBody",
    "FetchError",
    "Fetcher",
    "HTTPStatusError",
    "RedirectError",
    "Response",
    "Timeout",
    "TooLarge",
    "TooManyRedirects",
    "blocked_reason",
    "ip_literal",
    "normalise_host",
]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Small enough that the cap is overshot by at most this much before we notice; large enough that a
# 10 MB feed is a few hundred Python-level iterations.
_CHUNK_SIZE = 64 * 1024
# What a download can raise besides our own errors; each is turned into a FetchError.
_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


# --------------------------------------------------------------------------------------- errors


class FetchError(Exception):
    """A download failed; ``str(e)`` is a short one-line reason for a person.

    ``url`` is where it failed, without userinfo, query or fragment (it may be None when the URL
    itself could not be understood).
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class BadURL(FetchError):
    """The URL (or a redirect's Location) is not an http(s) URL with a valid host."""


class BlockedAddress(FetchError):
    """The host is, or resolves to, a loopback, private, link-local or otherwise non-public address."""


class RedirectError(FetchError):
    """A redirect could not be followed: a loop, no Location, or too many hops."""


class TooManyRedirects(RedirectError):
    """More redirects than ``max_redirects``."""


class TooLarge(FetchError):
    """The body is larger than the cap (after decompression), or Content-Length says it would be."""


class Timeout(FetchError):
    """No data within the per-read timeout, or the whole download overran its deadline."""


class ConnectionFailed(FetchError):
    """The host could not be resolved or reached, TLS failed, or the connection broke mid-response."""


class EmptyBody(FetchError):
    """The server answered 2xx with no body at all."""


class HTTPStatusError(FetchError):
    """The server answered with an error status (4xx/5xx, or a 3xx we cannot follow)."""

    def __init__(
        self, status: int, *, url: str | None = None, retry_after: str | None = None, detail: str = ""
    ) -> None:
        phrase = _status_phrase(status)
        message = f"HTTP {status} {phrase}".rstrip() + (f" ({detail})" if detail else "")
        super().__init__(message, url=url)
        self.status = status
        # 429 and 503 say when to come back; the caller decides whether to wait (SPEC "Promises").
        self.retry_after = retry_after


def _status_phrase(status: int) -> str:
    # The server's own reason phrase is untrusted text of any length; use the standard one.
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


# ------------------------------------------------------------------------------------- response


@dataclass(frozen=True)
class Response:
    """A successful download: a 2xx with its decompressed body, or a 304 with an empty one."""

    url: str  # final URL after redirects (host canonicalised, userinfo and fragment dropped)
    status: int  # 200 (or another 2xx) or 304
    body: bytes  # decompressed; b"" for 304
    headers: Mapping[str, str] = field(repr=False)  # case-insensitive, read-only
    etag: str | None
    last_modified: str | None


# ------------------------------------------------------------------------ host and address rules

_HOSTNAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")

# Ranges Python's ipaddress flags do not all cover, or covers under a less helpful name.
_BLOCKED_V6_NETWORKS: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),  # reaches any IPv4 address, private ones too
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "NAT64 local-use"),
    (ipaddress.IPv6Network("2002::/16"), "6to4"),  # embeds an IPv4 address
    (ipaddress.IPv6Network("2001::/32"), "Teredo"),  # embeds an IPv4 address
    (ipaddress.IPv6Network("fc00::/7"), "unique-local"),
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),  # deprecated ::a.b.c.d
)
_SHARED_V4 = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT


def normalise_host(host: str) -> str:
    """The canonical ASCII form of a URL host, as a browser would connect to it.

    Read by the one URL parser (``urls.host_of``, the WHATWG host parser): Unicode hosts are
    IDNA-encoded (so ``⑯⑨。②⑤④。⑯⑨｡②⑤④`` becomes ``169.254.169.254``); a host that ends in a
    number is an IPv4 address in whatever radix and however many parts (so ``2130706433``,
    ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` all become ``127.0.0.1``); percent-encoded hosts are
    decoded; IPv6 literals (with or without brackets) are compressed. On top of what a browser
    accepts we refuse what DNS cannot name (empty or over-long labels). No DNS lookup happens here.
    Raises BadURL for anything that is not a valid host.
    """
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in text:
        text = f"[{text}]"  # an IPv6 literal, as it is written in a URL
    parsed = urls.host_of(text)
    if parsed is None:
        raise BadURL(f"invalid host: {_printable(host)}")
    return _dns_host(parsed, host)


def _dns_host(parsed: str, written: str) -> str:
    """A host from the URL parser, checked as a DNS name (or an address) that we can connect to."""
    if parsed.startswith("["):
        return parsed[1:-1]
    # One trailing dot means "fully qualified"; the address is the same, and certificates and
    # virtual hosts are written without it.
    text = parsed[:-1] if parsed.endswith(".") else parsed
    labels = text.split(".")
    if not _HOSTNAME.fullmatch(text) or len(text) > 253 or any(len(label) > 63 for label in labels):
        raise BadURL(f"invalid host: {_printable(written)}")
    return text


def ip_literal(host: str) -> IPAddress | None:
    """The address a normalised host names directly, or None when it is a name needing DNS."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why an untrusted URL may not reach this address ("loopback", "private", …), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%")[0])
        mapped = address.ipv4_mapped
        if mapped is not None:
            # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket.
            return blocked_reason(mapped)
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address):
        for network, name in _BLOCKED_V6_NETWORKS:
            if address in network:
                return name
    elif address in _SHARED_V4:
        return "shared (CGNAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


# ------------------------------------------------------------------------------------ URL parts


@dataclass(frozen=True)
class _Target:
    """One hop's URL, checked and rebuilt with the canonical host."""

    url: str  # what we request: canonical host, no fragment
    public: str  # the same without userinfo: what Response.url reports (it may become a base URL)
    scheme: str
    host: str  # normalise_host() form; an IPv6 literal without brackets
    port: int
    shown: str  # for messages: scheme://host[:port]/path, no userinfo, query or fragment
    userinfo: str = ""  # "user:password" from the URL, percent-decoded (sent as Basic auth)


def _target(url: str, *, redirect: bool) -> _Target:
    """Check the scheme and host of ``url`` and rebuild it around the canonical host.

    The URL is read by ``urls.parse`` as a browser reads it (``http://127.0.0.1\\@evil.example/``
    is on 127.0.0.1, tabs and newlines are dropped, ``0x7f.1`` is 127.0.0.1), and what we request is
    built from that reading: the host we check is the host we connect to.
    """
    what = "redirect to " if redirect else ""
    # The URL a message shows is made only for a message: masking and cleaning it is most of the
    # cost of this function, and a hop that passes every check never shows it.
    parts = urls.parse(url)
    if parts is None:
        raise BadURL(f"{what}an invalid URL refused", url=_shown(url))
    scheme = parts.scheme
    if scheme not in ("http", "https"):
        # file:, ftp:, data:, gopher:… would let a feed read local files or reach other services.
        shown_scheme = f"{_printable(scheme[:20])}:" if scheme else "no scheme"
        raise BadURL(f"{what}a non-http(s) URL refused ({shown_scheme})", url=_shown(parts.href))
    if not parts.host:
        raise BadURL(f"{what}a URL without a host refused", url=_shown(parts.href))
    try:
        host = _dns_host(parts.host, parts.host)
    except BadURL as error:
        raise BadURL(f"{what}{error}", url=_shown(parts.href)) from None
    port = parts.effective_port or (443 if scheme == "https" else 80)
    url_host = f"[{host}]" if ":" in host else host
    default_port = parts.port is None
    host_port = url_host if default_port else f"{url_host}:{port}"
    userinfo = parts.username + (f":{parts.password}" if parts.password else "")
    netloc = f"{userinfo}@{host_port}" if userinfo else host_port
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return _Target(
        url=f"{scheme}://{netloc}{path}{query}",
        public=f"{scheme}://{host_port}{path}{query}",
        scheme=scheme,
        host=host,
        port=port,
        shown=f"{scheme}://{host_port}{path}",
        userinfo=f"{unquote(parts.username)}:{unquote(parts.password)}" if userinfo else "",
    )


def _shown(url: str) -> str:
    """``url`` for a message: no userinfo, query or fragment (they may carry tokens)."""
    parsed = urls.parse(url)
    if parsed is not None:
        port = f":{parsed.port}" if parsed.port is not None else ""
        authority = f"//{parsed.host}{port}" if parsed.host else ""
        return _printable(f"{parsed.scheme}:{authority}{parsed.path}")
    try:  # not a URL: shown as Python splits it, for the message only
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return _printable(urlunsplit(SplitResult(parts.scheme, netloc, parts.path, "", "")))
    except ValueError:
        return "(unparseable URL)"


def _printable(text: str) -> str:
    """Text from the network made safe for a one-line message: no control characters, bounded."""
    from .redact import shorten  # masked before it is cut: a cut secret escapes the mask

    return shorten("".join(c if c.isprintable() else "?" for c in text), 200)


def _megabytes(size: int) -> str:
    """A byte count as people say it: 10 MB, 1.5 MB, 200 KB, 512 bytes."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:g} MB" if size % 100_000 == 0 else f"{size / 1_000_000:.1f} MB"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000} KB"
    return f"{size} bytes"


# ------------------------------------------------------------------ watchdog and pinned sockets


class _Deadlines:
    """The one thread that fires each watchdog when its deadline passes.

    One thread for the process rather than a timer thread per fetch: starting and joining a thread
    per download was a large part of a sync whose feeds all answer 304 (bench/why.md).
    Watchdogs wait in a heap by deadline; a stopped one is dropped when it reaches the head.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: list[tuple[float, int, _Watchdog]] = []  # (deadline, arrival, watchdog), a heap
        self._arrivals = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, watchdog: _Watchdog) -> None:
        """Fire ``watchdog`` at its deadline (unless it is stopped first)."""
        with self._changed:
            self._drop_stopped()
            heapq.heappush(self._waiting, (watchdog.expires_at, next(self._arrivals), watchdog))
            if self._thread is None:
                # A daemon: it never keeps the process alive, and has nothing to finish.
                self._thread = threading.Thread(target=self._run, name="syndicate-fetch-deadlines", daemon=True)
                self._thread.start()
            if self._waiting[0][2] is watchdog:
                # The thread sleeps until the earliest deadline it knows: only an earlier one must wake
                # it. (Fetches mostly share one deadline length, so a new one is mostly the latest.)
                self._changed.notify()

    def _drop_stopped(self) -> None:
        """Forget the stopped watchdogs at the head of the heap (the lock is held)."""
        while self._waiting and self._waiting[0][2].stopped:
            heapq.heappop(self._waiting)

    def _next_due(self) -> _Watchdog:
        """Wait for the earliest deadline of a watchdog still running; that watchdog."""
        with self._changed:
            while True:
                self._drop_stopped()
                if not self._waiting:
                    self._changed.wait()
                    continue
                wait = self._waiting[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._waiting)[2]
                self._changed.wait(wait)

    def _run(self) -> None:
        while True:
            self._next_due().fire()


_DEADLINES = _Deadlines()


class _Watchdog:
    """Shuts down every socket of one fetch when its deadline passes (fired by ``_DEADLINES``).

    ``shutdown()`` (unlike ``close()``) wakes a ``recv`` blocked in another thread, which then sees
    end-of-file. We hold a ``dup()`` of each socket because ``ssl.wrap_socket`` detaches the
    original object, and shutdown acts on the kernel socket whichever descriptor names it. All of
    this happens under one lock, and the duplicates are closed only in ``stop()``, so the timer can
    never shut down a descriptor number that was reused by someone else.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._handles: list[socket.socket] = []
        self._fired = False
        self._stopped = False
        _DEADLINES.add(self)

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once past it)."""
        return self.expires_at - time.monotonic()

    @property
    def stopped(self) -> bool:
        """True once ``stop`` was called: the deadline no longer matters."""
        return self._stopped

    @property
    def fired(self) -> bool:
        """True once the deadline passed and the sockets were shut down."""
        return self._fired

    @property
    def expired(self) -> bool:
        """True once the deadline has passed, whether or not the timer has run yet."""
        return self._fired or self.remaining() <= 0

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once if it has already passed)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("watchdog already stopped")
            # A plain socket on a duplicate descriptor (SSLSocket.dup() is refused; this works for both).
            handle = socket.fromfd(sock.fileno(), sock.family, sock.type)
            self._handles.append(handle)
            if self._fired:
                _shutdown(handle)

    def fire(self) -> None:
        """The deadline passed: shut down every socket (nothing, once stopped)."""
        with self._lock:
            if self._stopped:
                return
            self._fired = True
            for handle in self._handles:
                _shutdown(handle)
        log.debug("deadline of %g s passed; %d socket(s) shut down", self.seconds, len(self._handles))

    def stop(self) -> None:
        """Release the duplicated sockets; from now on the deadline does nothing.

        Under the lock, so a ``fire`` running now either finished first or finds the watchdog stopped."""
        with self._lock:
            self._stopped = True
            handles, self._handles = self._handles, []
            for handle in handles:
                handle.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or already closed by the peer: nothing left to wake


@dataclass
class _Call:
    """What one ``Fetcher.get`` shares with the connections it opens."""

    watchdog: _Watchdog
    # host → the (family, address) pairs resolved and checked for it, in connection order.
    addresses: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    connections: list[urllib3.connection.HTTPConnection] = field(default_factory=list)
    # Connections urllib3 handed back to their pool during the fetch: they go back only in close(),
    # once the watchdog can no longer shut their sockets down under another fetch.
    returning: list[tuple[_PinnedPool, urllib3.connection.HTTPConnection]] = field(default_factory=list)

    def close(self) -> None:
        """Close every connection this fetch opened and stop its watchdog.

        Session.close() is not enough: urllib3 ≥ 2.8 leaves pooled connections to be closed by
        the garbage collector, and a FetchError's traceback keeps them reachable, so a server
        would see the connection stay open for as long as the caller holds the error.
        """
        returning = {id(conn) for _pool, conn in self.returning}
        for connection in self.connections:
            if id(connection) not in returning:
                connection.close()
        self.watchdog.stop()
        for pool, connection in self.returning:
            pool.put_back(connection)

    def resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        """The host's addresses, looked up once per fetch (later hops reuse the first answer)."""
        cached = self.addresses.get(host)
        if cached is not None:
            return cached
        literal = ip_literal(host)
        found: list[tuple[int, str]] = []
        if literal is not None:
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            found.append((family, str(literal)))
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                raise ConnectionFailed(f"cannot resolve {host}") from None
            for family, _type, _proto, _canonname, sockaddr in infos:
                pair = (int(family), str(sockaddr[0]))
                if family in (socket.AF_INET, socket.AF_INET6) and pair not in found:
                    found.append(pair)
            if not found:
                raise ConnectionFailed(f"cannot resolve {host}")
        self.addresses[host] = found
        return found


# The fetch running in this thread (or task). The connection classes below read it to learn which
# addresses they may connect to and which watchdog to register with; a connection opened outside
# Fetcher.get finds nothing and refuses, so the guard fails closed.
_CURRENT_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("syndicate_fetch_call", default=None)


def _open_pinned_socket(conn: urllib3.connection.HTTPConnection) -> socket.socket:
    """Connect to the addresses checked for ``conn.host`` (never a fresh DNS answer)."""
    call = _CURRENT_CALL.get()
    if call is None:
        raise urllib3.exceptions.NewConnectionError(conn, "refused: connection outside Fetcher.get")
    addresses = call.addresses.get(conn.host)
    if not addresses:
        raise urllib3.exceptions.NewConnectionError(conn, "refused: host was not resolved and checked")
    call.connections.append(conn)
    last_error: OSError | None = None
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # Registered before connecting, so the deadline also covers connect and TLS handshake.
            call.watchdog.watch(sock)
            for level, option, value in conn.socket_options or ():
                sock.setsockopt(level, option, value)
            if isinstance(conn.timeout, (int, float)):
                sock.settimeout(conn.timeout)
            sock.connect((address, conn.port))
        except TimeoutError:
            sock.close()
            raise urllib3.exceptions.ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from None
        except OSError as error:
            sock.close()
            last_error = error
            continue
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock
    raise urllib3.exceptions.NewConnectionError(
        conn, f"Failed to establish a new connection: {last_error}"
    ) from last_error


class _MalformedHeaders(urllib3.exceptions.HTTPError):
    """The response's header block could not be parsed whole (a bare CR, a line without a colon…)."""


#: The warnings urllib3 logs about a response's header block, then carries on regardless.
_HEADER_WARNINGS = ("Failed to parse headers", "Received response with both Content-Length and Transfer-Encoding")


def _drop_header_warning(record: logging.LogRecord) -> bool:
    """urllib3 logs a header block it cannot parse as a warning, with a traceback and the full URL
    (query string and its tokens included), even under ``-q``, then goes on with the headers it
    could read. Our connections refuse such a response instead (``_checked_response``), so the
    warning is dropped here and the feed gets one line of its own."""
    return not (isinstance(record.msg, str) and record.msg.startswith(_HEADER_WARNINGS))


for _name in ("urllib3.connection", "urllib3.response"):
    logging.getLogger(_name).addFilter(_drop_header_warning)


def _checked_response(response: urllib3.response.HTTPResponse) -> urllib3.response.HTTPResponse:
    """The response, unless http.client left part of its header block unparsed.

    A header block http.client cannot parse whole is cut short where it stopped: the headers after
    a bare CR (Content-Length, Content-Encoding…) are silently lost, and the body is then read by
    other rules than the server meant. Such a response is refused, not guessed at."""
    original = getattr(response, "_original_response", None)
    message = getattr(original, "msg", None)
    if isinstance(message, http.client.HTTPMessage):
        try:
            urllib3.util.response.assert_header_parsing(message)
        except urllib3.exceptions.HeaderParsingError:
            response.close()
            raise _MalformedHeaders("malformed response headers (a bare CR, or a line that is not a header)") from None
    if "Content-Length" in response.headers and "Transfer-Encoding" in response.headers:
        # Two framings for one body is how responses are smuggled; RFC 9112 says to treat it as an error.
        response.close()
        raise _MalformedHeaders("malformed response headers (both Content-Length and Transfer-Encoding)")
    return response


class _PinnedHTTPConnection(urllib3.connection.HTTPConnection):
    """An HTTP connection to the pre-checked addresses; Host header from the hostname."""

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        return _checked_response(super().getresponse())


class _PinnedHTTPSConnection(urllib3.connection.HTTPSConnection):
    """An HTTPS connection to the pre-checked addresses; SNI and certificate check use the hostname."""

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        return _checked_response(super().getresponse())


def _watch_reused(conn: urllib3.connection.HTTPConnection) -> urllib3.connection.HTTPConnection:
    """A kept-alive connection taken from the pool: the current fetch's deadline covers it too."""
    call = _CURRENT_CALL.get()
    if call is None:
        conn.close()  # fails closed, as a new connection would: it then refuses to connect
    elif conn.sock is not None:
        call.watchdog.watch(conn.sock)
    return conn


def _defer_put(pool: Any, conn: urllib3.connection.HTTPConnection | None) -> bool:
    """During a fetch, hold a finished connection back from its pool until the fetch ends."""
    call = _CURRENT_CALL.get()
    if call is None or conn is None:
        return False
    call.returning.append((pool, conn))
    return True


class _PinnedPool:
    """What both pinned connection pools add to urllib3's: the watchdog covers a reused connection,
    and a finished one goes back to the pool only when its fetch has ended (``_Call.close``)."""

    def _get_conn(self, timeout: float | None = None) -> urllib3.connection.HTTPConnection:
        return _watch_reused(super()._get_conn(timeout))  # type: ignore[misc]

    def _put_conn(self, conn: urllib3.connection.HTTPConnection | None) -> None:
        if not _defer_put(self, conn):
            super()._put_conn(conn)  # type: ignore[misc]

    def put_back(self, conn: urllib3.connection.HTTPConnection) -> None:
        super()._put_conn(conn)  # type: ignore[misc]


class _PinnedHTTPConnectionPool(_PinnedPool, urllib3.connectionpool.HTTPConnectionPool):  # type: ignore[misc]
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(_PinnedPool, urllib3.connectionpool.HTTPSConnectionPool):  # type: ignore[misc]
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedPoolManager(urllib3.PoolManager):
    """A pool manager whose connections go only where the current fetch checked.

    No proxies: urllib3 never reads them from the environment, and a proxy would make the
    connection (and the DNS lookup) somewhere we never checked.
    """

    def __init__(self, maxsize: int = 1) -> None:
        super().__init__(num_pools=4 if maxsize == 1 else 64, maxsize=maxsize, retries=False)
        self.pool_classes_by_scheme = {"http": _PinnedHTTPConnectionPool, "https": _PinnedHTTPSConnectionPool}

    def _new_pool(self, scheme: str, host: str, port: int,
                  request_context: dict[str, Any] | None = None) -> urllib3.HTTPConnectionPool:
        # The CA bundle is loaded when the first HTTPS pool is made (it is slow to load): a run that
        # only reads http:// feeds never pays for it.
        if scheme == "https":
            request_context = dict(self.connection_pool_kw if request_context is None else request_context)
            request_context["ssl_context"] = _tls_context()
        return super()._new_pool(scheme, host, port, request_context)


_TLS_LOCK = threading.Lock()
_TLS_CONTEXT: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, trusting certifi's CA bundle (as requests does).

    Loading the bundle is slow (bench/RESULTS.md), so it is done once, when the first HTTPS pool is
    made, not once per connection; the context is only read afterwards, which is safe across threads.
    """
    global _TLS_CONTEXT
    with _TLS_LOCK:
        if _TLS_CONTEXT is None:
            import certifi

            context = urllib3.util.ssl_.create_urllib3_context()  # CERT_REQUIRED, check_hostname
            context.load_verify_locations(certifi.where())
            _TLS_CONTEXT = context
        return _TLS_CONTEXT


# -------------------------------------------------------------------------------------- fetcher


class Fetcher:
    """Downloads feeds and images under the guards described in this module's docstring.

    Thread-safe: each ``get`` has its own watchdog, so one Fetcher can be shared by a
    ThreadPoolExecutor. Only the operator's own URLs (``trusted=True``, first hop) share connections,
    kept alive between calls in a pool of their own: a socket opened for a trusted URL is never reused
    for an untrusted one, and redirects and untrusted URLs get fresh connections, each to the
    addresses checked for it.
    """

    def __init__(
        self,
        *,
        timeout: float = 10,
        deadline: float = 30,
        max_bytes: int = 10_000_000,
        allow_private: bool = False,
        user_agent: str = "syndicate",
        max_redirects: int = 3,
    ) -> None:
        """Set the limits: ``timeout`` per connect and per read, ``deadline`` for a whole download
        (redirects included), ``max_bytes`` after decompression, and whether URLs from feeds may
        reach private addresses."""
        if timeout <= 0 or deadline <= 0:
            raise ValueError("timeout and deadline must be positive")
        if max_bytes <= 0 or max_redirects < 0:
            raise ValueError("max_bytes must be positive and max_redirects not negative")
        self.timeout = float(timeout)
        self.deadline = float(deadline)
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.user_agent = user_agent
        self.max_redirects = max_redirects
        self._closed = False
        self._trusted_pool: _PinnedPoolManager | None = None  # created on the first trusted fetch
        self._pool_lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Refuse further downloads and close the kept-alive connections."""
        self._closed = True
        with self._pool_lock:
            if self._trusted_pool is not None:
                self._trusted_pool.clear()
                self._trusted_pool = None

    def _keep_alive_pool(self) -> _PinnedPoolManager:
        with self._pool_lock:
            if self._trusted_pool is None:
                self._trusted_pool = _PinnedPoolManager(maxsize=64)  # [network] concurrency is at most 64
            return self._trusted_pool

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        trusted: bool = False,
        accept: str | None = None,
        max_bytes: int | None = None,
    ) -> Response:
        """Download ``url`` and return its decompressed body, or a 304 when the conditions hold.

        ``trusted=True`` is for the operator's own configured URL: that first URL may reach any
        address; every redirect from it is still checked. ``etag``/``last_modified`` are sent as
        If-None-Match/If-Modified-Since. ``accept`` sets the Accept header, ``max_bytes``
        overrides the cap for this download. Raises a FetchError subclass on any failure.
        """
        if self._closed:
            raise RuntimeError("Fetcher is closed")
        cap = self.max_bytes if max_bytes is None else max_bytes
        call = _Call(_Watchdog(self.deadline))
        token = _CURRENT_CALL.set(call)
        manager = _PinnedPoolManager()
        first = self._keep_alive_pool() if trusted else manager
        headers = {
            "User-Agent": self.user_agent,
            "Accept": accept or "*/*",
            # Only gzip: every decoder is a decompression-bomb surface, gzip is what feeds use.
            "Accept-Encoding": "gzip",
        }
        try:
            return self._follow(manager, call, url, headers=headers, etag=etag, last_modified=last_modified,
                                trusted=trusted, cap=cap, first=first)
        finally:
            _CURRENT_CALL.reset(token)
            call.close()
            manager.clear()

    def _follow(
        self,
        manager: _PinnedPoolManager,
        call: _Call,
        url: str,
        *,
        headers: dict[str, str],
        etag: str | None,
        last_modified: str | None,
        trusted: bool,
        cap: int,
        first: _PinnedPoolManager,
    ) -> Response:
        conditions: dict[str, str] = {}
        if etag:
            conditions["If-None-Match"] = etag
        if last_modified:
            conditions["If-Modified-Since"] = last_modified
        headers = {**headers, **conditions}
        visited: set[str] = set()
        current = url
        redirects = 0
        while True:
            redirected = redirects > 0
            target = _target(current, redirect=redirected)
            if target.url in visited:
                raise RedirectError(f"redirect loop ({target.shown})", url=target.shown)
            visited.add(target.url)
            addresses = call.resolve(target.host, target.port)
            if (redirected or not trusted) and not self.allow_private:
                _check_addresses(target, addresses, redirected=redirected)
            log.debug("GET %s", target.shown)
            keep_alive = first is not manager and not redirected
            response = self._send(first if keep_alive else manager, call, target, headers)
            with contextlib.closing(response):
                status = response.status
                if status in _REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise RedirectError(f"redirect without a Location ({target.shown})", url=target.shown)
                    if redirects >= self.max_redirects:
                        raise TooManyRedirects(
                            f"too many redirects (more than {self.max_redirects})", url=target.shown
                        )
                    # Resolved as a browser resolves it (``/\\evil.example`` is on evil.example); checked
                    # again by _target at the top of the loop.
                    next_url = urls.parse(_decode_header(location), target.url)
                    if next_url is None:
                        raise BadURL("redirect to an invalid URL refused", url=target.shown)
                    current = next_url.href
                    redirects += 1
                    continue
                if status == 304:
                    if not conditions:
                        raise HTTPStatusError(304, url=target.shown, detail="nothing was asked conditionally")
                    response.drain_conn()  # an empty body, read out: the connection may be reused
                    return Response(
                        url=target.public,
                        status=304,
                        body=b"",
                        headers=_frozen_headers(response.headers),
                        etag=response.headers.get("ETag") or etag,
                        last_modified=response.headers.get("Last-Modified") or last_modified,
                    )
                if not 200 <= status < 300 or status == 206:
                    # 206: we never ask for a range, so a partial body would be a truncated feed.
                    raise HTTPStatusError(status, url=target.shown, retry_after=response.headers.get("Retry-After"))
                body = self._read_body(response, call, target, cap)
                if not body:
                    raise EmptyBody("empty body", url=target.shown)
                return Response(
                    url=target.public,
                    status=status,
                    body=body,
                    headers=_frozen_headers(response.headers),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                )

    def _send(
        self, manager: _PinnedPoolManager, call: _Call, target: _Target, headers: dict[str, str]
    ) -> urllib3.BaseHTTPResponse:
        remaining = call.watchdog.remaining()
        if remaining <= 0:
            raise self._deadline_error(target)
        # Each connect/read waits at most the per-read timeout, and never past the deadline; the
        # watchdog covers what a per-read timeout cannot (a slow drip that keeps every read short).
        limit = min(self.timeout, remaining)
        if target.userinfo:  # user:password@ in the URL is sent as Basic auth to that host only
            headers = {**headers, **urllib3.util.make_headers(basic_auth=target.userinfo)}
        try:
            return manager.urlopen(
                "GET", target.public, headers=headers, redirect=False, retries=False, preload_content=False,
                decode_content=True, timeout=urllib3.Timeout(connect=limit, read=limit), release_conn=False,
            )
        except _NETWORK_ERRORS as error:
            raise self._network_error(error, call, target) from None

    def _read_body(self, response: urllib3.BaseHTTPResponse, call: _Call, target: _Target, cap: int) -> bytes:
        encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise TooLarge(
                f"too large: Content-Length {_megabytes(int(declared))} is over the {_megabytes(cap)} cap",
                url=target.shown,
            )
        body = bytearray()
        try:
            # stream() yields decoded bytes, and urllib3 ≥ 2.7 bounds each decompression step, so
            # memory never grows much beyond the cap however well the body compresses.
            for chunk in response.stream(_CHUNK_SIZE, decode_content=True):
                if len(body) + len(chunk) > cap:
                    if encoded:
                        raise TooLarge(f"bomb: larger than {_megabytes(cap)} after decompression", url=target.shown)
                    raise TooLarge(f"too large: more than {_megabytes(cap)}", url=target.shown)
                body += chunk
        except _NETWORK_ERRORS as error:
            raise self._network_error(error, call, target) from None
        if call.watchdog.fired:
            # A shutdown looks like a clean end to a body delimited by closing the connection.
            raise self._deadline_error(target)
        return bytes(body)

    def _deadline_error(self, target: _Target) -> Timeout:
        return Timeout(f"timed out after {self.deadline:g} s (deadline)", url=target.shown)

    def _network_error(self, error: BaseException, call: _Call, target: _Target) -> FetchError:
        """Our own one-line error for a urllib3/socket exception (theirs contain full URLs)."""
        if call.watchdog.expired:
            return self._deadline_error(target)
        chain = list(_exception_chain(error))
        where = f"{target.host}:{target.port}"
        # urllib3's NewConnectionError subclasses ConnectTimeoutError (history), hence the exclusion.
        if any(
            isinstance(e, urllib3.exceptions.ConnectTimeoutError)
            and not isinstance(e, urllib3.exceptions.NewConnectionError)
            for e in chain
        ):
            return Timeout(f"timed out after {self.timeout:g} s (connect to {where})", url=target.shown)
        if any(isinstance(e, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) for e in chain):
            return Timeout(f"timed out after {self.timeout:g} s (no data)", url=target.shown)
        if isinstance(error, urllib3.exceptions.DecodeError):
            return ConnectionFailed("body could not be decompressed", url=target.shown)
        malformed = next((e for e in chain if isinstance(e, _MalformedHeaders)), None)
        if malformed is not None:
            return ConnectionFailed(f"{malformed} from {where}", url=target.shown)
        tls = next((e for e in chain if isinstance(e, (ssl.SSLError, ssl.CertificateError))), None)
        if tls is not None:
            reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or type(tls).__name__
            return ConnectionFailed(f"TLS error with {where}: {_printable(str(reason))}", url=target.shown)
        refused = next((e for e in chain if isinstance(e, OSError) and e.strerror), None)
        if refused is not None:
            assert refused.strerror is not None
            return ConnectionFailed(f"connection to {where} failed: {refused.strerror.lower()}", url=target.shown)
        if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
            return ConnectionFailed(f"connection to {where} failed", url=target.shown)
        return ConnectionFailed(f"connection to {where} broken ({type(chain[-1]).__name__})", url=target.shown)


def _check_addresses(target: _Target, addresses: list[tuple[int, str]], *, redirected: bool) -> None:
    """Refuse the hop if any resolved address is not public (one bad answer is enough to refuse)."""
    for _family, address in addresses:
        reason = blocked_reason(ipaddress.ip_address(address))
        if reason is not None:
            what = "redirect to a private address refused" if redirected else "private address refused"
            named = address if address == target.host else f"{target.host} is {address}"
            raise BlockedAddress(f"{what} ({named}, {reason})", url=target.shown)


def _exception_chain(error: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, and urllib3's ``reason``/args."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(e for e in inner if isinstance(e, BaseException))


def _decode_header(value: str) -> str:
    # http.client decodes headers as Latin-1; servers mostly send UTF-8 (as requests assumes too).
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _frozen_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    """A read-only, case-insensitive copy of the response headers."""
    return types.MappingProxyType(urllib3.HTTPHeaderDict(headers))
