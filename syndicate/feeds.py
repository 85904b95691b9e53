"""Feed bytes → normalised Entries, parsed in isolated worker processes.

feedparser only ever sees bytes we fetched (with the feed URL as ``content-location``); it never
fetches. Its sanitizer and URL resolution are off: ``rewrite.clean`` does both, better and faster.

A hostile feed must not stall or exhaust the run (feedparser's author-email regex is a ReDoS: a 48 KB
author takes 33 s), so parsing happens in worker processes with an address-space limit and a wall
clock timeout; a worker that overruns is killed and replaced, and that feed is reported.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import io
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .licenses import license_from_url, parse_license
from .models import Entry, Image, RewriteRules
from .urls import SiteIdentity, clean_url, web_url

#: Seconds one feed may take to parse before its worker is killed.
PARSE_TIMEOUT = 10.0
#: Address space a parse worker may use.
PARSE_MEMORY = 1024 * 1024 * 1024


class ParseError(Exception):
    """A feed could not be used; str(e) is a one-line reason for a person."""


@dataclass(frozen=True)
class SourceContext:
    """What parsing needs to know of a source (picklable, sent to the workers)."""

    source: str
    feed_url: str | None        # None for a local file
    site_url: str
    aliases: tuple[str, ...]
    author: str | None
    rules: RewriteRules
    content_type: str | None = None   # the HTTP response's Content-Type (its charset matters)


@dataclass
class ParsedFeed:
    """The entries of one feed and what went wrong while parsing it."""

    entries: list[Entry] = field(default_factory=list)
    warning: str | None = None   # parsed with errors, entries still used
    license: str | None = None   # the channel's declared licence


def _utc(struct: Any) -> dt.datetime | None:
    if not struct:
        return None
    try:
        return dt.datetime.fromtimestamp(calendar.timegm(struct), tz=dt.timezone.utc)
    except (OverflowError, ValueError, TypeError):
        return None


def _declared_license(obj: Any) -> str | None:
    """A licence declared on an entry or channel: ``<link rel="license">``, creativeCommons/cc:license."""
    candidates = [obj.get("license")] + [l.get("href") for l in obj.get("links", []) if l.get("rel") == "license"]
    for value in candidates:
        if not value:
            continue
        lic = license_from_url(value) or parse_license(value)
        if lic is not None:
            return lic.spdx
    for value in candidates:
        if value:
            return str(value).strip()  # declared but not one we know: kept, and it permits nothing
    return None


def _content(item: Any) -> tuple[str, str | None, str]:
    """(value, its xml:base, its type) of the richest content: content:encoded / Atom content, else summary."""
    contents = item.get("content") or []
    for wanted in ("text/html", "application/xhtml+xml", None):
        for c in contents:
            if wanted is None or c.get("type") == wanted:
                return c.get("value") or "", c.get("base"), c.get("type") or "text/html"
    detail = item.get("summary_detail") or {}
    return item.get("summary") or "", detail.get("base"), detail.get("type") or "text/html"


def _images(item: Any, base: str | None) -> list[Image]:
    """Featured-image candidates, best first: media:content, media:thumbnail, image enclosures."""
    credit = None
    for c in item.get("media_credit") or []:
        if c.get("content"):
            credit = c["content"].strip()
            break
    caption = None
    detail = item.get("media_description")
    if isinstance(detail, str) and detail.strip():
        caption = detail.strip()
    # Only http(s) URLs, read and serialised by urls.parse: an invalid one is skipped, not raised.
    found: list[str] = []
    for media in item.get("media_content") or []:
        kind = media.get("medium") or ""
        if kind == "image" or (media.get("type") or "").startswith("image/") or (not kind and not media.get("type")):
            found.append(media.get("url"))
    found += [thumb.get("url") for thumb in item.get("media_thumbnail") or []]
    found += [enclosure.get("href") for enclosure in item.get("enclosures") or []
              if (enclosure.get("type") or "").startswith("image/")]
    seen: set[str] = set()
    unique = []
    for candidate in found:
        url = web_url(candidate, base)
        if url is not None and url.href not in seen:
            seen.add(url.href)
            unique.append(Image(url=url.href, credit=credit, caption=caption))
    return unique


def _author(item: Any, feed: Any, fallback: str | None) -> str | None:
    for obj in (item, feed):
        detail = obj.get("author_detail") or {}
        name = detail.get("name") or obj.get("author")
        if name and name.strip():
            return " ".join(name.split())
    return fallback


def normalise(item: Any, feed: Any, ctx: SourceContext, channel_license: str | None) -> Entry:
    """One feedparser item as an Entry (content cleaned, URLs absolute, dates UTC)."""
    from .rewrite import (  # the parse workers need it; the parent process need not load it
        clean,
        text_to_html,
    )

    page_base = ctx.feed_url or ctx.site_url
    # The entry's URL is an http(s) URL as a browser reads it, serialised, or None: a link such as
    # "http://[bad?x=1" is data (no URL), never an exception that fails the feed.
    strip = ctx.rules.strip_params
    guid = (item.get("id") or "").strip()
    written = (item.get("link") or "").strip()
    link = clean_url(written, page_base, strip) if written else None  # "" would resolve to the feed's URL
    if link is None or not link.is_web:
        link = clean_url(guid, None, strip)  # a permalink guid; "urn:…"/"tag:…" ones are not web URLs
    url = link.href if link is not None and link.is_web else None
    title = " ".join((item.get("title") or "").split())
    value, content_base, content_type = _content(item)
    # dict.get: feedparser's own .get maps a missing updated_parsed to published_parsed, with a warning
    updated = _utc(dict.get(item, "updated_parsed"))
    published = _utc(dict.get(item, "published_parsed")) or updated
    if not guid:  # not the body: an edit of the post must not make it another post (identity.py)
        guid = url or "sha256:" + hashlib.sha256(f"{title}\n{published}".encode("utf-8", "replace")).hexdigest()[:32]

    # The content's own xml:base wins; feedparser reports the feed URL when there is none, and then
    # the entry's URL is the better base (relative paths are relative to the post's page).
    if content_base and content_base != ctx.feed_url and web_url(content_base) is not None:
        base = content_base
    else:
        base = url or ctx.feed_url or ctx.site_url
    site = SiteIdentity(ctx.site_url, ctx.aliases, ctx.rules.strip_params)
    if content_type == "text/plain":
        value = text_to_html(value)
    cleaned = clean(value, base, ctx.rules, site)
    summary_detail = item.get("summary_detail") or {}
    summary = item.get("summary") or ""
    if summary_detail.get("type") != "text/plain":
        summary = _text_of(summary)
    categories = tuple(dict.fromkeys(
        " ".join(t.get("term", "").split()) for t in item.get("tags") or [] if (t.get("term") or "").strip()))
    entry = Entry(
        source=ctx.source,
        guid=guid,
        url=url,
        title=title or (url or guid),
        author=_author(item, feed, ctx.author),
        published=published,
        updated=updated,
        categories=categories,
        content=cleaned.html,
        summary=" ".join(summary.split()),
        images=tuple(_images(item, base)),
        license=_declared_license(item) or channel_license,
        links=cleaned.own_links,
    )
    return entry.with_hash()


def _text_of(html: str) -> str:
    """The text of an HTML fragment (for excerpts)."""
    if "<" not in html and "&" not in html:
        return html
    from selectolax.lexbor import LexborHTMLParser

    body = LexborHTMLParser("<body>" + html).body
    return body.text(separator=" ") if body is not None else ""


_ENTITY = re.compile(rb"<!ENTITY\s+%?\s*([^\s>]+)\s+(SYSTEM|PUBLIC|\"[^\"]*\"|'[^']*')", re.I)


def refuse_entity_tricks(data: bytes) -> None:
    """Refuse XML entity attacks before any parser sees them (on the bytes: a DTD, not HTML).

    feedparser already neutralises them, but a feed that declares external entities (XXE) or entities
    built from other entities (billion laughs) is hostile, not merely broken: it is reported, not used.
    """
    if b"<!ENTITY" not in data and b"<!entity" not in data.lower():
        return
    for match in _ENTITY.finditer(data):
        kind = match.group(2).upper()
        if kind in (b"SYSTEM", b"PUBLIC"):
            raise ParseError("refused: the feed declares an external entity (XXE)")
        if re.search(rb"&[A-Za-z_:]", match.group(2)):  # &other; — character references (&#160;) are fine
            raise ParseError("refused: the feed declares nested entities (billion laughs)")


def parse_bytes(data: bytes, ctx: SourceContext) -> ParsedFeed:
    """Parse one feed's bytes in this process (the workers call this)."""
    import feedparser

    refuse_entity_tricks(data)

    headers = {"content-location": ctx.feed_url} if ctx.feed_url else {}
    if ctx.content_type:
        headers["content-type"] = ctx.content_type
    # A stream, never the bytes themselves: given bytes or a str, feedparser first tries them as a
    # path to open (and a str as a URL to fetch), so a feed whose whole body is `/srv/x/private.xml`
    # would be read from disk. Only our fetcher reads anything; feedparser only parses.
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=False,
                              resolve_relative_uris=False)
    feed = parsed.get("feed", {})
    problem = None
    exc = parsed.get("bozo_exception")
    # A feed served as text/html or text/plain parses fine: not worth a warning on every run.
    if parsed.get("bozo") and type(exc).__name__ != "NonXMLContentType":
        problem = f"{type(exc).__name__}: {exc}" if exc is not None else "not well-formed"
        problem = " ".join(problem.split())[:200]
    if not parsed.entries:
        head = data.lstrip()[:512].lower()
        if not data.strip():
            raise ParseError("empty body")
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            raise ParseError("not a feed: the server sent an HTML page")
        if problem and not parsed.get("version"):
            raise ParseError(f"not a feed: {problem}")
        if problem:
            raise ParseError(f"no entries: {problem}")
        return ParsedFeed(license=_declared_license(feed))
    channel_license = _declared_license(feed)
    entries = []
    for item in parsed.entries:
        entries.append(normalise(item, feed, ctx, channel_license))
    return ParsedFeed(entries=entries, warning=f"parsed with errors: {problem}" if problem else None,
                      license=channel_license)


