"""Ingest: sources → readings → entries.

A source kind turns a source's config and its stored state into a ``Reading`` (the bytes and the
validators, or "unchanged"); which kind reads a source is looked up in ``SOURCE_KINDS`` by the feed's
address, as reader mounts its retrievers, not decided by a branch. An unchanged reading (a 304, the
same file, the same bytes again) is not parsed again; a changed one is parsed in the parser
processes. Each feed's outcome is a value: a bad feed is reported and the others go on.

Reading and parsing are two stages with a pool of threads each: ``[network] concurrency`` downloads
at once, and as many parses as there are parser processes. A download thread hands a changed body
to the parse stage and goes on to the next feed: a slow feed server and a slow parse do not hold each
other up. The bodies held at once (downloading or waiting for a parser) are bounded, so memory is too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from . import __version__
from .config import Config, SourceConfig
from .feeds import ParsedFeed, ParseError, ParserPool, SourceContext
from .models import RewriteRules, iso, sha256
from .records import FeedState
from .redact import redact
from .report import FeedOutcome, Progress

if TYPE_CHECKING:
    import datetime as dt

    from .fetch import Fetcher

log = logging.getLogger("syndicate")
T = TypeVar("T")

USER_AGENT = f"syndicate/{__version__} (+https://github.com/syndicate-tool/syndicate)"


class ReadError(Exception):
    """A source could not be read (a download or a file); str(e) says why."""


@dataclass(frozen=True)
class Reading:
    """One read of a source: ``body`` None when the source says it is unchanged (a 304, the same file)."""

    body: bytes | None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None


class SourceKind(Protocol):
    """How one kind of source is read."""

    def read(self, source: SourceConfig, state: FeedState, same: bool) -> Reading:
        """Read the source; ``same``: ``state``'s validators are of this source as configured, so they may
        be sent and an unchanged source may say so. ReadError when it cannot be read."""


class Network:
    """The run's guarded fetcher, made when first needed and closed when the reads are done."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._fetcher: Fetcher | None = None
        self._lock = threading.Lock()

    def fetcher(self) -> Fetcher:
        """The fetcher (shared by the download threads)."""
        with self._lock:
            if self._fetcher is None:
                from .fetch import Fetcher

                net = self.config.network
                self._fetcher = Fetcher(timeout=net.timeout, deadline=net.deadline, max_bytes=net.max_bytes,
                                        allow_private=net.allow_private, user_agent=USER_AGENT)
            return self._fetcher

    def close(self) -> None:
        """Close its kept-alive connections (a later fetch makes new ones)."""
        with self._lock:
            fetcher, self._fetcher = self._fetcher, None
        if fetcher is not None:
            fetcher.close()


class HTTPSource:
    """A feed on the web, read with a conditional GET through the guarded fetcher."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def read(self, source: SourceConfig, state: FeedState, same: bool) -> Reading:
        """Download the feed."""
        from .fetch import FetchError

        try:
            response = self.network.fetcher().get(source.feed, etag=state.etag if same else None,
                                                  last_modified=state.last_modified if same else None, trusted=True)
        except FetchError as exc:
            raise ReadError(str(exc)) from None
        if response.status == 304:
            return Reading(body=None)
        return Reading(response.body, response.headers.get("Content-Type"), response.etag, response.last_modified)


class FileSource:
    """A feed in a local file (the bundled example, tests): its hash stands for an ETag."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def read(self, source: SourceConfig, state: FeedState, same: bool) -> Reading:
        """Read the file."""
        path = self.config.resolve(source.feed)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ReadError(f"cannot read {path}: {exc.strerror}") from None
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if same and state.etag == digest:
            return Reading(body=None)
        return Reading(data, etag=digest)


#: Source kinds by the scheme of a feed's address ("" and "file": a path).
SOURCE_KINDS: dict[str, Callable[[Config, Network], SourceKind]] = {
    "http": lambda _config, network: HTTPSource(network),
    "https": lambda _config, network: HTTPSource(network),
    "file": lambda config, _network: FileSource(config),
}


