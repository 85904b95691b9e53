"""Downloads made by a forked child while ``sync`` loads the store (syndicate/prefetch.py).

Each check runs syndicate in a process of its own (a fork is only made by a process with no other
thread, and pytest's has the test servers'), against a real server on 127.0.0.1. What must hold:
the child's readings are used for exactly the request the parent would make, and nothing is
downloaded twice; a child that fails leaves the downloads to the parent, without waiting; and the
child never keeps the store's lock after its parent is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from .conftest import REPO
from .hostile_server import Handler, HostileServer

FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link>'
        b'<item><title>A post</title><link>https://blog.example/a-post/</link><guid>post-1</guid>'
        b'<description>Hello</description></item></channel></rss>')


def python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def sync_command(config: Path, feed_url: str) -> list[str]:
    """Write a config with one source and a files partner; the command that syncs it, as cron runs it."""
    config.write_text(
        '[partners.mag]\nname = "Mag"\nkind = "files"\npath = "out"\nbase_url = "https://mag.example"\n\n'
        f'[sources.blog]\nname = "Blog"\nsite_url = "https://blog.example"\nfeed = "{feed_url}"\n'
        'license = "CC-BY-4.0"\n')
    return [sys.executable, "-m", "syndicate", "--config", str(config), "sync"]


def with_validators(h: Handler) -> None:
    if h.headers.get("If-None-Match") == '"v1"':
        h.reply(304, b"", {"ETag": '"v1"'})
    else:
        h.reply(200, FEED, {"ETag": '"v1"', "Content-Type": "application/rss+xml"})


def test_the_parent_takes_the_childs_reading_only_for_the_same_request() -> None:
    with HostileServer() as server:
        server.routes["/feed"] = with_validators
        result = python(f"""
            import json
            from syndicate.fetch import Fetcher
            from syndicate.prefetch import Job, Prefetch
            fresh = Job("fresh", {server.url("/feed")!r}, None, None)
            known = Job("known", {server.url("/feed?known")!r}, '"v1"', None)
            gone = Job("gone", {server.url("/missing")!r}, None, None)
            prefetch = Prefetch.start([fresh, known, gone], lambda: Fetcher(timeout=5, deadline=5, allow_private=True),
                                      4, patience=5)
            assert prefetch is not None, "no fork"
            out = {{"other validators": prefetch.take(Job("known", known.url, None, None))}}
            for job in (fresh, known, gone):
                out[job.source] = prefetch.take(job)
            out["again"] = prefetch.take(fresh)  # taken once: a second take downloads here
            prefetch.close()
            print(json.dumps({{k: v and [v.status, len(v.body), v.etag, v.error] for k, v in out.items()}}))
        """)
        assert result.returncode == 0, result.stderr
        seen = sorted(server.paths())
    readings = json.loads(result.stdout)
    assert readings["fresh"] == [200, len(FEED), '"v1"', None]
    assert readings["known"] == [304, 0, '"v1"', None]
    assert readings["gone"][3] is not None and "404" in readings["gone"][3]
    assert readings["other validators"] is None and readings["again"] is None
    assert seen == ["/feed", "/feed?known", "/missing"]  # each made once, by the child


def test_a_child_that_fails_leaves_the_downloads_to_the_parent_at_once() -> None:
    result = python("""
        import time
        from syndicate.prefetch import Job, Prefetch
        def broken():
            raise RuntimeError("no fetcher in the child")
        job = Job("blog", "http://127.0.0.1:9/feed", None, None)
        prefetch = Prefetch.start([job], broken, 2, patience=60)
        assert prefetch is not None, "no fork"
        started = time.monotonic()
        print(prefetch.take(job), round(time.monotonic() - started))
        prefetch.close()
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "0"]


def test_the_child_does_not_hold_the_lock_after_its_parent_was_killed(tmp_path: Path) -> None:
    slow = threading.Event()
    released = threading.Event()

    def feed(h: Handler) -> None:
        if slow.is_set():  # the child's download hangs here until the test ends
            released.wait(30)
        with_validators(h)

    config = tmp_path / "syndicate.toml"
    with HostileServer() as server:
        server.routes["/feed"] = feed
        command = sync_command(config, server.url("/feed"))
        first = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
        assert first.returncode == 0, first.stderr  # the store exists now: the next run forks
        slow.set()
        asked = len(server.seen)
        hung = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        try:
            deadline = time.monotonic() + 30
            while len(server.seen) == asked and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(server.seen) > asked, "the download never started"
            os.kill(hung.pid, signal.SIGKILL)
            hung.wait(10)
            slow.clear()
            again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
        finally:
            released.set()
            if hung.poll() is None:
                hung.kill()
    assert again.returncode == 0, again.stdout + again.stderr  # not 75: no lock left behind


def test_a_sync_downloads_each_feed_once_and_uses_what_the_child_read(tmp_path: Path) -> None:
    body = {"title": b"A post"}

    def feed(h: Handler) -> None:
        data = FEED.replace(b"A post", body["title"])
        tag = '"%d"' % len(data)
        if h.headers.get("If-None-Match") == tag:
            h.reply(304, b"", {"ETag": tag})
        else:
            h.reply(200, data, {"ETag": tag, "Content-Type": "application/rss+xml"})

    config = tmp_path / "syndicate.toml"
    with HostileServer() as server:
        server.routes["/feed"] = feed
        command = sync_command(config, server.url("/feed"))
        runs = []
        for title in (b"A post", b"A post", b"A retitled post"):
            body["title"] = title
            runs.append(subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60))
        seen = list(server.seen)
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    assert [r.stdout.splitlines()[0] for r in runs] == [
        "mag: 1 created, 0 updated, 0 unchanged, 0 skipped, 0 waiting, 0 held, 0 withdrawn, 0 failed",
        "mag: 0 created, 0 updated, 1 unchanged, 0 skipped, 0 waiting, 0 held, 0 withdrawn, 0 failed",
        "mag: 0 created, 1 updated, 0 unchanged, 0 skipped, 0 waiting, 0 held, 0 withdrawn, 0 failed",
    ]
    assert len(seen) == 3  # one download per run: the parent took the child's
    assert ["if-none-match" in s.headers for s in seen] == [False, True, True]
    assert "A retitled post" in (tmp_path / "out" / "a-post.html").read_text()
