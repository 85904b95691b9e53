"""Reading a feed again: what is parsed again and what is not, against a real server on 127.0.0.1.

A feed is parsed again only when its bytes or the settings it is parsed with changed: a 304, or the
same body from a server that sends no validators, reuses the stored entries; a change to the
source's settings reads the feed afresh even from a server that would answer 304.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from syndicate.config import load_config
from syndicate.pipeline import Pipeline
from syndicate.schema import SCHEMA_VERSION
from syndicate.sqlite_store import SQLiteStore as Store

from .conftest import REPO
from .hostile_server import Handler, HostileServer

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link>
<item><title>{title}</title><link>https://blog.example/a-post/</link><guid>post-1</guid>
<description>&lt;p&gt;Hello&lt;/p&gt;</description></item></channel></rss>"""


def write_config(folder: Path, feed_url: str, source_extra: str = "") -> Path:
    config = folder / "syndicate.toml"
    config.write_text(
        '[partners.mag]\nname = "Mag"\nkind = "files"\npath = "out"\nbase_url = "https://mag.example"\n\n'
        f'[sources.blog]\nname = "Blog"\nsite_url = "https://blog.example"\nfeed = "{feed_url}"\n'
        f'license = "CC-BY-4.0"\n{source_extra}')
    return config


def read_feeds(config_path: Path) -> dict[str, str]:
    """One fetch stage, as sync runs it (recorded in the store): each source's outcome."""
    config = load_config(config_path)
    store = Store(config.state_url)
    try:
        return {outcome.source: outcome.status for outcome in Pipeline(config, store).fetch()}
    finally:
        store.close()


def sync(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), "sync"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_the_same_body_from_a_server_without_validators_is_not_parsed_again(tmp_path: Path) -> None:
    body = {"title": "First title"}
    with HostileServer() as server:
        @server.route("/feed")
        def feed(h: Handler) -> None:  # no ETag, no Last-Modified: every answer is a full 200
            h.reply(200, FEED.format(**body).encode(), {"Content-Type": "application/rss+xml"})

        config = write_config(tmp_path, server.url("/feed"))
        assert read_feeds(config) == {"blog": "ok"}
        assert read_feeds(config) == {"blog": "not-modified"}  # downloaded, hashed, not parsed
        body["title"] = "A new title"
        assert read_feeds(config) == {"blog": "ok"}
        assert read_feeds(config) == {"blog": "not-modified"}
        assert all("if-none-match" not in seen.headers for seen in server.seen)
        assert len(server.seen) == 4


def test_a_broken_body_sent_again_is_reported_again_without_parsing(tmp_path: Path) -> None:
    with HostileServer() as server:
        page = b"<!doctype html><html><body><p>Not a feed</p></body></html>"
        server.routes["/feed"] = lambda h: h.reply(200, page, {"Content-Type": "text/html"})
        config = write_config(tmp_path, server.url("/feed"))
        assert read_feeds(config) == {"blog": "failed"}
        assert read_feeds(config) == {"blog": "failed"}
        store = Store(load_config(config).state_url)
        try:
            state = store.feed_states()["blog"]
        finally:
            store.close()
        assert state.bad_version and state.failures == 2 and state.last_error


def test_a_change_to_the_source_settings_reads_the_feed_afresh(tmp_path: Path) -> None:
    with HostileServer() as server:
        @server.route("/feed")
        def feed(h: Handler) -> None:
            if h.headers.get("If-None-Match") == '"v1"':
                h.reply(304, b"", {"ETag": '"v1"'})
            else:
                h.reply(200, FEED.format(title="A post").encode(), {"ETag": '"v1"'})

        config = write_config(tmp_path, server.url("/feed"))
        first = sync(config)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "mag: 1 created" in first.stdout
        copy = tmp_path / "out" / "a-post.json"
        assert "Ada Lovelace" not in copy.read_text()

        # The feed names no author; the config now does. The feed itself has not changed (it would
        # answer 304), but its entries were shaped by the old settings: it is read again, unconditionally.
        write_config(tmp_path, server.url("/feed"), 'author = "Ada Lovelace"\n')
        second = sync(config)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "mag: 0 created, 1 updated" in second.stdout
        assert "Ada Lovelace" in json.loads(copy.read_text())["html"]
        assert [seen.headers.get("if-none-match") for seen in server.seen] == [None, None]

        third = sync(config)  # and from then on, conditionally again
        assert "mag: 0 created, 0 updated, 1 unchanged" in third.stdout
        assert [seen.headers.get("if-none-match") for seen in server.seen] == [None, None, '"v1"']


def test_a_store_of_schema_1_is_migrated_in_place(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:  # the feeds and meta tables exactly as schema 1 made them
        conn.executescript("""
            CREATE TABLE meta (key VARCHAR NOT NULL PRIMARY KEY, value TEXT);
            CREATE TABLE feeds (source VARCHAR NOT NULL PRIMARY KEY, url TEXT, etag TEXT, last_modified TEXT,
                fetched_at TEXT, ok_at TEXT, last_error TEXT, failures INTEGER NOT NULL, warning TEXT,
                license TEXT, bad_version BOOLEAN NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            INSERT INTO feeds VALUES ('blog', 'https://blog.example/feed', '"v1"', NULL, NULL, NULL, NULL, 0,
                NULL, NULL, 0);
        """)
    store = Store(f"sqlite:///{db}")
    try:
        state = store.feed_states()["blog"]
        assert state.etag == '"v1"' and state.body_hash is None and state.parse_key is None
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "5"
    finally:
        store.close()
    store = Store(f"sqlite:///{db}")  # opening it again changes nothing
    try:
        assert store.feed_states()["blog"].etag == '"v1"'
    finally:
        store.close()


def test_a_featured_image_can_be_fetched_after_the_feeds_were_read(tmp_path: Path) -> None:
    # The fetch stage closes its kept-alive connections when it ends; images are fetched later, when
    # a partner with a media library is pushed to, and must not find the downloader closed.
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
           b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
           b"\x00\x00\x00\x00IEND\xaeB`\x82")
    with HostileServer() as server:
        server.routes["/feed"] = lambda h: h.reply(200, FEED.format(title="A post").encode(),
                                                   {"Content-Type": "application/rss+xml"})
        server.routes["/image.png"] = lambda h: h.reply(200, png, {"Content-Type": "image/png"})
        config_path = write_config(tmp_path, server.url("/feed"))
        config_path.write_text(config_path.read_text() + "\n[network]\nallow_private = true\n")
        config = load_config(config_path)
        store = Store(config.state_url)
        try:
            pipeline = Pipeline(config, store)
            assert [o.status for o in pipeline.fetch()] == ["ok"]
            image = pipeline._fetch_image(server.url("/image.png"))
        finally:
            pipeline.close()
            store.close()
    assert image.data == png
