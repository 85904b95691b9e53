#!/usr/bin/env python3
"""WordPress-like REST partners on 127.0.0.1 that answer every request after a fixed delay (bench S).

What S measures is how two runs sharing a PostgreSQL split the work of slow partners, so the
partners must be slow the way a WordPress is (each REST call takes a while) and must be spoken to
by syndicate's real WordPress publisher: this serves the part of WordPress's REST API that the
publisher uses for new posts (``/wp-json/wp/v2/posts`` list, read, create, update; ``tags`` and
``categories`` search and create; ``media`` is not needed: the bench's feeds carry no images), kept
in memory, every answer held back by ``--delay-ms``. It is not WordPress: no PHP, no database, no
rendering, so the time is the delay, which is what the figure is about.

    python bench/wpfake.py --partners 4 --delay-ms 300
    → READY 40001 40002 40003 40004        (one port per partner; GET /_reset on a port empties that partner)
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Site:
    """One partner's posts and terms."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.posts: dict[int, dict[str, Any]] = {}
        self.terms: dict[str, dict[int, dict[str, Any]]] = {"tags": {}, "categories": {}}
        self.requests = 0

    def reset(self) -> None:
        with self.lock:
            self.posts.clear()
            for terms in self.terms.values():
                terms.clear()
            self.requests = 0

    def post_json(self, post: dict[str, Any]) -> dict[str, Any]:
        return {**post, "link": f"http://127.0.0.1:{self.port}/{post['slug']}/"}

    def write(self, fields: dict[str, Any], post: dict[str, Any] | None) -> dict[str, Any]:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        with self.lock:
            if post is None:
                pid = next(self.ids)
                slug = str(fields.get("slug") or f"post-{pid}")
                taken = {p["slug"] for p in self.posts.values()}
                base, n = slug, 2
                while slug in taken:
                    slug, n = f"{base}-{n}", n + 1
                post = {"id": pid, "slug": slug, "status": fields.get("status") or "draft", "tags": [],
                        "categories": [], "featured_media": 0, "meta": {},
                        "title": {"raw": ""}, "content": {"raw": ""}, "excerpt": {"raw": ""}}
                self.posts[pid] = post
            for name in ("title", "content", "excerpt"):
                if name in fields:
                    post[name] = {"raw": str(fields[name]), "rendered": str(fields[name])}
            for name in ("tags", "categories", "featured_media", "status"):
                if name in fields:
                    post[name] = fields[name]
            if isinstance(fields.get("meta"), dict):
                post["meta"] = {**post["meta"], **fields["meta"]}
            post["modified_gmt"] = now
            return self.post_json(post)


def handler_for(site: Site, delay: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # As feedserver.py: without TCP_NODELAY each answer on a kept-alive connection but the first waits
        # 40 ms for the client's delayed ACK of its headers (measured: 45 ms a request at --delay-ms 0).
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}") if length else {}
            return data if isinstance(data, dict) else {}

        def route(self) -> tuple[str, dict[str, list[str]]]:
            parts = urlsplit(self.path)
            return parts.path.rstrip("/"), parse_qs(parts.query)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path, query = self.route()
            if path == "/_reset":
                site.reset()
                self.answer(200, {"ok": True})
                return
            site.requests += 1
            time.sleep(delay)
            if path == "/wp-json/wp/v2/posts":
                with site.lock:
                    posts = list(site.posts.values())
                if "include" in query:
                    wanted = {int(i) for i in query["include"][0].split(",") if i.isdigit()}
                    posts = [p for p in posts if p["id"] in wanted]
                if "slug" in query:
                    slugs = set(query["slug"][0].split(","))
                    posts = [p for p in posts if p["slug"] in slugs]
                if "search" in query:
                    needle = query["search"][0]
                    posts = [p for p in posts if needle in p["content"]["raw"] or needle in p["title"]["raw"]]
                self.answer(200, [site.post_json(p) for p in posts], {"X-WP-Total": str(len(posts)),
                                                                       "X-WP-TotalPages": "1"})
                return
            m = re.fullmatch(r"/wp-json/wp/v2/posts/(\d+)", path)
            if m:
                with site.lock:
                    post = site.posts.get(int(m[1]))
                if post is None:
                    self.answer(404, {"code": "rest_post_invalid_id", "message": "Invalid post ID.",
                                      "data": {"status": 404}})
                else:
                    self.answer(200, site.post_json(post))
                return
            m = re.fullmatch(r"/wp-json/wp/v2/(tags|categories)", path)
            if m:
                needle = (query.get("search") or [""])[0].casefold()
                with site.lock:
                    terms = [t for t in site.terms[m[1]].values() if needle in t["name"].casefold()]
                self.answer(200, terms, {"X-WP-TotalPages": "1"})
                return
            self.answer(404, {"code": "rest_no_route", "message": "No route was found.", "data": {"status": 404}})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            path, _ = self.route()
            fields = self.body()
            site.requests += 1
            time.sleep(delay)
            if path == "/wp-json/wp/v2/posts":
                self.answer(201, site.write(fields, None))
                return
            m = re.fullmatch(r"/wp-json/wp/v2/posts/(\d+)", path)
            if m:
                with site.lock:
                    post = site.posts.get(int(m[1]))
                if post is None:
                    self.answer(404, {"code": "rest_post_invalid_id", "message": "Invalid post ID.",
                                      "data": {"status": 404}})
                else:
                    self.answer(200, site.write(fields, post))
                return
            m = re.fullmatch(r"/wp-json/wp/v2/(tags|categories)", path)
            if m:
                name = str(fields.get("name") or "")
                with site.lock:
                    for term in site.terms[m[1]].values():
                        if term["name"].casefold() == name.casefold():
                            self.answer(400, {"code": "term_exists", "message": "A term with the name exists.",
                                              "data": {"status": 400, "term_id": term["id"]}})
                            return
                    term = {"id": 1000 + len(site.terms[m[1]]) + 1, "name": name}
                    site.terms[m[1]][term["id"]] = term
                self.answer(201, term)
                return
            self.answer(404, {"code": "rest_no_route", "message": "No route was found.", "data": {"status": 404}})

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partners", type=int, default=4)
    ap.add_argument("--delay-ms", type=int, default=300)
    args = ap.parse_args()
    servers = []
    for _ in range(args.partners):
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        site = Site(server.server_address[1])
        server.RequestHandlerClass = handler_for(site, args.delay_ms / 1000)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    print("READY " + " ".join(str(s.server_address[1]) for s in servers), flush=True)
    try:
        sys.stdin.read()  # until the bench closes our stdin (or kills us)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
