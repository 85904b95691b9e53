"""Nothing from a feed is ever opened as a path or fetched as a URL by anything but our fetcher.

feedparser, given bytes or a str, first tries them as a file name to open (and a str as a URL to
fetch). A remote feed whose whole body is the path of a local file would then be read from disk and
republished under the hostile source's licence. These tests attack the mechanism, not one spelling:
any body, whatever it names, is parsed as the bytes it is, and opening anything while parsing fails.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.feeds import ParseError, SourceContext, parse_bytes
from syndicate.models import RewriteRules

from ..conftest import REPO
from ..hostile_server import HostileServer

PRIVATE = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Private</title><link>https://private.example/</link>
<item><title>A private post</title><link>https://private.example/secret-post/</link><guid>secret-1</guid>
<description>secret words</description></item></channel></rss>"""

CTX = SourceContext(source="s", feed_url="https://hostile.example/feed/", site_url="https://hostile.example",
                    aliases=(), author=None, rules=RewriteRules())


@contextlib.contextmanager
def no_opening() -> Iterator[list[str]]:
    """Record any file opened or URL fetched inside the block (a URL fetch also fails)."""
    opened: list[str] = []
    real_open = builtins.open
    patch = pytest.MonkeyPatch()

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        # Python's own lazy imports (encodings, codecs) open files under sys.prefix; a feed's bytes never are.
        name = os.fsdecode(file) if isinstance(file, (str, bytes, os.PathLike)) else str(file)
        if not name.startswith((sys.prefix, sys.base_prefix)):
            opened.append(name)
        return real_open(file, *args, **kwargs)

    def no_fetch(*args: Any, **kwargs: Any) -> Any:
        opened.append(f"urlopen {args[:1]!r}")
        raise AssertionError("a parser fetched a URL")

    patch.setattr(builtins, "open", guarded_open)
    patch.setattr(urllib.request, "urlopen", no_fetch)
    patch.setattr(urllib.request.OpenerDirector, "open", no_fetch)
    try:
        yield opened
    finally:
        patch.undo()


def _entries_or_none(data: bytes) -> list[Any]:
    try:
        return list(parse_bytes(data, CTX).entries)
    except ParseError:
        return []


@pytest.mark.parametrize("spelling", ["absolute", "relative", "dot-relative", "padded", "file-url", "crlf"])
def test_a_body_naming_a_local_feed_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 spelling: str) -> None:
    private = tmp_path / "private.xml"
    private.write_bytes(PRIVATE)
    monkeypatch.chdir(tmp_path)
    body = {"absolute": str(private).encode(), "relative": b"private.xml", "dot-relative": b"./private.xml",
            "padded": str(private).encode() + b"\0", "file-url": private.as_uri().encode(),
            "crlf": b"private.xml\r\n"}[spelling]
    entries = _entries_or_none(body)
    assert not any("secret" in (e.title + e.content) for e in entries)


@settings(max_examples=200, deadline=None, database=None)
@given(body=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=120).map(str.encode),
    st.sampled_from(["/etc/hostname", "/etc/passwd", "pyproject.toml", "http://127.0.0.1:1/feed",
                     "file:///etc/passwd", "feed://x/"]).map(str.encode),
))
def test_parsing_opens_nothing_whatever_the_bytes(body: bytes) -> None:
    with no_opening() as opened:
        _entries_or_none(body)
    assert opened == []


def test_a_remote_feed_naming_a_local_file_publishes_nothing(tmp_path: Path) -> None:
    """End to end: an HTTP feed whose body is the path of a private feed on this disk."""
    private = tmp_path / "private.xml"
    private.write_bytes(PRIVATE)
    server = HostileServer()
    server.routes["/abs"] = lambda h: h.reply(200, str(private).encode(), {"Content-Type": "application/rss+xml"})
    server.routes["/rel"] = lambda h: h.reply(200, b"private.xml", {"Content-Type": "text/xml"})
    config = tmp_path / "syndicate.toml"
    config.write_text(
        '[partners.mag]\nname = "Mag"\nkind = "files"\npath = "out"\nbase_url = "https://mag.example"\n'
        + "".join(f'[sources.{name}]\nname = "{name}"\nsite_url = "https://{name}.example"\n'
                  f'feed = "{server.url("/" + name)}"\nlicense = "CC-BY-4.0"\n' for name in ("abs", "rel")))
    try:
        result = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), "sync"],
                                capture_output=True, text=True, cwd=tmp_path, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        server.stop()
    assert result.returncode == 1, result.stdout + result.stderr
    out = tmp_path / "out"
    written = list(out.rglob("*")) if out.exists() else []
    assert written == [], written
    assert "secret" not in result.stdout + result.stderr