def kind_name(source: SourceConfig) -> str:
    """The key of the source's kind in ``SOURCE_KINDS``."""
    return "file" if source.is_local_file else source.feed.split(":", 1)[0].lower()


def source_context(sid: str, source: SourceConfig, rules: RewriteRules) -> SourceContext:
    """What parsing a source's feed needs besides its bytes."""
    return SourceContext(source=sid, feed_url=None if source.is_local_file else source.feed,
                         site_url=source.site_url, aliases=source.aliases, author=source.author, rules=rules)


class FeedReader:
    """Reads the selected feeds of a run, concurrently, into outcomes."""

    def __init__(self, config: Config, source_ids: list[str], rules: RewriteRules, network: Network,
                 now: dt.datetime) -> None:
        self.config, self.source_ids, self.rules, self.network, self.now = config, source_ids, rules, network, now
        self.kinds = {name: make(config, network) for name, make in SOURCE_KINDS.items()}
        self._parse_keys: dict[str, str] = {}

    def parse_key(self, sid: str) -> str:
        """Everything besides the bytes that shapes the entries parsed from a feed (computed once a run)."""
        if sid not in self._parse_keys:
            ctx = source_context(sid, self.config.sources[sid], self.rules)
            self._parse_keys[sid] = sha256(__version__, ctx.feed_url, ctx.site_url, ctx.aliases, ctx.author,
                                           ctx.rules.embed_hosts, ctx.rules.strip_params)
        return self._parse_keys[sid]

    def same_reading(self, sid: str, state: FeedState | None) -> bool:
        """True when the stored entries were read from this URL with these settings: then the validators
        may be sent, and an unchanged body need not be parsed again."""
        return (state is not None and state.url == self.config.sources[sid].feed
                and state.parse_key == self.parse_key(sid))

    def read_all(self, states: dict[str, FeedState], progress: Progress,
                 while_parsing: Callable[[], None] = lambda: None) -> list[FeedOutcome]:
        """Every selected feed's outcome, in config order; ``while_parsing`` runs while parsers work."""
        progress.start("feeds", len(self.source_ids))
        outcomes: list[FeedOutcome] = []
        must_parse = sum(1 for sid in self.source_ids if self._must_parse(sid, states.get(sid)))
        concurrency = self.config.network.concurrency
        with _parsers() as pool, concurrent.futures.ThreadPoolExecutor(concurrency) as downloads, \
                concurrent.futures.ThreadPoolExecutor(pool.size) as parses:
            # A body is held from its download until its parse ends: at most this many at once.
            bodies = threading.BoundedSemaphore(concurrency + pool.size)

            def parse(changed: Changed) -> FeedOutcome:
                try:
                    return self.parse(changed, pool)
                finally:
                    bodies.release()

            def read(sid: str) -> FeedOutcome | concurrent.futures.Future[FeedOutcome]:
                bodies.acquire()
                try:
                    result = self.read(sid, states.get(sid))
                except BaseException:
                    bodies.release()
                    raise
                if not isinstance(result, Changed):
                    bodies.release()
                    return result
                return parses.submit(parse, result)

            if must_parse:  # such a read will parse for sure: let a worker start while we download
                pool.prewarm(must_parse)
            reads = {downloads.submit(read, sid): sid for sid in self.source_ids}
            if must_parse:
                while_parsing()
            parsing: dict[concurrent.futures.Future[FeedOutcome], str] = {}
            for future in concurrent.futures.as_completed(reads):
                done = _result(future, reads[future])
                if isinstance(done, concurrent.futures.Future):
                    parsing[done] = reads[future]
                else:
                    outcomes.append(done)
                    progress.advance("feeds")
            for parsed in concurrent.futures.as_completed(parsing):
                outcomes.append(_result(parsed, parsing[parsed]))
                progress.advance("feeds")
        self.network.close()  # its connections to the feeds; an image fetch makes a new one
        outcomes.sort(key=lambda o: self.source_ids.index(o.source))
        return outcomes

    def _must_parse(self, sid: str, state: FeedState | None) -> bool:
        """True when nothing stored lets this read be recognised as unchanged."""
        return not self.same_reading(sid, state) or not (
            state and (state.etag or state.last_modified or state.body_hash))

    def read(self, sid: str, stored: FeedState | None) -> FeedOutcome | Changed:
        """One feed read: its outcome when it is unchanged or cannot be read, else what to parse."""
        source = self.config.sources[sid]
        state = replace(stored or FeedState(source=sid), fetched_at=iso(self.now))
        same = self.same_reading(sid, state)
        try:
            reading = self.kinds[kind_name(source)].read(source, state, same)
        except (ReadError, KeyError) as exc:
            reason = redact(str(exc) if isinstance(exc, ReadError) else f"no source kind reads {source.feed!r}")
            return FeedOutcome(sid, "failed", error=reason,
                               state=replace(state, last_error=reason, failures=state.failures + 1))
        if reading.body is None:
            return _unchanged(sid, state)
        # A server without validators (or one that ignores them) sends the same bytes again: those
        # are not parsed again either.
        body_hash = sha256(reading.content_type or "", hashlib.sha256(reading.body).hexdigest())
        if same and state.body_hash == body_hash:
            return _unchanged(sid, replace(state, etag=reading.etag, last_modified=reading.last_modified))
        state = replace(state, etag=reading.etag, last_modified=reading.last_modified, body_hash=body_hash, parse_key=self.parse_key(sid), url=source.feed)
        return Changed(sid, reading.body, replace(source_context(sid, source, self.rules),
                                                  content_type=reading.content_type), state)

    def parse(self, changed: Changed, pool: ParserPool) -> FeedOutcome:
        """A changed feed's outcome: its entries, or why they cannot be had."""
        sid, state = changed.sid, changed.state
        try:
            parsed: ParsedFeed = pool.parse(changed.body, changed.context)
        except ParseError as exc:
            # This version of the feed is broken: remember its validators, so that while it stays the
            # same it is reported again without being parsed again.
            reason = redact(str(exc))
            return FeedOutcome(sid, "failed", error=reason, state=replace(
                state, bad_version=True, last_error=reason, failures=state.failures + 1))
        state = replace(state, ok_at=iso(self.now), last_error=None, failures=0, warning=parsed.warning,
                        license=parsed.license, bad_version=False)
        return FeedOutcome(sid, "ok", entries=parsed.entries, warning=parsed.warning, state=state)


