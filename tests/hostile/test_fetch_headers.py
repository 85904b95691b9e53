"""Hostile response headers from a real TCP server: one reported line for that feed, nothing on stderr,
and never the feed URL's query string (its token)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate import logs
from syndicate.fetch import Fetcher, FetchError
from tests.conftest import REPO
from tests.hostile_server import RawServer

TOKEN = "QUERYTOKEN0123456789"
BODY = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://s.example/</link>'
        b"<item><title>One</title><link>https://s.example/one</link></item></channel></rss>")

# Header lines built from the pieces that confuse parsers: bare CR, bare LF, NUL, colons, folding.
pieces = st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b":", b": ", b" ", b"\t", b"X-A", b"Content-Length",
                          b"Content-Encoding: gzip", b"Transfer-Encoding: chunked", b"v", b"\xff", b"\x1b[2J"])
header_block = st.lists(st.lists(pieces, min_size=1, max_size=6).map(b"".join), min_size=1, max_size=5).map(
    lambda lines: b"".join(line + b"\r\n" for line in lines))


class _Reply:
    """What the raw server sends to every connection (a test sets it per example)."""

    def __init__(self) -> None:
        self.headers = b""

    def __call__(self, sock: socket.socket, stopping: threading.Event) -> None:
        sock.settimeout(5)
        try:
            sock.recv(65536)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n" + self.headers
                         + b"Content-Length: " + str(len(BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + BODY)
        except OSError:
            pass


@pytest.fixture(scope="module")
def raw() -> tuple[RawServer, _Reply]:
    reply = _Reply()
    with RawServer(reply) as server:
        yield server, reply


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=header_block)
def test_hostile_headers_are_a_fetch_error_or_a_response_and_never_print(
        raw: tuple[RawServer, _Reply], capsys: pytest.CaptureFixture[str], headers: bytes) -> None:
    server, reply = raw
    reply.headers = headers
    logs.setup(-1, "text")  # -q
    url = f"http://127.0.0.1:{server.port}/feed?key={TOKEN}&page=1"
    with Fetcher(timeout=3, deadline=5) as fetcher:
        try:
            fetcher.get(url, trusted=True)
        except FetchError as exc:
            message = str(exc)
            assert "\n" not in message and TOKEN not in message and "?" not in (exc.url or "")
    err = capsys.readouterr().err
    assert err == "", err


def test_a_bare_cr_fails_that_feed_in_one_line_under_q(tmp_path: Path, raw: tuple[RawServer, _Reply]) -> None:
    server, reply = raw
    reply.headers = b"X-Bad: a\r\r\n"
    (tmp_path / "good.xml").write_bytes(BODY)
    config = tmp_path / "syndicate.toml"
    config.write_text(f"""
[sources.bad]
name = "Bad"
site_url = "https://s.example"
feed = "http://127.0.0.1:{server.port}/feed?feedkey={TOKEN}"
license = "CC-BY-4.0"

[sources.good]
name = "Good"
site_url = "https://s.example"
feed = "good.xml"
license = "CC-BY-4.0"

[partners.mag]
name = "Mag"
kind = "files"
path = "out"
base_url = "https://mag.example"
""")
    result = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), "-q", "sync"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and TOKEN not in output and "Failed to parse headers" not in output, output
    lines = [line for line in output.splitlines() if "malformed response headers" in line]
    assert len(lines) == 1 and "feed bad:" in lines[0], output
    assert (tmp_path / "out").is_dir() and any((tmp_path / "out").iterdir())  # the good feed went on