# ---------------------------------------------------------------------------------------------
# Isolation: a small pool of worker processes with resource limits and a per-feed timeout.


def worker_main() -> None:
    """A parse worker's loop (``python -m syndicate.parseworker``): jobs in on stdin, results out on stdout.

    The worker is a plain subprocess, not a multiprocessing child, so it never re-imports the
    parent's ``__main__`` and needs nothing from the parent but these pipes."""
    import resource
    from multiprocessing.connection import Connection

    try:
        resource.setrlimit(resource.RLIMIT_AS, (PARSE_MEMORY, PARSE_MEMORY))
    except (ValueError, OSError):
        pass
    jobs = Connection(os.dup(0), writable=False)
    results = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # a stray print() must not corrupt the result stream
    import feedparser  # noqa: F401  (imported once per worker, not per feed)

    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        data, ctx = job
        try:
            result: Any = ("ok", parse_bytes(data, ctx))
        except ParseError as exc:
            result = ("error", str(exc))
        except MemoryError:
            result = ("error", "parse used too much memory")
        except RecursionError:
            result = ("error", "feed nested too deeply to parse")
        except Exception as exc:  # one bad feed never raises out of the parser (feedparser's habit too)
            result = ("error", f"could not parse: {type(exc).__name__}: {exc}"[:300])
        try:
            results.send(result)
        except Exception as exc:
            results.send(("error", f"could not return the parsed feed: {type(exc).__name__}"))


