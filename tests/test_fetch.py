"""The fetcher against real hostile servers on 127.0.0.1: every case from SECURITY-RESEARCH A and E.

Each test starts its own server on an ephemeral port and stops it (joining its threads). Time is
bounded by small deadlines and caps, not by a pytest plugin; slow cases assert their own timing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import resource
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import traceback
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.fetch import (
    BadURL,
    BlockedAddress,
    ConnectionFailed,
    EmptyBody,
    Fetcher,
    FetchError,
    HTTPStatusError,
    RedirectError,
    Response,
    Timeout,
    TooLarge,
    TooManyRedirects,
    _Watchdog,
    blocked_reason,
    ip_literal,
    normalise_host,
)

from .hostile_server import Handler, HostileServer, RawServer

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


@pytest.fixture
def other_server() -> Iterator[HostileServer]:
    """A second server: the internal service a redirect must never reach."""
    with HostileServer() as running:
        yield running


def local_fetcher(**options: Any) -> Fetcher:
    """A fetcher with small limits, allowed to reach the test servers on loopback."""
    settings: dict[str, Any] = {"timeout": 5, "deadline": 3, "max_bytes": 1_000_000, "allow_private": True}
    settings.update(options)
    return Fetcher(**settings)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: Callable[[str, int], str]) -> list[str]:
    """Replace getaddrinfo by ``answers(host, call_number)``; returns the list of looked-up hosts."""
    looked_up: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        looked_up.append(host)
        address = answers(host, len(looked_up))
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any DNS lookup or outgoing connection fail the test."""

    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"DNS lookup of {args[0]!r}")

    def no_connect(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"connection to {address!r}")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket.socket, "connect", no_connect)


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``function``; return (its result or the exception it raised, seconds taken)."""
    start = time.monotonic()
    try:
        result: Any = function()
    except Exception as error:  # noqa: BLE001 (the tests inspect it)
        result = error
    return result, time.monotonic() - start


# ------------------------------------------------------------------------ normal and conditional


def test_200_with_validators_then_304_on_the_conditional_request(server: HostileServer) -> None:
    @server.route("/feed")
    def feed(handler: Handler) -> None:
        if handler.headers.get("If-None-Match") == '"v1"':
            handler.reply(304, b"", {"ETag": '"v1"'})
        else:
            handler.reply(
                200,
                gzip.compress(FEED),
                {
                    "Content-Type": "application/rss+xml",
                    "Content-Encoding": "gzip",
                    "ETag": '"v1"',
                    "Last-Modified": "Tue, 25 Nov 2025 10:00:00 GMT",
                },
            )

    fetcher = local_fetcher(user_agent="syndicate-test/1")
    first = fetcher.get(server.url("/feed"), accept="application/rss+xml")
    assert first.status == 200
    assert first.body == FEED  # gzip decoded
    assert first.url == server.url("/feed")
    assert first.etag == '"v1"'
    assert first.last_modified == "Tue, 25 Nov 2025 10:00:00 GMT"
    assert first.headers["content-type"] == first.headers["Content-Type"] == "application/rss+xml"
    with pytest.raises(TypeError):
        first.headers["X"] = "y"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.body = b""  # type: ignore[misc]

    second = fetcher.get(server.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert second == Response(
        url=server.url("/feed"), status=304, body=b"", headers=second.headers,
        etag='"v1"', last_modified="Tue, 25 Nov 2025 10:00:00 GMT",
    )  # fmt: skip
    sent_first, sent_second = (seen.headers for seen in server.seen)
    assert sent_first["user-agent"] == "syndicate-test/1"
    assert sent_first["accept-encoding"] == "gzip"
    assert sent_first["accept"] == "application/rss+xml"
    assert "if-none-match" not in sent_first
    assert sent_second["if-none-match"] == '"v1"'
    assert sent_second["if-modified-since"] == "Tue, 25 Nov 2025 10:00:00 GMT"
    assert "authorization" not in sent_second and "cookie" not in sent_second


def test_html_instead_of_xml_is_returned_as_is(server: HostileServer) -> None:
    page = b"<!doctype html><html><body>Not a feed</body></html>"
    server.routes["/feed"] = lambda h: h.reply(200, page, {"Content-Type": "text/html"})
    response = local_fetcher().get(server.url("/feed"))
    assert response.body == page
    assert response.headers["Content-Type"] == "text/html"


def test_empty_body_is_an_error(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(200, b"")
    with pytest.raises(EmptyBody, match="^empty body$"):
        local_fetcher().get(server.url("/feed"))


@pytest.mark.parametrize(("status", "message"), [(500, "HTTP 500 Internal Server Error"), (404, "HTTP 404 Not Found")])
def test_error_status_raises_with_status_and_reason(server: HostileServer, status: int, message: str) -> None:
    server.routes["/feed"] = lambda h: h.reply(status, b"oops")
    with pytest.raises(HTTPStatusError) as caught:
        local_fetcher().get(server.url("/feed"))
    assert caught.value.status == status
    assert str(caught.value) == message


def test_corrupt_gzip_is_an_error(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(200, b"\x1f\x8b not gzip at all", {"Content-Encoding": "gzip"})
    with pytest.raises(ConnectionFailed, match="^body could not be decompressed$"):
        local_fetcher().get(server.url("/feed"))


def test_503_carries_retry_after(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(503, b"busy", {"Retry-After": "120"})
    with pytest.raises(HTTPStatusError) as caught:
        local_fetcher().get(server.url("/feed"))
    assert (caught.value.status, caught.value.retry_after) == (503, "120")


# ----------------------------------------------------------------------------- size and bombs


@pytest.fixture(scope="module")
def bombs() -> dict[int, bytes]:
    """200 MB of zeros as gzip (~200 KB), and that gzipped again (a few hundred bytes).

    Twenty identical 10 MB gzip members back to back: a valid gzip stream (RFC 1952 allows
    several members) that takes milliseconds to build instead of compressing 200 MB.
    """
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    megabyte = bytes(1 << 20)
    member = b"".join(compressor.compress(megabyte) for _ in range(10)) + compressor.flush()
    once = member * 20
    return {1: once, 2: gzip.compress(once, 9)}


@pytest.mark.parametrize("layers", [1, 2], ids=["gzip-200KB", "gzip-of-gzip-few-KB"])
def test_gzip_bomb_refused_quickly_with_memory_bounded(
    server: HostileServer, bombs: dict[int, bytes], layers: int
) -> None:
    bomb = bombs[layers]
    assert len(bomb) < (250_000 if layers == 1 else 10_000)
    encoding = ", ".join(["gzip"] * layers)
    server.routes["/feed"] = lambda h: h.reply(200, bomb, {"Content-Encoding": encoding})

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    try:
        error, seconds = timed(lambda: local_fetcher().get(server.url("/feed")))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before

    assert isinstance(error, TooLarge)
    assert str(error) == "bomb: larger than 1 MB after decompression"
    assert seconds < 2
    assert peak < 6_000_000, f"peak Python allocation {peak} bytes for a 1 MB cap"
    assert rss_growth < 30_000, f"max RSS grew by {rss_growth} KiB"


def test_content_length_over_the_cap_refused_before_reading(server: HostileServer) -> None:
    @server.route("/feed")
    def huge(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "50000000")
        handler.end_headers()
        handler.wfile.write(b"<rss>")
        handler.wfile.flush()
        handler.wait(10)  # reading the body would block until the 5 s read timeout

    error, seconds = timed(lambda: local_fetcher().get(server.url("/feed")))
    assert isinstance(error, TooLarge)
    assert str(error) == "too large: Content-Length 50 MB is over the 1 MB cap"
    assert seconds < 1


def test_endless_chunked_body_stops_at_the_cap(server: HostileServer) -> None:
    @server.route("/feed")
    def endless(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * 16384
        while not handler.server.owner.stopping.is_set():
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    error, seconds = timed(lambda: local_fetcher().get(server.url("/feed")))
    assert isinstance(error, TooLarge)
    assert str(error) == "too large: more than 1 MB"
    assert seconds < 2


def test_max_bytes_can_be_lowered_per_call(server: HostileServer) -> None:
    server.routes["/img"] = lambda h: h.reply(200, b"x" * 1000)
    with pytest.raises(TooLarge, match="500 bytes cap"):
        local_fetcher().get(server.url("/img"), max_bytes=500)


# ----------------------------------------------------------------------------- time limits


def drip_body(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.drip(b"<" * 100, interval=2)


def test_drip_server_stopped_by_the_deadline_in_a_worker_thread(server: HostileServer) -> None:
    # A pool thread, as in a real sync: SIGALRM could not do this.
    server.routes["/feed"] = drip_body
    fetcher = local_fetcher(timeout=5, deadline=3)  # each byte comes well within the 5 s read timeout
    with ThreadPoolExecutor(max_workers=1) as pool:
        error, seconds = pool.submit(timed, lambda: fetcher.get(server.url("/feed"))).result()
    assert isinstance(error, Timeout)
    assert str(error) == "timed out after 3 s (deadline)"
    assert 2.9 <= seconds < 4


def test_drip_during_the_headers_is_stopped_by_the_deadline(server: HostileServer) -> None:
    @server.route("/feed")
    def slow_headers(handler: Handler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        handler.drip(b"a" * 1000, interval=1)

    error, seconds = timed(lambda: local_fetcher(timeout=5, deadline=2).get(server.url("/feed")))
    assert isinstance(error, Timeout)
    assert "(deadline)" in str(error)
    assert 1.9 <= seconds < 3


def test_deadline_covers_the_whole_redirect_chain(server: HostileServer) -> None:
    def slow_redirect(to: str) -> Callable[[Handler], None]:
        def route(handler: Handler) -> None:
            if not handler.wait(1.2):  # each hop is within the read timeout; the sum is not
                handler.redirect(to)

        return route

    server.routes.update({"/a": slow_redirect("/b"), "/b": slow_redirect("/c"), "/c": slow_redirect("/d")})
    error, seconds = timed(lambda: local_fetcher(timeout=5, deadline=2).get(server.url("/a")))
    assert isinstance(error, Timeout)
    assert "(deadline)" in str(error)
    assert 1.9 <= seconds < 3


def test_silent_server_hits_the_read_timeout(server: HostileServer) -> None:
    @server.route("/feed")
    def silent(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "10")
        handler.end_headers()
        handler.wfile.flush()
        handler.wait(10)

    error, seconds = timed(lambda: local_fetcher(timeout=0.5, deadline=5).get(server.url("/feed")))
    assert isinstance(error, Timeout)
    assert str(error) == "timed out after 0.5 s (no data)"
    assert seconds < 1.5


def test_concurrent_fetches_do_not_hold_each_other_up(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(200, FEED)
    server.routes["/drip"] = drip_body
    fetcher = local_fetcher(timeout=5, deadline=2)
    urls = [server.url("/drip")] * 2 + [server.url("/feed")] * 6
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda url: timed(lambda: fetcher.get(url)), urls))
    assert time.monotonic() - start < 3
    for error, _seconds in outcomes[:2]:
        assert isinstance(error, Timeout)
    for response, seconds in outcomes[2:]:
        assert isinstance(response, Response) and response.body == FEED
        assert seconds < 1


def test_no_thread_outlives_a_fetch(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(200, FEED)
    server.routes["/drip"] = drip_body
    before = set(threading.enumerate())
    fetcher = local_fetcher(deadline=1)
    for _ in range(5):
        fetcher.get(server.url("/feed"))
    with pytest.raises(Timeout):
        fetcher.get(server.url("/drip"))
    # Only the server's own handler threads may still be finishing (the drip notices on its next write),
    # besides the one thread that keeps every fetch's deadline (started by the first fetch of the process).
    new_threads = set(threading.enumerate()) - before
    assert all("process_request_thread" in thread.name or thread.name == "syndicate-fetch-deadlines"
               for thread in new_threads), new_threads


def test_fetches_start_no_thread_of_their_own(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # A thread started (and joined) per download was a third of a no-change sync's fetching time.
    server.routes["/feed"] = lambda h: h.reply(200, FEED)
    fetcher = local_fetcher(deadline=2)
    fetcher.get(server.url("/feed"))  # the process's deadline thread, if this is its first fetch
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        if "process_request_thread" not in thread.name:  # the test server's own handler threads
            started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(10):
        fetcher.get(server.url("/feed"))
    assert started == []


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.floats(0.02, 0.3), st.booleans()), min_size=1, max_size=12))
def test_each_watchdog_fires_at_its_own_deadline_unless_stopped(plan: list[tuple[float, bool]]) -> None:
    # Watchdogs of concurrent fetches with deadlines in any order, some stopped before theirs: each one
    # still running shuts its socket down once its deadline has passed, and a stopped one never does.
    pairs = [socket.socketpair() for _ in plan]
    try:
        dogs = []
        for (seconds, _stop), (ours, _theirs) in zip(plan, pairs):
            dog = _Watchdog(seconds)
            dog.watch(ours)
            dogs.append(dog)
        for dog, (_seconds, stop) in zip(dogs, plan):
            if stop:
                dog.stop()
        time.sleep(max(seconds for seconds, _ in plan) + 0.3)
        for dog, (seconds, stop), (ours, _theirs) in zip(dogs, plan, pairs):
            ours.setblocking(False)
            try:
                shut_down = ours.recv(1) == b""  # a shut-down socket reads end-of-file at once
            except BlockingIOError:
                shut_down = False
            assert shut_down is not stop, (seconds, stop)
            assert dog.fired is not stop
            dog.stop()
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(0.05, 0.4), min_size=1, max_size=8))
def test_a_watchdog_fires_on_time_behind_a_later_deadline(deadlines: list[float]) -> None:
    # The deadline thread sleeps until the earliest deadline it knows, and only an earlier one wakes it:
    # a short deadline arriving behind a long one (a slow feed's fetch still running) fires on time, not
    # when the long one comes up.
    long = _Watchdog(30)
    dogs = [_Watchdog(seconds) for seconds in deadlines]
    try:
        started = time.monotonic()
        for dog in sorted(dogs, key=lambda d: d.seconds):
            time.sleep(max(0.0, started + dog.seconds + 0.25 - time.monotonic()))
            assert dog.fired, (dog.seconds, deadlines)
        assert not long.fired
    finally:
        long.stop()
        for dog in dogs:
            dog.stop()


def test_stopped_watchdogs_do_not_pile_up_while_the_deadline_thread_sleeps() -> None:
    # Each new watchdog drops the stopped ones at the head of the queue: a run of many quick fetches
    # keeps it short, although the thread is not woken for deadlines later than the one it waits for.
    # (Behind a fetch still running, stopped ones wait for its deadline, as they always did.)
    from syndicate.fetch import _DEADLINES

    for _ in range(500):
        _Watchdog(30).stop()
    assert len(_DEADLINES._waiting) <= 2


# ------------------------------------------------------------------------------- keep-alive


def test_the_operators_own_urls_share_kept_alive_connections(server: HostileServer) -> None:
    server.routes["/a"] = lambda h: h.reply(200, FEED, {"ETag": '"a"'})
    server.routes["/b"] = lambda h: h.reply(304, b"", {"ETag": '"b"'}) if h.headers.get("If-None-Match") \
        else h.reply(200, FEED, {"ETag": '"b"'})
    fetcher = local_fetcher()
    assert fetcher.get(server.url("/a"), trusted=True).body == FEED
    assert fetcher.get(server.url("/b"), trusted=True).status == 200
    assert fetcher.get(server.url("/b"), etag='"b"', trusted=True).status == 304  # an empty body, read out
    assert fetcher.get(server.url("/a"), trusted=True).body == FEED
    assert server.connections == 1
    fetcher.close()


def test_untrusted_urls_and_redirects_never_reuse_a_kept_connection(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(200, FEED)
    server.routes["/moved"] = lambda h: h.redirect("/feed")
    fetcher = local_fetcher()
    fetcher.get(server.url("/feed"), trusted=True)
    assert server.connections == 1
    fetcher.get(server.url("/feed"))  # an image, say: a connection of its own
    assert server.connections == 2
    fetcher.get(server.url("/moved"), trusted=True)  # the first hop is kept alive, the redirect is not
    assert server.connections == 3
    strict = local_fetcher(allow_private=False)
    strict.get(server.url("/feed"), trusted=True)
    with pytest.raises(BlockedAddress):  # the kept connection to loopback is no way around the guard
        strict.get(server.url("/feed"))
    strict.close()
    fetcher.close()


def test_the_deadline_holds_on_a_reused_connection(server: HostileServer) -> None:
    def fast_drip(handler: Handler) -> None:  # every read returns well within any read timeout
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.drip(b"<" * 100, interval=0.3)

    server.routes["/feed"] = lambda h: h.reply(200, FEED)
    server.routes["/drip"] = fast_drip
    fetcher = local_fetcher(timeout=5, deadline=1.5)
    fetcher.get(server.url("/feed"), trusted=True)
    error, seconds = timed(lambda: fetcher.get(server.url("/drip"), trusted=True))
    assert server.connections == 1  # the drip came over the kept connection
    assert isinstance(error, Timeout) and "(deadline)" in str(error)
    assert 1.4 <= seconds < 2.5
    assert fetcher.get(server.url("/feed"), trusted=True).body == FEED  # a fresh connection after that
    fetcher.close()


def test_a_finished_fetchs_deadline_cannot_touch_the_next_fetchs_connection(server: HostileServer) -> None:
    # The connection goes back to the pool only when the fetch that used it has stopped its watchdog.
    server.routes["/feed"] = lambda h: h.reply(200, FEED)
    fetcher = local_fetcher(deadline=0.3)
    for _ in range(3):
        assert fetcher.get(server.url("/feed"), trusted=True).body == FEED
        time.sleep(0.4)  # past the deadline of the fetch before
    assert server.connections == 1
    fetcher.close()


# -------------------------------------------------------------------------------- redirects


def test_redirect_loop_is_an_error(server: HostileServer) -> None:
    server.routes["/a"] = lambda h: h.redirect("/b")
    server.routes["/b"] = lambda h: h.redirect(server.url("/a"))
    with pytest.raises(RedirectError, match=r"^redirect loop \(http://127\.0\.0\.1:\d+/a\)$"):
        local_fetcher(max_redirects=10).get(server.url("/a"))
    assert server.paths() == ["/a", "/b"]


def redirect_route(location: str, status: int = 302) -> Callable[[Handler], None]:
    """A route answering with a redirect to ``location``."""
    return lambda handler: handler.redirect(location, status)


@pytest.mark.parametrize(("hops", "allowed"), [(3, True), (4, False)])
def test_at_most_three_redirects(server: HostileServer, hops: int, allowed: bool) -> None:
    for n, status in zip(range(1, 5), (301, 302, 307, 308)):
        server.routes[f"/r{n}"] = redirect_route(f"/r{n - 1}", status)
    server.routes["/r0"] = lambda h: h.reply(200, FEED)
    fetcher = local_fetcher()  # max_redirects defaults to 3
    if allowed:
        response = fetcher.get(server.url(f"/r{hops}"))
        assert (response.body, response.url) == (FEED, server.url("/r0"))
    else:
        with pytest.raises(TooManyRedirects, match=r"^too many redirects \(more than 3\)$"):
            fetcher.get(server.url(f"/r{hops}"))
        assert "/r0" not in server.paths()


def test_relative_location_is_resolved_against_the_current_url(server: HostileServer) -> None:
    server.routes["/blog/feed"] = lambda h: h.redirect("atom.xml?v=2", status=303)
    server.routes["/blog/atom.xml"] = lambda h: h.reply(200, FEED)
    response = local_fetcher().get(server.url("/blog/feed"))
    assert response.url == server.url("/blog/atom.xml?v=2")
    assert server.paths() == ["/blog/feed", "/blog/atom.xml?v=2"]


def test_redirect_without_location_is_an_error(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(302)
    with pytest.raises(RedirectError, match="redirect without a Location"):
        local_fetcher().get(server.url("/feed"))


@pytest.mark.parametrize(
    ("location", "shown"),
    [("file:///etc/passwd", "file:"), ("ftp://127.0.0.1/x", "ftp:"), ("data:text/plain,hi", "data:"),
     ("gopher://127.0.0.1:70/_x", "gopher:")],
)  # fmt: skip
def test_redirect_to_a_non_http_url_is_refused(server: HostileServer, location: str, shown: str) -> None:
    server.routes["/feed"] = lambda h: h.redirect(location)
    with pytest.raises(BadURL) as caught:
        local_fetcher().get(server.url("/feed"), trusted=True)
    assert str(caught.value) == f"redirect to a non-http(s) URL refused ({shown})"


def test_non_http_url_refused_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_network(monkeypatch)
    with pytest.raises(BadURL, match=r"non-http\(s\) URL refused \(file:\)"):
        Fetcher().get("file:///etc/passwd", trusted=True)
    with pytest.raises(BadURL, match="invalid URL"):
        Fetcher().get("http://", trusted=True)


# ------------------------------------------------------------------------------------- SSRF


@pytest.mark.parametrize("via", ["ip", "name"])
def test_redirect_from_a_trusted_loopback_url_to_a_private_address_never_reaches_it(
    server: HostileServer, other_server: HostileServer, via: str
) -> None:
    host = "127.0.0.1" if via == "ip" else "localhost"  # localhost: /etc/hosts, no outside DNS
    server.routes["/feed"] = lambda h: h.redirect(other_server.url("/admin", host=host))
    fetcher = Fetcher(timeout=5, deadline=3)  # allow_private=False, as configured by default
    with pytest.raises(BlockedAddress) as caught:
        fetcher.get(server.url("/feed"), trusted=True)
    assert str(caught.value).startswith("redirect to a private address refused (")
    assert "loopback" in str(caught.value)
    assert server.paths() == ["/feed"]  # the trusted URL itself was fetched
    assert other_server.connections == 0


def test_untrusted_url_to_loopback_refused_without_connecting(server: HostileServer) -> None:
    server.routes["/img.png"] = lambda h: h.reply(200, b"png")
    with pytest.raises(BlockedAddress) as caught:
        Fetcher(timeout=5, deadline=3).get(server.url("/img.png"))
    assert str(caught.value) == "private address refused (127.0.0.1, loopback)"
    assert server.connections == 0


def test_allow_private_lets_an_untrusted_loopback_url_through(server: HostileServer) -> None:
    server.routes["/img.png"] = lambda h: h.reply(200, b"png")
    assert Fetcher(allow_private=True, deadline=3).get(server.url("/img.png")).body == b"png"


ODD_SPELLINGS = [
    ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("0x7F000001", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("\u246f\u2468\u3002\u2461\u2464\u2463\u3002\u246f\u2468\uff61\u2461\u2464\u2463", "169.254.169.254"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[::ffff:a9fe:a9fe]", "::ffff:a9fe:a9fe"),
    ("169.254.169.254", "169.254.169.254"),
    ("0", "0.0.0.0"),
    ("0.0.0.0", "0.0.0.0"),
    ("10.0.0.1", "10.0.0.1"),
    ("172.16.5.4", "172.16.5.4"),
    ("192.168.0.1", "192.168.0.1"),
    ("100.64.0.1", "100.64.0.1"),
    ("224.0.0.251", "224.0.0.251"),
    ("255.255.255.255", "255.255.255.255"),
    ("[::1]", "::1"),
    ("[::]", "::"),
    ("[fe80::1]", "fe80::1"),
    ("[fc00::1]", "fc00::1"),
    ("[fd12:3456::1]", "fd12:3456::1"),
    ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1"),
    ("[2002:7f00:1::1]", "2002:7f00:1::1"),
    ("[ff02::1]", "ff02::1"),
]


@pytest.mark.parametrize(("host", "canonical"), ODD_SPELLINGS)
def test_odd_spellings_of_internal_addresses_are_blocked_without_dns(
    monkeypatch: pytest.MonkeyPatch, host: str, canonical: str
) -> None:
    forbid_network(monkeypatch)
    normalised = normalise_host(host)
    assert normalised == canonical
    address = ip_literal(normalised)
    assert address is not None and blocked_reason(address) is not None
    with pytest.raises(BlockedAddress, match=r"^private address refused \("):
        Fetcher().get(f"http://{host}/latest/meta-data/")
    with pytest.raises(BlockedAddress):
        Fetcher().get(f"http://{host}/feed", trusted=False, accept="*/*")


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700::1111]", "example.com", "xn--bcher-kva.de"])
def test_public_hosts_are_not_blocked(host: str) -> None:
    address = ip_literal(normalise_host(host))
    assert address is None or blocked_reason(address) is None


def test_unicode_hosts_are_idna_encoded() -> None:
    assert normalise_host("B\u00fccher.DE.") == "xn--bcher-kva.de"
    assert normalise_host("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0ecom") == "example.com"  # fullwidth


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "a.1", "0x100000000", "1.2.3.0x1ff", "exa mple.com", "a..b", "[::zz]"])
def test_malformed_hosts_are_refused(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    forbid_network(monkeypatch)
    with pytest.raises(BadURL):
        normalise_host(host)


def test_a_name_resolving_to_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", lambda *a: pytest.fail("connected"))
    with pytest.raises(BlockedAddress) as caught:
        Fetcher().get("http://mixed.example/img.png")
    assert str(caught.value) == "private address refused (mixed.example is 10.0.0.7, private)"


def test_dns_is_resolved_once_and_the_connection_goes_to_the_checked_ip(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the first answer is the one checked; any later answer points elsewhere.
    looked_up = fake_dns(monkeypatch, lambda host, n: "127.0.0.1" if n == 1 else "192.0.2.66")
    connected: list[Any] = []
    real_connect = socket.socket.connect

    def spy_connect(self: socket.socket, address: Any) -> None:
        connected.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy_connect)
    server.routes["/start"] = lambda h: h.redirect(server.url("/feed", host="feed.test"))
    server.routes["/feed"] = lambda h: h.reply(200, FEED)

    response = local_fetcher().get(server.url("/start", host="feed.test"))
    assert response.body == FEED
    assert looked_up == ["feed.test"]  # once, although two requests went to that host
    assert connected and all(address == ("127.0.0.1", server.port) for address in connected)
    assert {seen.headers["host"] for seen in server.seen} == {f"feed.test:{server.port}"}


def test_https_uses_the_hostname_for_sni_while_connecting_to_the_checked_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    hellos: list[bytes] = []

    def catch_client_hello(sock: socket.socket, stopping: threading.Event) -> None:
        hellos.append(sock.recv(16384))  # then hang up: we have no certificate to offer

    with RawServer(catch_client_hello) as tls_server:
        looked_up = fake_dns(monkeypatch, lambda host, n: "127.0.0.1")
        with pytest.raises(ConnectionFailed, match="TLS error"):
            Fetcher(timeout=3, deadline=3).get(f"https://feed.example:{tls_server.port}/feed", trusted=True)
    assert looked_up == ["feed.example"]
    assert tls_server.connections == 1
    assert server_name_indication(hellos[0]) == "feed.example"


def server_name_indication(record: bytes) -> str | None:
    """The SNI host name in a TLS ClientHello record (RFC 8446 4.1.2, RFC 6066 3)."""
    assert record[0] == 22 and record[5] == 1, "not a ClientHello"
    position = 5 + 4 + 2 + 32  # record header, handshake header, legacy version, random
    position += 1 + record[position]  # session id
    position += 2 + struct.unpack_from("!H", record, position)[0]  # cipher suites
    position += 1 + record[position]  # compression methods
    end = position + 2 + struct.unpack_from("!H", record, position)[0]
    position += 2
    while position < end:
        kind, length = struct.unpack_from("!HH", record, position)
        position += 4
        if kind == 0:  # server_name: list length, name type (0 = host_name), name length, name
            name_length = struct.unpack_from("!H", record, position + 3)[0]
            return record[position + 5 : position + 5 + name_length].decode("ascii")
        position += length
    return None


def test_https_refuses_a_certificate_no_trusted_authority_signed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # The CA bundle is loaded only when the first HTTPS pool is made; verification must still be on.
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=feed.example", "-addext", "subjectAltName=DNS:feed.example"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def serve_tls(sock: socket.socket, stopping: threading.Event) -> None:
        with contextlib.suppress(OSError):
            with context.wrap_socket(sock, server_side=True) as tls:
                tls.recv(16384)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfeed")

    with RawServer(serve_tls) as tls_server:
        fake_dns(monkeypatch, lambda host, n: "127.0.0.1")
        with pytest.raises(ConnectionFailed, match="TLS error.*(?i:certificate)"):
            Fetcher(timeout=3, deadline=3).get(f"https://feed.example:{tls_server.port}/feed", trusted=True)
    assert tls_server.connections == 1


def test_tls_handshake_drip_is_stopped_by_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # ssl.wrap_socket detaches the socket the watchdog first saw; the deadline must still hold.
    def drip_handshake(sock: socket.socket, stopping: threading.Event) -> None:
        sock.recv(16384)
        for byte in b"\x16\x03\x03\x10\x00" + b"\x02" * 4096:
            sock.sendall(bytes([byte]))
            if stopping.wait(1):
                return

    with RawServer(drip_handshake) as tls_server:
        fake_dns(monkeypatch, lambda host, n: "127.0.0.1")
        error, seconds = timed(
            lambda: Fetcher(timeout=5, deadline=2).get(f"https://feed.example:{tls_server.port}/", trusted=True)
        )
    assert isinstance(error, Timeout) and "(deadline)" in str(error)
    assert 1.9 <= seconds < 3


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused() -> None:
    with pytest.raises(ConnectionFailed, match=r"connection to 127\.0\.0\.1:\d+ failed: connection refused"):
        local_fetcher().get(f"http://127.0.0.1:{closed_port()}/feed")


def test_no_connection_is_made_outside_a_fetch() -> None:
    # The pinned transport fails closed if someone uses it without Fetcher.get's checks.
    from syndicate import fetch

    manager = fetch._PinnedPoolManager()
    with pytest.raises(Exception, match="outside Fetcher.get"):
        manager.request("GET", "http://127.0.0.1:9/", timeout=1)
    manager.clear()


# ------------------------------------------------------------------------------- messages


@pytest.mark.parametrize("case", ["404", "loop", "refused", "timeout", "blocked"])
def test_error_messages_and_tracebacks_carry_no_query_or_credentials(server: HostileServer, case: str) -> None:
    server.routes["/loop"] = lambda h: h.redirect(h.path)
    server.routes["/slow"] = lambda h: None if h.wait(5) else h.reply(200, FEED)
    server.routes["/blocked"] = lambda h: h.redirect("http://10.0.0.1/x?token=abc123")
    path = {"404": "/missing", "loop": "/loop", "timeout": "/slow", "blocked": "/blocked", "refused": "/x"}[case]
    port = closed_port() if case == "refused" else server.port
    url = f"http://reader:s3cret-pw@127.0.0.1:{port}{path}?token=abc123"
    fetcher = Fetcher(timeout=0.5, deadline=3, allow_private=case != "blocked")
    with pytest.raises(FetchError) as caught:
        fetcher.get(url, trusted=True)
    shown = "".join(traceback.format_exception(caught.value)) + str(caught.value.url)
    assert caught.value.url is not None and caught.value.url.endswith(path if case != "blocked" else "/x")
    assert "abc123" not in shown and "s3cret" not in shown and "reader" not in shown
    assert "token" not in str(caught.value)


def test_credentials_in_the_feed_url_are_sent_but_not_reported_back(server: HostileServer) -> None:
    server.routes["/feed"] = lambda h: h.reply(200, FEED)
    response = local_fetcher().get(server.url("/feed?key=k1#top").replace("//", "//reader:pw@"), trusted=True)
    assert response.url == server.url("/feed?key=k1")  # a base URL for the entries: no password in it
    assert server.seen[0].headers["authorization"].startswith("Basic ")


def test_closed_fetcher_refuses() -> None:
    fetcher = Fetcher()
    fetcher.close()
    with pytest.raises(RuntimeError):
        fetcher.get("http://example.com/")
