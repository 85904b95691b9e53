"""Feed bytes → normalised Entries, parsed in isolated worker processes.

feedparser only ever sees bytes we fetched (with the feed URL as ``content-location``); it never
fetches. Its sanitizer and URL resolution are off: ``rewrite.clean`` does both, better and faster.

A hostile feed must not stall or exhaust the run (feedparser's author-email regex is a ReDoS: a 48 KB
author takes 33 s), so parsing happens in worker processes with an address-space limit and a wall
clock budget; a worker that overruns is killed and replaced, and that feed is reported.

The budget grows with the feed's size (``ParseBudget``): an honest feed parses in time about proportional
to its bytes (50–170 KB/s measured on a loaded two-core machine), a ReDoS in time quadratic in a few
kilobytes. So a fixed limit either refuses a big honest feed (35,000 entries, 9.6 MB) or lets a small
hostile one run for minutes; a limit of ``base + size × rate`` does neither, and the size is already capped by
``[network] max_bytes``, so the budget is too.
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
from .redact import shorten
from .text import visible
from .urls import SiteIdentity, clean_url, web_url


@dataclass(frozen=True)
class ParseBudget:
    """How long one feed may take to parse before its worker is killed: ``base + size × rate``."""

    base_seconds: float = 10.0
    #: 30 s a megabyte is 33 KB/s. Measured here, feedparser and normalise did 4,000 entries (1.6 MB)
    #: in 9.7 s and 35,000 entries (14 MB) in 255 s (18 s/MB) on a loaded two-core machine; its ReDoS
    #: manages 48 KB in 33 s. A 10 MB feed (the max_bytes default) gets 310 s, 48 KB of ReDoS 11.4 s.
    seconds_per_megabyte: float = 30.0

    def seconds_for(self, size: int) -> float:
        """The budget for a feed of ``size`` bytes."""
        return self.base_seconds + self.seconds_per_megabyte * size / 1_000_000


PARSE_BUDGET = ParseBudget()
#: Seconds a worker may take to start (import feedparser) and pick up a job: not part of the budget.
WORKER_STARTUP = 60.0
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


def _words(text: str) -> str:
    """``text`` as one line of visible words (runs of whitespace one space; ``text.visible``)."""
    return " ".join(visible(text).split())


def _images(item: Any, base: str | None) -> list[Image]:
    """Featured-image candidates, best first: media:content, media:thumbnail, image enclosures."""
    credit = None
    for c in item.get("media_credit") or []:
        if _words(c.get("content") or ""):
            credit = visible(c["content"]).strip()
            break
    caption = None
    detail = item.get("media_description")
    if isinstance(detail, str) and _words(detail):
        caption = visible(detail).strip()
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
        if name and _words(name):
            return _words(name)
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
    written_title = " ".join((item.get("title") or "").split())  # as the feed wrote it: a made-up guid's key
    title = _words(written_title)
    value, content_base, content_type = _content(item)
    # dict.get: feedparser's own .get maps a missing updated_parsed to published_parsed, with a warning
    updated = _utc(dict.get(item, "updated_parsed"))
    published = _utc(dict.get(item, "published_parsed")) or updated
    if not guid:  # not the body: an edit of the post must not make it another post (identity.py)
        guid = url or "sha256:" + hashlib.sha256(f"{written_title}\n{published}".encode("utf-8", "replace")).hexdigest()[:32]

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
    terms = (_words(t.get("term") or "") for t in item.get("tags") or [])
    categories = tuple(dict.fromkeys(term for term in terms if term))
    entry = Entry(
        source=ctx.source,
        guid=guid,
        url=url,
        title=title or (url or guid),
        author=_author(item, feed, ctx.author),
        published=published,
        updated=updated,
        categories=categories,
        content=visible(cleaned.html),
        summary=_words(summary),
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


_ENTITY = re.compile(r"<!ENTITY\s+%?\s*([^\s>]+)\s+(SYSTEM|PUBLIC|\"[^\"]*\"|'[^']*')", re.I)


def _document_text(data: bytes) -> str:
    """The feed as text, well enough to find its markup (UTF-16/32 by their BOM, else ASCII-compatible)."""
    for bom, codec in ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le")):
        if data.startswith(bom):
            return data[len(bom):].decode(codec, "replace")
    if data[:4] in (b"\x00<\x00?", b"<\x00?\x00"):  # UTF-16 without a BOM, as an XML declaration shows it
        return data.decode("utf-16-be" if data[0] == 0 else "utf-16-le", "replace")
    return data.decode("latin-1")  # every byte is one character: ASCII markup is found where it is


def _skip_quoted_and_comments(text: str, pos: int, stop: str) -> int:
    """The position of the first ``stop`` character at or after ``pos`` outside quotes and comments
    (``len(text)`` when there is none: an unterminated declaration runs to the end)."""
    while pos < len(text):
        char = text[pos]
        if char in "\"'":
            end = text.find(char, pos + 1)
            pos = len(text) if end < 0 else end + 1
        elif text.startswith("<!--", pos):
            end = text.find("-->", pos + 4)
            pos = len(text) if end < 0 else end + 3
        elif char in stop:
            return pos
        else:
            pos += 1
    return len(text)


def declarations(data: bytes) -> str:
    """The markup declarations of a feed's DTD: the internal subset of its DOCTYPE (and any stray
    ``<!ENTITY …>`` before the root element), as text.

    Only these can declare entities. Everything after the root element's start tag is content: a post
    quoting ``<!ENTITY x SYSTEM …>`` in CDATA or in an escaped description declares nothing."""
    text = _document_text(data)
    found: list[str] = []
    pos = 0
    while pos < len(text):
        start = text.find("<", pos)
        if start < 0:
            break
        if text.startswith("<?", start):  # the XML declaration, a processing instruction
            end = text.find("?>", start + 2)
            pos = len(text) if end < 0 else end + 2
        elif text.startswith("<!--", start):
            end = text.find("-->", start + 4)
            pos = len(text) if end < 0 else end + 3
        elif text[start:start + 9].upper() == "<!DOCTYPE":
            # the name and external id, then either ">" or the internal subset "[ … ]"
            pos = _skip_quoted_and_comments(text, start + 9, "[>")
            if pos < len(text) and text[pos] == "[":
                end = pos + 1
                while end < len(text) and text[end] != "]":  # declarations, each skipped whole
                    if text.startswith("<!--", end):
                        close = text.find("-->", end + 4)
                        end = len(text) if close < 0 else close + 3
                    elif text.startswith("<?", end):
                        close = text.find("?>", end + 2)
                        end = len(text) if close < 0 else close + 2
                    elif text.startswith("<!", end):
                        close = _skip_quoted_and_comments(text, end + 2, ">")
                        found.append(text[end:close + 1])
                        end = close + 1
                    else:  # whitespace, a parameter-entity reference (%p;), or junk: one step at a time
                        end += 1
                pos = _skip_quoted_and_comments(text, end + 1, ">") + 1
            else:
                pos += 1
        elif text.startswith("<!", start):  # a declaration outside a DOCTYPE: not valid XML, still refused
            close = _skip_quoted_and_comments(text, start + 2, ">")
            found.append(text[start:close + 1])
            pos = close + 1
        else:
            break  # the root element: the prolog is over
    return "\n".join(found)


def refuse_entity_tricks(data: bytes) -> None:
    """Refuse XML entity attacks before any parser sees them (in the DTD, not in the content).

    feedparser already neutralises them, but a feed that declares external entities (XXE) or entities
    built from other entities (billion laughs) is hostile, not merely broken: it is reported, not used.
    Only the feed's own declarations count (``declarations``): text that quotes them is just text.
    """
    for match in _ENTITY.finditer(declarations(data)):
        kind = match.group(2).upper()
        if kind in ("SYSTEM", "PUBLIC"):
            raise ParseError("refused: the feed declares an external entity (XXE)")
        if re.search(r"&[A-Za-z_:]", match.group(2)):  # &other; — character references (&#160;) are fine
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
    try:
        parsed = feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=False,
                                  resolve_relative_uris=False)
    except (ValueError, LookupError, UnicodeError) as error:
        # feedparser's own encoding detection raises on a mangled declaration (encoding="\x80tf-8"):
        # the feed's fault, so a parse error of that feed like any other, never an escape.
        raise ParseError(shorten(f"could not parse: {type(error).__name__}: {error}", 200)) from None
    feed = parsed.get("feed", {})
    problem = None
    exc = parsed.get("bozo_exception")
    # A feed served as text/html or text/plain parses fine: not worth a warning on every run.
    if parsed.get("bozo") and type(exc).__name__ != "NonXMLContentType":
        problem = f"{type(exc).__name__}: {exc}" if exc is not None else "not well-formed"
        problem = shorten(" ".join(problem.split()), 200)
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
# Isolation: a small pool of worker processes with resource limits and a per-feed time budget.


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
        results.send(("started", None))  # the parse budget counts from here, not from the import
        try:
            result: Any = ("ok", parse_bytes(data, ctx))
        except ParseError as exc:
            result = ("error", str(exc))
        except MemoryError:
            result = ("error", "parse used too much memory")
        except RecursionError:
            result = ("error", "feed nested too deeply to parse")
        except Exception as exc:  # one bad feed never raises out of the parser (feedparser's habit too)
            result = ("error", shorten(f"could not parse: {type(exc).__name__}: {exc}", 300))
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

    def __init__(self, workers: int | None = None, budget: ParseBudget = PARSE_BUDGET) -> None:
        self.size = workers or max(1, min(4, os.cpu_count() or 1))
        self.budget = budget
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
        budget = self.budget.seconds_for(len(data))
        try:
            worker.send((data, ctx))
            self._wait(worker, WORKER_STARTUP, "the parser did not start")
            status, value = worker.conn.recv()
            if status == "started":
                self._wait(worker, budget, f"parsing took longer than {round(budget, 1):g} s (a hostile feed?)")
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

    @staticmethod
    def _wait(worker: _Worker, seconds: float, overrun: str) -> None:
        """Wait until the worker has something to say; ParseError(``overrun``) after ``seconds``."""
        deadline = time.monotonic() + seconds
        while not worker.conn.poll(0.05):
            if not worker.alive():
                raise ParseError("the parser ran out of memory or crashed on this feed")
            if time.monotonic() > deadline:
                raise ParseError(overrun)

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
