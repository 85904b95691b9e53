"""Eleven hostile feeds and a good one on loopback, in one sync: each reported, the good one lands.

Every server here is real (127.0.0.1), started and stopped by the test.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO
from .hostile_server import Handler, HostileServer

GOOD = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Good</title><link>https://good.example/</link>
<item><title>A good post</title><link>https://good.example/a-good-post/</link><guid>good-1</guid>
<description>&lt;p&gt;Hello &lt;a href="/about/"&gt;about&lt;/a&gt;&lt;/p&gt;</description></item></channel></rss>"""


def feed_with(item_extra: str = "", prolog: str = "", description: str = "x") -> bytes:
    return (f'<?xml version="1.0"?>{prolog}<rss version="2.0"><channel><title>t</title><link>https://h.example/</link>'
            f"<item><title>t</title><link>https://h.example/t/</link>{item_extra}<description>{description}"
            "</description></item></channel></rss>").encode()


def test_hostile_feeds_in_one_sync(tmp_path: Path) -> None:
    private = HostileServer()
    private_hits: list[str] = []

    @private.route("/secret")
    def secret(h: Handler) -> None:
        private_hits.append(h.path)
        h.reply(200, GOOD)

    server = HostileServer()
    bomb = gzip.compress(b"<rss>" + b"\0" * 50_000_000, 9)

    @server.route("/good")
    def good(h: Handler) -> None:
        if h.headers.get("If-None-Match") == '"v1"':
            h.reply(304, b"", {"ETag": '"v1"'})
        else:
            h.reply(200, GOOD, {"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    @server.route("/bomb")
    def bomb_route(h: Handler) -> None:
        h.reply(200, bomb, {"Content-Encoding": "gzip"})

    @server.route("/endless")
    def endless(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"<item>" * 10_000
        while not h.wait(0):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    @server.route("/drip")
    def drip(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.drip(b"<" * 100, 2.0)

    @server.route("/loop")
    def loop(h: Handler) -> None:
        h.redirect("/loop2")

    @server.route("/loop2")
    def loop2(h: Handler) -> None:
        h.redirect("/loop")

    @server.route("/to-private")
    def to_private(h: Handler) -> None:
        h.redirect(private.url("/secret"))

    @server.route("/html")
    def html(h: Handler) -> None:
        h.reply(200, b"<!DOCTYPE html><html><head><title>Shop</title></head><body>hi</body></html>")

    @server.route("/empty")
    def empty(h: Handler) -> None:
        h.reply(200, b"")

    @server.route("/error")
    def error(h: Handler) -> None:
        h.reply(500, b"oops")

    laughs = feed_with(prolog='<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                              '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
                       description="&d;&d;&d;&d;")
    xxe = feed_with(prolog='<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>', description="&x;")
    # 200 KB of author: minutes of feedparser's regex (48 KB took 33 s) against a budget of about 16 s
    redos = feed_with(item_extra="<author>" + "a" * 200_000 + "@" + "b" * 100 + "</author>")
    server.routes["/laughs"] = lambda h: h.reply(200, laughs)
    server.routes["/xxe"] = lambda h: h.reply(200, xxe)
    server.routes["/redos"] = lambda h: h.reply(200, redos)

    hostile = ["bomb", "endless", "drip", "loop", "to-private", "html", "empty", "error", "laughs", "xxe", "redos"]
    lines = ['[network]\ntimeout = 3\ndeadline = 5\nmax_bytes = 5_000_000\n',
             '[partners.mag]\nname = "Mag"\nkind = "files"\npath = "out"\nbase_url = "https://mag.example"\n']
    for name in ["good", *hostile]:
        lines.append(f'[sources.{name.replace("-", "_")}]\nname = "{name}"\nsite_url = "https://{name}.example"\n'
                     f'feed = "{server.url("/" + name)}"\nlicense = "CC-BY-4.0"\n')
    config = tmp_path / "syndicate.toml"
    config.write_text("\n".join(lines))

    try:
        start = time.monotonic()
        # The sync runs under a small parent of its own, which reports the peak of its children alone:
        # RUSAGE_CHILDREN of this process would be the largest child pytest ever reaped (an npm install
        # of the integration harness, say), not the sync's.
        peak_file = tmp_path / "peak_kb"
        measure = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
                   "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
                   "sys.exit(code)")
        result = subprocess.run([sys.executable, "-c", measure, str(peak_file),
                                 sys.executable, "-m", "syndicate", "--config", str(config), "sync"],
                                capture_output=True, text=True, cwd=REPO, timeout=120)
        elapsed = time.monotonic() - start
        peak_kb = int(peak_file.read_text())
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert elapsed < 60, f"took {elapsed:.1f} s"
        assert peak_kb < 400 * 1024, f"peak {peak_kb / 1024:.0f} MB"
        for name in hostile:
            assert f"feed {name.replace('-', '_')}:" in result.stdout, (name, output)
        reasons = {line.split(":", 1)[0]: line for line in result.stdout.splitlines() if line.startswith("feed ")}
        assert "bomb: larger than 5 MB" in reasons["feed bomb"]
        assert "deadline" in reasons["feed drip"]
        assert "redirect" in reasons["feed loop"]
        assert "private" in reasons["feed to_private"]
        assert "HTML page" in reasons["feed html"]
        assert "empty body" in reasons["feed empty"]
        assert "HTTP 500" in reasons["feed error"]
        assert "billion laughs" in reasons["feed laughs"]
        assert "XXE" in reasons["feed xxe"]
        assert "longer than" in reasons["feed redos"]
        assert private_hits == [], "the private address was reached"
        copy = json.loads((tmp_path / "out" / "a-good-post.json").read_text())
        assert 'href="https://good.example/about/"' in copy["html"]

        # the second time, the good feed is fetched conditionally and answers 304
        before = len([s for s in server.seen if s.path == "/good"])
        second = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), "sync",
                                 "--source", "good"], capture_output=True, text=True, cwd=REPO, timeout=60)
        assert second.returncode == 0, second.stdout + second.stderr
        good_requests = [s for s in server.seen if s.path == "/good"][before:]
        assert [r.headers.get("if-none-match") for r in good_requests] == ['"v1"']
        assert "mag: 0 created, 0 updated, 1 unchanged" in second.stdout
        status = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), "status"],
                                capture_output=True, text=True, cwd=REPO, timeout=60).stdout
        assert "feed bomb: bomb: larger than 5 MB after decompression (1 failures in a row)" in status
    finally:
        server.stop()
        private.stop()


