"""A loopback feed server for the benchmarks (127.0.0.1 only, threaded, HTTP/1.1 keep-alive).

Routes (every feed answers with a strong ETag and a fixed Last-Modified, and answers 304 to
If-None-Match / If-Modified-Since):

    /real/<copy>/<file>         a file of the real-feeds corpus, served verbatim (copy = 0..N-1, so the
                                same corpus can be served under several distinct URLs)
    /syn/<n>/<i>.xml            a synthetic RSS 2.0 feed number <i> with <n> entries (deterministic); each
                                post links to another post of the same site
    /solo/<n>/<i>.xml           the same without links between the site's posts
    /slow/<ms>/<n>/<i>.xml      the same, answered after sleeping <ms> milliseconds
    /plain/<any route above>    the same body with no ETag and no Last-Modified, never 304 (a server
                                without validators: a client can only compare bodies)
    /_stats                     JSON: request counts by status and by route kind since the last reset
    /_reset                     clears the counters

Run: ``python bench/feedserver.py --corpus DIR [--gzip] [--port 0]``; it prints ``READY <port>`` on
stdout once listening. It stops on SIGTERM/SIGINT, when its parent process goes away, or after
``--lifetime`` seconds, whichever comes first (so a crashed harness never leaves it running).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)  # Tue, 14 Nov 2023 22:13:20 GMT
_LM_EPOCH = 1_700_000_000


def synthetic_feed(n: int, i: int, self_links: bool = True) -> bytes:
    """RSS 2.0, ``n`` entries, realistic enough to exercise every rewrite step (relative URLs, tracking
    parameters, links to the site's own posts, images, categories, an author). Without ``self_links``
    no post links to another post of the same site (so no copy needs updating once the others exist)."""
    site = f"https://site{i}.example"
    items = []
    for j in range(n):
        other = (j + 1) % max(n, 1)
        own = (f'<a href="{site}/posts/post-{other}/?utm_source=rss&amp;utm_medium=feed">an earlier post</a>'
               if self_links else f'<a href="{site}/about/?utm_source=rss">the about page</a>')
        body = (
            f"<p>This is paragraph one of post {j} on site {i}. It links to {own} "
            f'and to <a href="https://example.org/article?id={j}&amp;fbclid=abc">another site</a>.</p>'
            f'<figure><img src="/images/{i}-{j}.jpg" alt="Picture {j}" width="640" height="480">'
            f"<figcaption>A picture for post {j}</figcaption></figure>"
            + "".join(
                f"<p>Paragraph {k}: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
                f"tempor incididunt ut labore et dolore magna aliqua. <em>Ut enim</em> ad minim veniam, quis "
                f'nostrud <a href="relative/page-{k}.html">exercitation</a> ullamco laboris.</p>'
                for k in range(4)
            )
            + '<script>alert("x")</script><p onclick="evil()">The end.</p>'
        )
        day = 1 + (j % 28)
        items.append(
            "<item>"
            f"<title>Synthetic post {i}-{j}</title>"
            f"<link>{site}/posts/post-{j}/</link>"
            f'<guid isPermaLink="true">{site}/posts/post-{j}/</guid>'
            f"<pubDate>{formatdate(1_690_000_000 + j * 86_400 + i, usegmt=True)}</pubDate>"
            f"<dc:creator>Author {i}</dc:creator>"
            f"<category>Topic {j % 3}</category><category>Site {i}</category>"
            f"<description>Summary of post {j} (day {day}).</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded>"
            "</item>"
        )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Synthetic site {i}</title><link>{site}/</link>"
        f"<description>Benchmark feed {i}</description>" + "".join(items) + "</channel></rss>\n"
    )
    return xml.encode("utf-8")


class Store:
    """Bodies (and their gzip form and ETag), built on first use and cached."""

    def __init__(self, corpus: Path | None, use_gzip: bool) -> None:
        self.corpus = corpus
        self.use_gzip = use_gzip
        self._cache: dict[str, tuple[bytes, bytes | None, str]] = {}
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    def get(self, path: str) -> tuple[bytes, bytes | None, str, float] | None:
        """(body, gzipped body or None, etag, delay seconds) for a route, or None for 404."""
        parts = path.strip("/").split("/")
        delay = 0.0
        if parts[0] == "slow" and len(parts) == 4:
            try:
                delay = int(parts[1]) / 1000.0
            except ValueError:
                return None
            parts = ["syn", *parts[2:]]
        key = "/".join(parts)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            body = self._build(parts)
            if body is None:
                return None
            etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
            zipped = gzip.compress(body, 6, mtime=0) if self.use_gzip else None
            cached = (body, zipped, etag)
            with self._lock:
                self._cache[key] = cached
        return (*cached, delay)

    def _build(self, parts: list[str]) -> bytes | None:
        if parts[0] == "real" and len(parts) == 3 and self.corpus is not None:
            name = parts[2]
            if "/" in name or name.startswith("."):
                return None
            path = self.corpus / name
            return path.read_bytes() if path.is_file() else None
        if parts[0] in ("syn", "solo") and len(parts) == 3 and parts[2].endswith(".xml"):
            try:
                n, i = int(parts[1]), int(parts[2][:-4])
            except ValueError:
                return None
            if not (0 <= n <= 1000 and 0 <= i < 1_000_000):
                return None
            return synthetic_feed(n, i, self_links=parts[0] == "syn")
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bench-feedserver/1"
    # TCP_NODELAY, as web servers set it on kept-alive connections: the headers and the body are two
    # writes, and with Nagle's algorithm the body waits for the client's delayed ACK of the headers
    # (40 ms on Linux) on every request of a kept-alive connection but the first.
    disable_nagle_algorithm = True
    store: Store  # set on the class by main()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        store = self.store
        if path == "/_stats":
            self._send(200, json.dumps(store.stats).encode(), {"Content-Type": "application/json"})
            return
        if path == "/_reset":
            store.stats.clear()
            self._send(200, b"{}", {"Content-Type": "application/json"})
            return
        plain = path.startswith("/plain/")
        if plain:
            path = path[len("/plain"):]
        found = store.get(path)
        kind = "plain" if plain else path.strip("/").split("/", 1)[0]
        if found is None:
            store.stats["404"] += 1
            self._send(404, b"not found\n", {"Content-Type": "text/plain"})
            return
        body, zipped, etag, delay = found
        if delay:
            time.sleep(delay)
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Content-Type": "application/xml"}
        if plain:
            headers = {"Content-Type": "application/xml"}
        inm = None if plain else self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        not_modified = False
        if inm is not None:
            not_modified = any(t.strip() in (etag, "W/" + etag, "*") for t in inm.split(","))
        elif ims and not plain:
            try:
                not_modified = parsedate_to_datetime(ims).timestamp() >= _LM_EPOCH
            except (TypeError, ValueError):
                not_modified = False
        if not_modified:
            store.stats["304"] += 1
            store.stats[f"304:{kind}"] += 1
            self._send(304, b"", {"ETag": etag, "Last-Modified": LAST_MODIFIED})
            return
        if zipped is not None and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
            body = zipped
        store.stats["200"] += 1
        store.stats[f"200:{kind}"] += 1
        store.stats["bytes"] += len(body)
        self._send(200, body, headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--gzip", action="store_true", help="gzip bodies for clients that accept it")
    ap.add_argument("--lifetime", type=float, default=4 * 3600, help="exit after this many seconds anyway")
    args = ap.parse_args(argv)

    Handler.store = Store(args.corpus, args.gzip)
    server = Server(("127.0.0.1", args.port), Handler)
    parent = os.getppid()
    started = time.monotonic()

    def watchdog() -> None:
        # Bounded: ends when the parent is gone or the lifetime is over.
        while time.monotonic() - started < args.lifetime and os.getppid() == parent:
            time.sleep(0.5)
        server.shutdown()

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=watchdog, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