class _Worker:
    """One parse worker process and its two pipes."""

    def __init__(self) -> None:
        from multiprocessing.connection import Connection

        self.process = subprocess.Popen(
            [sys.executable, "-m", "syndicate.parseworker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, close_fds=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        assert self.process.stdin is not None and self.process.stdout is not None
        self.send_conn = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.conn = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self.used = False  # a prewarmed worker may never get a job
        self.asked = False  # told to exit

    def send(self, job: Any) -> None:
        self.used = True
        self.send_conn.send(job)

    def alive(self) -> bool:
        return self.process.poll() is None

    def _close(self) -> None:
        for conn in (self.send_conn, self.conn):
            try:
                conn.close()
            except OSError:
                pass

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(5)
        finally:
            self._close()

    def ask_to_stop(self) -> None:
        """Tell the worker to exit when it reads this (it is idle); ``stop`` then only reaps it."""
        if self.asked:
            return
        self.asked = True
        if not self.used:  # still importing, most likely: it would read "stop" only after that
            self.process.kill()
            return
        try:
            self.send_conn.send(None)
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        self.ask_to_stop()
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(2)
        self._close()


class ParserPool:
    """Parses feeds in isolated worker processes; thread-safe (fetch threads call ``parse``)."""

    def __init__(self, workers: int | None = None, timeout: float = PARSE_TIMEOUT) -> None:
        self.size = workers or max(1, min(4, os.cpu_count() or 1))
        self.timeout = timeout
        self._idle: list[_Worker] = []
        self._leaving: list[_Worker] = []  # asked to exit, not reaped yet
        self._count = 0
        self._lock = threading.Condition()

    def _take(self) -> _Worker:
        with self._lock:
            while not self._idle and self._count >= self.size:
                self._lock.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Worker()
        except Exception:
            with self._lock:
                self._count -= 1
                self._lock.notify()
            raise

    def _give(self, worker: _Worker | None) -> None:
        with self._lock:
            if worker is None:
                self._count -= 1
            else:
                self._idle.append(worker)
            self._lock.notify()

    def parse(self, data: bytes, ctx: SourceContext) -> ParsedFeed:
        """Parse in a worker; ParseError with a one-line reason when the feed cannot be used."""
        worker = self._take()
        try:
            worker.send((data, ctx))
            deadline = time.monotonic() + self.timeout
            while not worker.conn.poll(0.05):
                if not worker.alive():
                    raise ParseError("the parser ran out of memory or crashed on this feed")
                if time.monotonic() > deadline:
                    raise ParseError(f"parsing took longer than {self.timeout:g} s (a hostile feed?)")
            status, value = worker.conn.recv()
        except ParseError:
            worker.kill()
            self._give(None)
            raise
        except (EOFError, OSError):
            worker.kill()
            self._give(None)
            raise ParseError("the parser ran out of memory or crashed on this feed") from None
        self._give(worker)
        if status == "error":
            raise ParseError(value)
        return value  # type: ignore[no-any-return]

    def release(self) -> None:
        """Let every idle worker exit now, without waiting for it (``close`` reaps them).

        Called when the parsing is over, so that the workers' memory is returned while the run goes
        on to render and push; a later ``parse`` would start a new worker."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._leaving.extend(idle)
        for worker in idle:
            worker.ask_to_stop()

    def close(self) -> None:
        """Stop every worker."""
        self.release()
        with self._lock:
            leaving, self._leaving = self._leaving, []
        for worker in leaving:
            worker.stop()

    def prewarm(self, count: int) -> None:
        """Start up to ``count`` workers now, so that their start-up overlaps the downloads."""
        with self._lock:
            while self._count < min(count, self.size):
                self._count += 1
                self._idle.append(_Worker())

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