@dataclass(frozen=True)
class Changed:
    """A reading with a body to parse: the feed's bytes, what parsing needs to know, the state so far."""

    sid: str
    body: bytes
    context: SourceContext
    state: FeedState


def _result(future: concurrent.futures.Future[T], sid: str) -> T | FeedOutcome:
    """A read's or a parse's result; a bug in either is that feed's failure, never the others'."""
    try:
        return future.result()
    except Exception as exc:
        log.exception("unexpected error reading %s", sid)
        return FeedOutcome(sid, "failed", error=redact(f"{type(exc).__name__}: {exc}"),
                           state=FeedState(source=sid, last_error=str(exc)))


@contextlib.contextmanager
def _parsers() -> Iterator[ParserPool]:
    """The parser processes of one reading of the feeds, stopped at its end without waiting for them:
    each takes about 0.1 s to tear down its interpreter (bench/why.md), which nothing that follows
    needs. They are told to exit at once (their memory is returned now) and a thread reaps them; the
    interpreter's own exit waits for that thread."""
    pool = ParserPool()
    try:
        yield pool
    finally:
        pool.release()
        threading.Thread(target=pool.close, name="syndicate-parser-reaper").start()


def _unchanged(sid: str, state: FeedState) -> FeedOutcome:
    """A 304 (or the same file): its entries last seen stand — or its last error, if it was broken."""
    if state.bad_version and state.last_error:
        return FeedOutcome(sid, "failed", error=state.last_error, state=replace(state, failures=state.failures + 1))
    return FeedOutcome(sid, "not-modified", state=replace(state, failures=0, last_error=None))