def test_a_download_never_waits_for_a_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # With one download at a time, the next feed is read while the first is still being parsed: the
    # download stage hands bodies to the parse stage and goes on (a slow parse held up a download
    # thread, which made 120 slow feeds take 1.9 × the ideal time).
    from syndicate import ingest
    from syndicate.config import load_config
    from syndicate.feeds import ParsedFeed
    from syndicate.models import RewriteRules
    from syndicate.report import NoProgress

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.xml").write_bytes(GOOD)
    sources = "".join(f'[sources.{name}]\nname = "{name}"\nsite_url = "https://{name}.example/"\n'
                      f'feed = "{name}.xml"\nlicense = "CC-BY-4.0"\n\n' for name in ("a", "b", "c"))
    (tmp_path / "syndicate.toml").write_text('[network]\nconcurrency = 1\n\n' + sources + '[partners.f]\nkind = "files"\n'
                                             'name = "F"\npath = "out"\nbase_url = "https://f.example"\n')
    config = load_config(str(tmp_path / "syndicate.toml"))
    events: list[str] = []
    next_read = threading.Event()

    class SlowParsers:
        """One parser that, for the first feed, waits until the download of another has begun."""

        size = 1

        def __init__(self) -> None:
            self.first = True

        def __enter__(self) -> SlowParsers:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def prewarm(self, count: int) -> None:
            pass

        def release(self) -> None:
            pass

        def close(self) -> None:
            pass

        def parse(self, data: bytes, ctx: object) -> ParsedFeed:
            if self.first:
                self.first = False
                events.append("parse started")
                events.append("next read began" if next_read.wait(5) else "next read waited for the parse")
            return ParsedFeed()

    class CountingFiles(ingest.FileSource):
        def read(self, source: Any, state: Any, same: bool) -> ingest.Reading:
            if "parse started" in events:
                next_read.set()
            return super().read(source, state, same)

    monkeypatch.setattr(ingest, "ParserPool", SlowParsers)
    monkeypatch.setitem(ingest.SOURCE_KINDS, "file", lambda config, _network: CountingFiles(config))
    reader = ingest.FeedReader(config, list(config.sources), RewriteRules(), ingest.Network(config),
                               dt.datetime.now(dt.timezone.utc))
    outcomes = reader.read_all({}, NoProgress())
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert events == ["parse started", "next read began"]


def test_the_reads_end_without_waiting_for_the_parsers_to_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser processes are told to exit when the feeds are read, and reaped while the run goes on:
    ``read_all`` returns while they are still being reaped (here: held until it has returned), and
    they are reaped all the same."""
    from syndicate import ingest
    from syndicate.config import load_config
    from syndicate.feeds import ParserPool
    from syndicate.models import RewriteRules
    from syndicate.report import NoProgress

    (tmp_path / "a.xml").write_bytes(GOOD)
    (tmp_path / "syndicate.toml").write_text(
        '[sources.a]\nname = "a"\nsite_url = "https://good.example/"\nfeed = "a.xml"\nlicense = "CC-BY-4.0"\n\n'
        '[partners.f]\nkind = "files"\nname = "F"\npath = "out"\nbase_url = "https://f.example"\n')
    config = load_config(str(tmp_path / "syndicate.toml"))
    events: list[str] = []
    may_reap = threading.Event()
    pools: list[ParserPool] = []

    class HeldParsers(ParserPool):
        """The real pool, whose reaping waits until the test lets it go on."""

        def __init__(self) -> None:
            super().__init__()
            pools.append(self)

        def release(self) -> None:
            events.append("told to exit")
            super().release()

        def close(self) -> None:
            may_reap.wait(10)
            super().close()
            events.append("reaped")

    monkeypatch.setattr(ingest, "ParserPool", HeldParsers)
    reader = ingest.FeedReader(config, ["a"], RewriteRules(), ingest.Network(config), dt.datetime.now(dt.timezone.utc))
    outcomes = reader.read_all({}, NoProgress())
    events.append("read_all returned")
    may_reap.set()
    for thread in threading.enumerate():
        if thread.name == "syndicate-parser-reaper":
            thread.join(30)
    assert [o.status for o in outcomes] == ["ok"]
    assert list(dict.fromkeys(events)) == ["told to exit", "read_all returned", "reaped"]  # close() tells them again
    (pool,) = pools
    assert pool.size >= 1 and not pool._idle and not pool._leaving  # every worker it made was reaped
