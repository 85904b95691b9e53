"""The order of the stages, convergence, and per-feed / per-delivery error capture.

fetch → parse → decide → rewrite → render → push → record (``STAGES``). A bad feed is recorded and
the others go on; a failed delivery stays due and the run goes on; the report's exit code tells cron
the truth.

Convergence: copies link to each other (series notes, cross-links), and a CMS tells us a copy's URL
only once it exists. So each partner is worked in passes: every pass renders every permitted entry
with the copies known so far and pushes what changed; a pass that created a copy or saw a copy's URL
change is followed by another. After one sync every copy is consistent, and a second sync finds
nothing to do.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from . import __version__, dates
from .config import Config, PartnerConfig, SourceConfig, packaged_templates, partner_module
from .decide import Rules, Verdict
from .errors import ConfigError, NotFound, UsageError
from .feeds import ParsedFeed, ParseError, ParserPool, SourceContext
from .models import Article, Decision, Entry, RewriteRules, from_iso, iso, sha256
from .prefetch import Job, Prefetch, Reading
from .publishers import make_publisher
from .publishers.base import (FetchedImage, ImageError, PartnerDown, PartnerEdited, Publisher, PublishContext,
                              PublishError, RemoteCopy, UnknownOutcome)
from .redact import redact
from .records import FAILED, HELD, INTENT, OK, PENDING, WITHDRAWN, Delivery, FeedState
from .urls import slug_from_url

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("syndicate")

#: The stages in the order they run; ``tests/test_pipeline.py`` checks the code keeps it.
STAGES = ("fetch", "parse", "decide", "rewrite", "render", "push", "record")
USER_AGENT = f"syndicate/{__version__} (+https://github.com/syndicate-tool/syndicate)"
MAX_PASSES = 4


class Progress(Protocol):
    """What the pipeline tells a progress display (rich on a terminal, nothing in cron)."""

    def start(self, what: str, total: int) -> None:
        """A phase begins with ``total`` steps."""

    def advance(self, what: str, step: int = 1) -> None:
        """Steps of a phase are done."""


class NoProgress:
    """For cron and tests."""

    def start(self, what: str, total: int) -> None:
        """Nothing to show."""

    def advance(self, what: str, step: int = 1) -> None:
        """Nothing to show."""


@dataclass
class FeedOutcome:
    """What happened to one source's feed this run."""

    source: str
    status: str                  # "ok" | "not-modified" | "failed"
    entries: list[Entry] | None = None
    error: str | None = None
    warning: str | None = None
    state: FeedState | None = None


@dataclass
class PartnerReport:
    """Counts for one partner."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    waiting: int = 0
    held: int = 0
    withdrawn: int = 0
    failed: int = 0


@dataclass
class RunReport:
    """What a run did; its ``exit_code`` is what cron sees."""

    feeds: list[FeedOutcome] = field(default_factory=list)
    partners: dict[str, PartnerReport] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config_errors: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def failed_feeds(self) -> list[FeedOutcome]:
        return [f for f in self.feeds if f.status == "failed"]

    @property
    def exit_code(self) -> int:
        if self.config_errors:
            return 2
        failed = bool(self.failed_feeds) or any(p.failed for p in self.partners.values())
        return 1 if failed or self.errors else 0

    def partner(self, pid: str) -> PartnerReport:
        return self.partners.setdefault(pid, PartnerReport())


def marker_for(source: str, guid: str, partner: str) -> str:
    """A stable id of entry × partner that our copy carries (used to find it after a lost answer)."""
    return "syn-" + hashlib.sha256(f"{source}\n{guid}\n{partner}".encode()).hexdigest()[:16]


class StoreMedia:
    """``MediaCache`` backed by the store."""

    def __init__(self, store: Store, partner: str, dry_run: bool) -> None:
        self.store, self.partner, self.dry_run = store, partner, dry_run

    def get(self, source_url: str) -> tuple[str, str] | None:
        return self.store.media(self.partner, source_url)

    def put(self, source_url: str, remote_id: str, remote_url: str) -> None:
        if not self.dry_run:
            self.store.put_media(self.partner, source_url, remote_id, remote_url)

    def forget(self, source_url: str) -> None:
        if not self.dry_run:
            self.store.forget_media(self.partner, source_url)


@dataclass
class Planned:
    """One entry × partner being worked on."""

    entry: Entry
    first_seen: dt.datetime | None
    verdict: Verdict
    delivery: Delivery | None
    action: str = "skip"
    reason: str | None = None
    article: Article | None = None
    render_key: str | None = None


@dataclass
class _Fetching:
    """The reads of one run's feeds, once started."""

    pool: ParserPool
    own: bool  # the pool is this run's own (closed when the reads are collected)
    executor: concurrent.futures.ThreadPoolExecutor
    futures: dict[concurrent.futures.Future[FeedOutcome], str]
    parses: bool  # some feed will be parsed for sure
    collected: bool = False


class Pipeline:
    """One run of syndicate over a config and a store."""

    def __init__(self, config: Config, store: Store | None, *, sources: Iterable[str] = (),
                 partners: Iterable[str] = (), dry_run: bool = False, overwrite: Iterable[str] = (),
                 progress: Progress | None = None, now: dt.datetime | None = None,
                 parsers: ParserPool | None = None) -> None:
        """``parsers``: a parser pool the caller started early (and closes); else fetch makes its own."""
        self.config = config
        self._parsers = parsers
        self.store = store
        self.dry_run = dry_run
        self.progress = progress or NoProgress()
        self.now = now or dt.datetime.now(dt.timezone.utc)
        self.rules = Rules(config)
        self._renderer: Any = None
        self.rewrite_rules = RewriteRules(config.rewrite.embed_hosts, config.rewrite.strip_params)
        self.source_ids = self._select(list(sources), config.sources, "source")
        self.partner_ids = self._select(list(partners), config.partners, "partner")
        self.overwrite = list(overwrite)
        self._fetcher: Any = None
        self._fetcher_lock = threading.Lock()
        self._fetching: _Fetching | None = None
        self._prefetch: Prefetch | None = None
        self.report = RunReport(dry_run=dry_run)
        self._entries_cache: dict[str, list[tuple[Entry, dt.datetime | None]]] | None = None
        self._outcomes: list[FeedOutcome] = []
        self._feed_states: dict[str, FeedState] = {}
        self._series_numbers: dict[tuple[str, str], dict[str, int]] = {}
        self._verdicts: dict[tuple[str, str, str], Verdict] = {}
        self._template_fp: dict[str, str] = {}
        self._partner_fp: dict[str, str] = {}
        self._stale_keys: list[tuple[Delivery, str | None]] = []
        self._slugs: dict[str, dict[tuple[str, str], str]] = {}
        self._taken_slugs: dict[str, set[str]] = {}
        self._known_entries: dict[str, dict[str, Entry]] | None = None
        self._current_index: dict[str, dict[str, Entry]] = {}
        self._url_indexes: dict[str, dict[str, str]] = {}

    @staticmethod
    def _select(wanted: list[str], known: dict[str, Any], what: str) -> list[str]:
        for item in wanted:
            if item not in known:
                raise UsageError(f"unknown {what} {item!r} (known: {', '.join(known) or 'none'})")
        return wanted or list(known)

    # ==========================================================================================
    # fetch + parse

    @property
    def renderer(self) -> Any:
        """The template environment (Jinja2 is loaded only by runs that render)."""
        if self._renderer is None:
            from .render import Renderer

            self._renderer = Renderer(self.config.base_dir)
        return self._renderer

    @property
    def fetcher(self) -> Any:
        with self._fetcher_lock:
            if self._fetcher is None:
                self._fetcher = self._new_fetcher()
            return self._fetcher

    def _new_fetcher(self) -> Any:
        from .fetch import Fetcher

        net = self.config.network
        return Fetcher(timeout=net.timeout, deadline=net.deadline, max_bytes=net.max_bytes,
                       allow_private=net.allow_private, user_agent=USER_AGENT)

    def _context(self, sid: str, source: SourceConfig) -> SourceContext:
        return SourceContext(source=sid, feed_url=None if source.is_local_file else source.feed,
                             site_url=source.site_url, aliases=source.aliases, author=source.author,
                             rules=self.rewrite_rules)

    def _must_parse(self, sid: str) -> bool:
        """True when the feed will be parsed for sure: nothing stored lets this read be recognised as
        unchanged (no validators to send, no hash of the last body)."""
        state = self._feed_states.get(sid)
        return not self._same_reading(sid, state) or not (
            state and (state.etag or state.last_modified or state.body_hash))

    @functools.cache  # noqa: B019 (one pipeline per run: the cache lives as long as the run)
    def _parse_key(self, sid: str) -> str:
        """Everything besides the bytes that shapes the entries parsed from a feed."""
        ctx = self._context(sid, self.config.sources[sid])
        return sha256(__version__, ctx.feed_url, ctx.site_url, ctx.aliases, ctx.author,
                      ctx.rules.embed_hosts, ctx.rules.strip_params)

    def _same_reading(self, sid: str, state: FeedState | None) -> bool:
        """True when the stored entries were read from this URL with these settings: then the
        validators may be sent, and an unchanged body need not be parsed again."""
        return (state is not None and state.url == self.config.sources[sid].feed
                and state.parse_key == self._parse_key(sid))

    def _read_feed(self, sid: str, pool: ParserPool) -> FeedOutcome:
        source = self.config.sources[sid]
        content_type: str | None = None
        if source.is_local_file:
            FetchError: type[Exception] = ParseError  # no HTTP, no need to load it
        else:
            from .fetch import FetchError
        state = self._feed_states.get(sid) or FeedState(source=sid)
        state = replace(state, fetched_at=iso(self.now))
        same = self._same_reading(sid, state)
        try:
            if source.is_local_file:
                path = self.config.resolve(source.feed)
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise ParseError(f"cannot read {path}: {exc.strerror}") from None
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                if same and state.etag == digest:
                    return self._unchanged_feed(sid, state)
                validators = {"etag": digest, "last_modified": None}
            else:
                reading = self._download(self._job(sid, state))
                if reading.status == 304:
                    return self._unchanged_feed(sid, state)
                data, content_type = reading.body, reading.content_type
                validators = {"etag": reading.etag, "last_modified": reading.last_modified}
        except (FetchError, ParseError) as exc:
            reason = redact(str(exc))
            return FeedOutcome(sid, "failed", error=reason,
                               state=replace(state, last_error=reason, failures=state.failures + 1))
        # A server without validators (or one that ignores them) sends the same bytes again: those
        # are not parsed again either.
        body_hash = sha256(content_type or "", hashlib.sha256(data).hexdigest())
        if same and state.body_hash == body_hash:
            return self._unchanged_feed(sid, replace(state, **validators))
        validators = {**validators, "body_hash": body_hash, "parse_key": self._parse_key(sid)}
        try:
            parsed: ParsedFeed = pool.parse(data, replace(self._context(sid, source), content_type=content_type))
        except ParseError as exc:
            # This version of the feed is broken: remember its validators, so that while it stays the
            # same it is reported again without being parsed again.
            reason = redact(str(exc))
            return FeedOutcome(sid, "failed", error=reason, state=replace(
                state, **validators, url=source.feed, bad_version=True, last_error=reason,
                failures=state.failures + 1))
        state = replace(state, **validators, url=source.feed, ok_at=iso(self.now), last_error=None, failures=0,
                        warning=parsed.warning, license=parsed.license, bad_version=False)
        return FeedOutcome(sid, "ok", entries=parsed.entries, warning=parsed.warning, state=state)

    def _job(self, sid: str, state: FeedState | None) -> Job:
        """The download of a feed: its URL, and the validators stored with entries read with these settings."""
        same = self._same_reading(sid, state)
        return Job(sid, self.config.sources[sid].feed, state.etag if same and state else None,
                   state.last_modified if same and state else None)

    def _download(self, job: Job) -> Reading:
        """The reading of a feed: the one the download process made for this exact request, else our own."""
        from .fetch import FetchError

        reading = self._prefetch.take(job) if self._prefetch is not None else None
        if reading is None:
            response = self.fetcher.get(job.url, etag=job.etag, last_modified=job.last_modified, trusted=True)
            return Reading(status=response.status, body=response.body,
                           content_type=response.headers.get("Content-Type"), etag=response.etag,
                           last_modified=response.last_modified)
        if reading.error is not None:
            raise FetchError(reading.error)
        return reading

    def prefetch(self, states: dict[str, FeedState]) -> None:
        """Start the feeds' downloads in a forked process before the store is loaded (see prefetch.py),
        with the validators ``states`` give; nothing when a fork is not safe here."""
        jobs = [self._job(sid, states.get(sid)) for sid in self.source_ids
                if not self.config.sources[sid].is_local_file]
        self._prefetch = Prefetch.start(jobs, self._new_fetcher, self.config.network.concurrency,
                                        patience=self.config.network.deadline)

    def _load_for_push(self) -> None:
        """Load what rendering and pushing need (Jinja2, the CMS client) while feeds are being parsed:
        the parsers are other processes, so this time would otherwise be spent waiting for them."""
        self.renderer  # noqa: B018 (the property loads Jinja2)
        for kind in {self.config.partners[pid].kind for pid in self.partner_ids}:
            preload = getattr(partner_module(kind), "preload", None)
            if preload is not None:
                preload()

    def _unchanged_feed(self, sid: str, state: FeedState) -> FeedOutcome:
        """A 304 (or the same file): its entries last seen stand — or its last error, if it was broken."""
        if state.bad_version and state.last_error:
            return FeedOutcome(sid, "failed", error=state.last_error, state=replace(state, failures=state.failures + 1))
        return FeedOutcome(sid, "not-modified", state=replace(state, failures=0, last_error=None))

    def start_fetch(self, states: dict[str, FeedState] | None = None) -> None:
        """Start reading every selected feed and return at once; ``fetch`` collects the outcomes.

        Downloads run in threads and parsing in the parser processes, so a caller can load the store
        meanwhile. ``states``: the feeds' stored states when the store is not open yet (on a first
        run there are none); by default they are read from the store."""
        if self._fetching is not None:
            return
        if states is None:
            states = self.store.feed_states() if self.store else {}  # one query, not one per feed
        self._feed_states = states
        self.progress.start("feeds", len(self.source_ids))
        own = self._parsers is None
        pool = ParserPool() if own else self._parsers
        assert pool is not None
        executor = concurrent.futures.ThreadPoolExecutor(self.config.network.concurrency)
        unconditional = sum(1 for sid in self.source_ids if self._must_parse(sid))
        if unconditional:  # such a read will parse for sure: let a worker start while we download
            pool.prewarm(unconditional)
        futures = {executor.submit(self._read_feed, sid, pool): sid for sid in self.source_ids}
        self._fetching = _Fetching(pool, own, executor, futures, parses=unconditional > 0)

    def fetch(self) -> list[FeedOutcome]:
        """Fetch and parse every selected feed, concurrently; record outcomes unless this is a dry run."""
        self.start_fetch()
        fetching = self._fetching
        assert fetching is not None
        outcomes: list[FeedOutcome] = []
        with contextlib.closing(fetching.pool) if fetching.own else contextlib.nullcontext(), fetching.executor:
            if fetching.parses:
                self._load_for_push()
            for future in concurrent.futures.as_completed(fetching.futures):
                sid = fetching.futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # a bug must not take the other feeds down
                    log.exception("unexpected error reading %s", sid)
                    outcome = FeedOutcome(sid, "failed", error=redact(f"{type(exc).__name__}: {exc}"),
                                          state=FeedState(source=sid, last_error=str(exc)))
                outcomes.append(outcome)
                self._report_feed(outcome)
                self.progress.advance("feeds")
        fetching.collected = True
        self._end_prefetch()
        fetching.pool.release()  # parsing is over: the workers' memory goes back while we render and push
        self._close_fetcher()  # its kept-alive connections to the feeds; an image fetch makes a new one
        self._record_feeds(outcomes)
        outcomes.sort(key=lambda o: self.source_ids.index(o.source))
        self.report.feeds = outcomes
        self._outcomes = outcomes
        self._entries_cache = None  # loaded when first needed: a run where nothing changed may not need them
        return outcomes

    def close(self) -> None:
        """Stop reads that were started and never collected (the run failed before it got to them)."""
        fetching, self._fetching = self._fetching, None
        if fetching is not None and not fetching.collected:
            fetching.executor.shutdown(wait=True, cancel_futures=True)
            if fetching.own:
                fetching.pool.close()
        self._end_prefetch()
        self._close_fetcher()

    def _end_prefetch(self) -> None:
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None:
            prefetch.close()

    def _close_fetcher(self) -> None:
        with self._fetcher_lock:
            fetcher, self._fetcher = self._fetcher, None
        if fetcher is not None:
            fetcher.close()

    @property
    def _entries(self) -> dict[str, list[tuple[Entry, dt.datetime | None]]]:
        if self._entries_cache is None:
            self._load_entries(self._outcomes)
        assert self._entries_cache is not None
        return self._entries_cache

    def _report_feed(self, outcome: FeedOutcome) -> None:
        if outcome.status == "failed":
            log.error("feed %s: %s", outcome.source, outcome.error)
        elif outcome.warning:
            log.warning("feed %s: %s", outcome.source, outcome.warning)
            self.report.warnings.append(f"feed {outcome.source}: {outcome.warning}")

    def _record_feeds(self, outcomes: list[FeedOutcome]) -> None:
        """Record every feed's outcome and entries in one transaction (one commit, not one per feed)."""
        if self.dry_run or self.store is None:
            return
        with self.store.transaction():
            self.store.save_feeds(o.state for o in outcomes if o.state is not None)
            for outcome in outcomes:
                if outcome.state is not None and outcome.status == "ok" and outcome.entries is not None:
                    self.store.save_entries(outcome.source, outcome.entries)

    def _load_entries(self, outcomes: list[FeedOutcome]) -> None:
        """The entries to work on: this run's read of each feed, else (304, failure) the last one stored."""
        self._entries_cache = {}
        stored: dict[str, list[tuple[Entry, dt.datetime | None]]] = {}
        if self.store is not None:
            for entry, seen in self.store.current_entries(self.source_ids):
                stored.setdefault(entry.source, []).append((entry, seen))
        read = {o.source: o for o in outcomes}
        for sid in self.source_ids:
            outcome = read.get(sid)
            if outcome is not None and outcome.status == "ok" and outcome.entries is not None and (
                    self.dry_run or self.store is None):  # not stored: this run's read, as parsed
                seen_map = {e.guid: s for e, s in stored.get(sid, [])}
                first: dict[str, Entry] = {}
                for e in outcome.entries:  # a feed that repeats a guid: the first one stands (as in the store)
                    first.setdefault(e.guid, e)
                self._entries_cache[sid] = [(e, seen_map.get(e.guid, self.now)) for e in first.values()]
            else:
                self._entries_cache[sid] = stored.get(sid, [])
        self._number_series()

    # ==========================================================================================
    # series

    def _number_series(self) -> None:
        for sid in self.source_ids:
            source = self.config.sources[sid]
            for series in source.series:
                known = self.store.series_numbers(sid, series.name) if self.store else {}
                wanted = series.category.casefold()
                new = [e for e, _ in self._entries.get(sid, [])
                       if e.guid not in known and any(c.casefold() == wanted for c in e.categories)]
                new.sort(key=lambda e: (e.when or self.now, e.guid))
                numbered = {e.guid: n for n, e in enumerate(new, start=max(known.values(), default=0) + 1)}
                if numbered and not self.dry_run and self.store is not None:
                    self.store.add_series_parts(sid, series.name, numbered)
                self._series_numbers[(sid, series.name)] = {**known, **numbered}

    def _series_of(self, entry: Entry) -> list[tuple[str, dict[str, int]]]:
        source = self.config.sources[entry.source]
        out = []
        for series in source.series:
            numbers = self._series_numbers.get((entry.source, series.name), {})
            if entry.guid in numbers:
                out.append((series.name, numbers))
        return out

    def _label(self, entry: Entry, partner: str, number: int, series_name: str) -> str:
        label = self.rules.override_field(entry, partner, "series_label")
        if isinstance(label, str):
            return label
        series = next(s for s in self.config.sources[entry.source].series if s.name == series_name)
        return series.label.format(n=number, title=entry.title)

    # ==========================================================================================
    # decide + rewrite + render

    def entries(self) -> list[tuple[Entry, dt.datetime | None]]:
        """Every current entry of the selected sources, in feed order."""
        return [item for sid in self.source_ids for item in self._entries.get(sid, [])]

    def _ledger_rows(self, pid: str) -> dict[tuple[str, str], Delivery]:
        rows = {}
        if self.store is not None:
            for d in self.store.deliveries([pid]):
                rows[(d.source, d.guid)] = d
        return rows

    def _slug(self, entry: Entry, pid: str, ledger: dict[tuple[str, str], Delivery]) -> str:
        """The copy's slug: the one the partner reported, else the original's own, made unique on the partner."""
        key = (entry.source, entry.guid)
        own = ledger.get(key)
        if own is not None and own.slug:
            return own.slug
        chosen = self._slugs.setdefault(pid, {})
        if key in chosen:
            return chosen[key]
        from slugify import slugify

        base = slug_from_url(entry.url)
        base = slugify(base or entry.title or entry.guid, max_length=120) or marker_for(entry.source, entry.guid, pid)
        taken = self._taken_slugs.get(pid)
        if taken is None:  # built once per partner and run, then kept up to date: not once per entry
            taken = self._taken_slugs[pid] = {d.slug for d in ledger.values() if d.slug}
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        chosen[key] = slug
        taken.add(slug)
        return slug

    def _copies(self, pid: str, ledger: dict[tuple[str, str], Delivery],
                extra: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        """(source, guid) → the URL of this partner's live copy."""
        copies = {key: d.remote_url for key, d in ledger.items()
                  if d.remote_url and d.remote_id and d.state != WITHDRAWN}
        copies.update(extra)
        return copies  # type: ignore[return-value]

    def _render(self, planned: Planned, partner: PartnerConfig, publisher: Publisher,
                copies: dict[tuple[str, str], str], ledger: dict[tuple[str, str], Delivery]) -> None:
        """Fill in ``planned.article`` and its render key."""
        entry = planned.entry
        source = self.config.sources[entry.source]
        site = self.rules.sites[entry.source]
        from .render import SeriesPart

        series: list[SeriesPart] = []
        for name, numbers in self._series_of(entry):
            for guid, number in sorted(numbers.items(), key=lambda kv: kv[1]):
                if guid == entry.guid or (entry.source, guid) not in copies:
                    continue
                part = self._entry_by_guid(entry.source, guid)
                if part is None:
                    continue
                label = self._label(part, partner.id, number, name)
                series.append(SeriesPart(number, label, copies[(entry.source, guid)], part.title))
        link_map: dict[str, str] = {}
        if entry.links and not planned.verdict.no_derivatives:
            by_key = self._url_index(entry.source)
            for link in entry.links:
                key = site.key(link)
                target = by_key.get(key) if key else None
                if target is not None and (entry.source, target) in copies and target != entry.guid:
                    link_map[key] = copies[(entry.source, target)]  # type: ignore[index]
        image = self.rules.featured_image(entry, partner.id)
        slug = self._slug(entry, partner.id, ledger)
        verdict = planned.verdict
        key = sha256(entry.content_hash, self._partner_fingerprint(partner), self._template_fingerprint(partner),
                     [(p.number, p.label, p.url) for p in series], sorted(link_map.items()),
                     image.__dict__ if image else None, slug, verdict.license.spdx if verdict.license else None,
                     verdict.permission.grant_evidence if verdict.permission else None, verdict.no_derivatives)
        planned.render_key = key
        d = planned.delivery
        if d is not None and d.render_key == key and d.state == OK and d.pushed_hash:
            return  # nothing that shapes the article changed: no need to render it again
        if link_map:
            from .rewrite import retarget

            body = retarget(entry.content, site, link_map)
        else:
            body = entry.content
        article = self.renderer.article(entry=entry, source=source, partner=partner, verdict=verdict, body=body,
                                        series=series, image=image, slug=slug)
        planned.article = replace(article, html=publisher.prepare_html(article.html))

    def _partner_fingerprint(self, partner: PartnerConfig) -> str:
        """Changes when anything in the partner's config changes (name, template, status…)."""
        if partner.id not in self._partner_fp:
            self._partner_fp[partner.id] = sha256(partner.model_dump(mode="json"))
        return self._partner_fp[partner.id]

    def _template_fingerprint(self, partner: PartnerConfig) -> str:
        if partner.template not in self._template_fp:
            self._template_fp[partner.template] = self.renderer.fingerprint(partner.template)
        return self._template_fp[partner.template]

    def _known(self, source: str) -> dict[str, Entry]:
        """guid → entry, for every entry of ``source`` ever seen (the current ones win), loaded once per run."""
        if self._known_entries is None:
            known: dict[str, dict[str, Entry]] = {}
            if self.store is not None:  # the current ones are in memory already
                for e in self.store.all_entries(current=False):
                    known.setdefault(e.source, {})[e.guid] = e
            for sid, items in self._entries.items():
                known.setdefault(sid, {}).update((e.guid, e) for e, _ in items)
            self._known_entries = known
        return self._known_entries.get(source, {})

    def _entry_by_guid(self, source: str, guid: str) -> Entry | None:
        current = self._current_index.get(source)
        if current is None:
            current = self._current_index[source] = {e.guid: e for e, _ in self._entries.get(source, [])}
        return current.get(guid) or self._known(source).get(guid)

    def _url_index(self, source: str) -> dict[str, str]:
        """site key of an entry's URL → its guid, over every entry ever seen of the source."""
        if source not in self._url_indexes:
            site = self.rules.sites[source]
            index: dict[str, str] = {}
            for e in self._known(source).values():
                for candidate in (e.url, e.guid):
                    key = site.key(candidate) if candidate else None
                    if key:
                        index.setdefault(key, e.guid)
            self._url_indexes[source] = index
        return self._url_indexes[source]

    def _verdict(self, entry: Entry, partner: PartnerConfig, first_seen: dt.datetime | None) -> Verdict:
        """The permission verdict, decided once per run (passes and predictions ask again)."""
        key = (partner.id, entry.source, entry.guid)
        if key not in self._verdicts:
            self._verdicts[key] = self.rules.verdict(entry, partner, self.now, first_seen)
        return self._verdicts[key]

    def _plan(self, partner: PartnerConfig, publisher: Publisher,
              ledger: dict[tuple[str, str], Delivery], predicted: dict[tuple[str, str], str]) -> list[Planned]:
        """Decide every current entry for one partner, rendering where it matters."""
        plans: list[Planned] = []
        for entry, first_seen in self.entries():
            verdict = self._verdict(entry, partner, first_seen)
            d = ledger.get((entry.source, entry.guid))
            plans.append(self._action(Planned(entry, first_seen, verdict, d), partner))
        copies = self._copies(partner.id, ledger, predicted)
        for planned in plans:
            if planned.action in ("create", "update", "unchanged", "held"):
                self._render(planned, partner, publisher, copies, ledger)
                if planned.action == "unchanged" and planned.delivery is not None:
                    d = planned.delivery
                    changed = (planned.article is not None and planned.article.content_hash() != d.pushed_hash)
                    if changed and partner.updates == "push":
                        planned.action = "update"
                    elif not changed and d.state == OK and d.render_key != planned.render_key:
                        # Rendered the same as what was pushed: remember the inputs' fingerprint, so that
                        # the next run need not render it again.
                        self._stale_keys.append((d, planned.render_key))
        return plans

    def _save_render_keys(self) -> None:
        if self._stale_keys and self.store is not None and not self.dry_run:
            with self.store.transaction():
                for d, key in self._stale_keys:
                    d.render_key = key
                    self.store.put(d)
        self._stale_keys = []

    def _action(self, planned: Planned, partner: PartnerConfig) -> Planned:
        d, verdict = planned.delivery, planned.verdict
        if d is not None and d.state == WITHDRAWN:
            planned.action, planned.reason = "withdrawn", d.note
        elif not verdict.allowed:
            if d is not None and d.has_copy and verdict.revokes:
                planned.action, planned.reason = "withdraw", verdict.reason
            elif verdict.waiting and not (d is not None and d.has_copy):
                planned.action, planned.reason = "wait", verdict.reason
            else:
                planned.action, planned.reason = "skip", verdict.reason
        elif d is None or d.remote_id is None:
            planned.action = "create"
            if d is not None and d.last_error:
                planned.reason = f"retrying: {d.last_error}"
        elif d.state == HELD and self._overwrite_matches(planned.entry):
            planned.action, planned.reason = "update", "overwriting the partner's edit (--overwrite)"
        elif d.state == HELD:
            planned.action, planned.reason = "held", d.note or "the partner edited its copy"
        elif partner.updates == "ignore":
            planned.action = "unchanged"
        elif d.state in (PENDING, INTENT, FAILED):
            planned.action = "update"
            if d.last_error:
                planned.reason = f"retrying: {d.last_error}"
        else:
            planned.action = "unchanged"
        return planned

    def _overwrite_matches(self, entry: Entry) -> bool:
        return any(self.rules.matches(o, entry) for o in self.overwrite)

    def check(self) -> list[Decision]:
        """The decision for every current entry × selected partner, changing nothing."""
        by_entry: dict[tuple[str, str], list[Decision]] = {}
        for pid in self.partner_ids:
            partner = self.config.partners[pid]
            ledger = self._ledger_rows(pid)
            predicted = self._predicted_copies(partner, ledger, placeholders=True)
            # The publisher only shapes the HTML here (as it would be pushed); nothing is sent.
            publisher = make_publisher(partner, self._publish_context(pid))
            try:
                plans = self._plan(partner, publisher, ledger, predicted)
            finally:
                publisher.close()
            for planned in plans:
                key = (planned.entry.source, planned.entry.guid)
                by_entry.setdefault(key, []).append(self._decision(planned, partner))
        # grouped by entry (in feed order), each entry's partners in config order
        return [d for decisions in by_entry.values() for d in decisions]

    def _decision(self, planned: Planned, partner: PartnerConfig) -> Decision:
        return Decision(entry=planned.entry, partner=partner.id, action=planned.action, reason=planned.reason,
                        not_before=planned.verdict.not_before, permission=planned.verdict.permission,
                        no_derivatives=planned.verdict.no_derivatives)

    def _predicted_copies(self, partner: PartnerConfig, ledger: dict[tuple[str, str], Delivery], *,
                          placeholders: bool) -> dict[tuple[str, str], str]:
        """URLs the copies about to be created will have, where the partner's URLs can be foretold.

        A files partner's URLs can; a CMS's cannot. With ``placeholders`` (check, preview) a stand-in
        URL is given for those, so that the other copies are seen to change once the new one exists;
        a real sync links only what it can foretell and converges in a later pass."""
        predicted: dict[tuple[str, str], str] = {}
        base_url = getattr(partner, "base_url", None)
        for entry, first_seen in self.entries():
            d = ledger.get((entry.source, entry.guid))
            if d is not None and (d.remote_id or d.state == WITHDRAWN):
                continue
            if not self._verdict(entry, partner, first_seen).allowed:
                continue
            slug = self._slug(entry, partner.id, ledger)
            predicted[(entry.source, entry.guid)] = (f"{base_url}/{slug}/" if partner.kind == "files" and base_url
                                                     else f"urn:syndicate:pending:{slug}")
        if not placeholders:
            predicted = {k: v for k, v in predicted.items() if not v.startswith("urn:")}
        return predicted

    # ==========================================================================================
    # push + record

    def _publish_context(self, pid: str) -> PublishContext:
        net = self.config.network
        return PublishContext(fetch_image=self._fetch_image, media=StoreMedia(self.store, pid, self.dry_run),  # type: ignore[arg-type]
                              user_agent=USER_AGENT, timeout=net.timeout, base_dir=self.config.base_dir,
                              max_retry_seconds=self.config.delivery.max_retry_seconds)

    def _fetch_image(self, url: str) -> FetchedImage:
        from .fetch import FetchError
        from .images import checked_image

        try:
            response = self.fetcher.get(url, trusted=False, accept="image/avif,image/webp,image/png,image/jpeg,image/*")
        except FetchError as exc:
            raise ImageError(f"featured image {url.split('?', 1)[0]} could not be fetched: {exc}") from None
        return checked_image(url, response.body)

    def sync(self) -> RunReport:
        """The whole pipeline."""
        self.fetch()
        for pid in self.partner_ids:
            self._sync_partner(self.config.partners[pid])
        return self.report

    def _sync_partner(self, partner: PartnerConfig) -> None:
        report = self.report.partner(partner.id)
        publisher = make_publisher(partner, self._publish_context(partner.id))
        try:
            if partner.kind == "files" and self.store is not None and not self.store.unsettled(partner.id):
                steady = self._steady(partner, {}, False)  # a folder needs no read-back: skip the ledger too
                if steady is not None:
                    for name, value in steady.items():
                        setattr(report, name, value)
                    return
            ledger = self._ledger_rows(partner.id)
            unsettled: set[tuple[str, str]] = set()
            refreshed = False
            if not self.dry_run:
                unsettled = self._reconcile(partner, publisher, ledger)
                refreshed = self._refresh(partner, publisher, ledger)
            steady = self._steady(partner, ledger, refreshed or bool(unsettled))
            if steady is not None:  # nothing that could change any copy changed since the last run
                for name, value in steady.items():
                    setattr(report, name, value)
                return
            first_plans: list[Planned] = []
            done: dict[tuple[str, str], str] = {}
            # What could not be reconciled is not pushed this run: a create might duplicate the copy
            # an earlier run made, an update might take our own unanswered write for a partner's edit.
            failed: set[tuple[str, str]] = set(unsettled)
            predicted = self._predicted_copies(partner, ledger, placeholders=False)
            for pass_no in range(MAX_PASSES):
                plans = self._plan(partner, publisher, ledger, predicted)
                work = [p for p in plans if p.action in ("create", "update", "withdraw")
                        and (p.entry.source, p.entry.guid) not in failed]
                if pass_no == 0:
                    first_plans = plans
                    self.progress.start(f"push {partner.id}", len(work))
                    done = {(p.entry.source, p.entry.guid): "failed" if (p.entry.source, p.entry.guid) in unsettled
                            else p.action for p in plans}
                    for p in plans:  # a held update is reported on every run until an editor resolves it
                        if p.action == "held":
                            self._warn(f"{partner.id}: update of {p.entry.url or p.entry.guid} held: {p.reason}")
                if self.dry_run or not work:
                    break
                def push(planned: Planned) -> None:
                    key = (planned.entry.source, planned.entry.guid)
                    result = self._execute(planned, partner, publisher, ledger)
                    if result == "failed":
                        failed.add(key)
                    done[key] = _merge_outcome(done.get(key) if pass_no else None, result)
                    self.progress.advance(f"push {partner.id}")

                if partner.concurrency > 1:
                    # The partner allows several pushes at once; each still records its own intent.
                    with concurrent.futures.ThreadPoolExecutor(partner.concurrency) as pushes:
                        futures = [pushes.submit(push, planned) for planned in work]
                        try:
                            for future in futures:
                                future.result()
                        except BaseException:  # e.g. the partner went down: do not send the rest
                            pushes.shutdown(wait=True, cancel_futures=True)
                            raise
                else:
                    # A partner whose copies carry our marker locally (files) needs no durable intent per
                    # delivery: a crash is reconciled from the copies themselves, so one commit per pass.
                    batch = self.store.transaction() if not _needs_intent(publisher) else contextlib.nullcontext()
                    with batch:  # type: ignore[union-attr]
                        for planned in work:
                            push(planned)
                predicted = {}  # every copy made so far has its real URL now
            self._save_render_keys()
            for outcome in done.values():
                _count(report, outcome)
            self._remember_steady(partner, report, first_plans, ledger)
        except PartnerDown as exc:
            message = redact(str(exc))
            log.error("%s (its deliveries stay due)", message)
            self.report.errors.append(message)
            report.failed += 1
        except ConfigError as exc:  # e.g. its secret is missing: the other partners still go on
            message = redact(str(exc))
            log.error("%s", message)
            self.report.config_errors.append(message)
        finally:
            publisher.close()

    def _warn(self, message: str) -> None:
        message = redact(message)
        log.warning("%s", message)
        self.report.warnings.append(message)

    # --- a run where nothing changed ------------------------------------------------------------

    def _steady_fingerprint(self, partner: PartnerConfig) -> str:
        """Everything besides the feeds and the clock that shapes this partner's copies."""
        listing = []
        for folder in (packaged_templates(), self.config.base_dir / "templates"):
            if folder.is_dir():
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        info = path.stat()
                        listing.append((str(path), info.st_size, info.st_mtime_ns))
        try:
            config_bytes = hashlib.sha256(self.config.path.read_bytes()).hexdigest()
        except OSError:
            config_bytes = ""
        ledger = self.store.ledger_version(partner.id) if self.store is not None else ""
        return sha256(__version__, config_bytes, listing, partner.id, self.source_ids, ledger)

    def _steady(self, partner: PartnerConfig, ledger: dict[tuple[str, str], Delivery],
                touched: bool) -> dict[str, int] | None:
        """The last run's counts when nothing that could change a decision or a copy changed since.

        That is: every feed answered 304 (or is the same file, or failed), the config, the templates
        and the selection are the same, every copy is settled (no pending, held or unanswered
        write), the partner reported no change to our copies, and no embargo or grant expiry has
        come due. Then loading and deciding every entry would find nothing to do."""
        if self.dry_run or self.overwrite or self.store is None or touched:
            return None
        if self.source_ids != list(self.config.sources) or any(o.status == "ok" for o in self._outcomes):
            return None
        if any(d.state not in (OK, WITHDRAWN) or d.intent for d in ledger.values()):
            return None
        raw = self.store.get_meta(f"steady:{partner.id}")
        if raw is None:
            return None
        memo = json.loads(raw)
        due = from_iso(memo.get("next_check_at"))
        if memo.get("fingerprint") != self._steady_fingerprint(partner) or due is None or self.now >= due:
            return None
        return {k: int(v) for k, v in memo.get("counts", {}).items()}

    def _remember_steady(self, partner: PartnerConfig, report: PartnerReport, plans: list[Planned],
                         ledger: dict[tuple[str, str], Delivery]) -> None:
        """After a clean full run: what the next run needs to know that nothing changed."""
        if self.dry_run or self.store is None or self.overwrite or report.failed or report.held:
            return
        if self.source_ids != list(self.config.sources) or any(d.state not in (OK, WITHDRAWN) for d in ledger.values()):
            return
        due = self.now + dt.timedelta(hours=24)  # at least one full look a day, whatever else holds
        for planned in plans:
            if planned.verdict.not_before is not None:
                due = min(due, planned.verdict.not_before)
        for grant in self.config.grants:
            if grant.partner == partner.id and grant.expires is not None:
                expiry = dates.start_of_day_after(grant.expires)  # saturates at 9999-12-31
                if expiry > self.now:
                    due = min(due, expiry)
        counts = {name: getattr(report, name) for name in PartnerReport.__dataclass_fields__}
        # what was created or updated this run is simply there next time
        counts["unchanged"] += counts.pop("created") + counts.pop("updated")
        counts["created"] = counts["updated"] = 0
        memo = {"fingerprint": self._steady_fingerprint(partner), "next_check_at": iso(due), "counts": counts}
        self.store.put_meta(f"steady:{partner.id}", json.dumps(memo))

    def _reconcile(self, partner: PartnerConfig, publisher: Publisher,
                   ledger: dict[tuple[str, str], Delivery]) -> set[tuple[str, str]]:
        """Deliveries a crash or a lost answer left in INTENT: find out what happened on the partner.

        Returns the deliveries whose outcome could not be found out yet (they stay in INTENT)."""
        unsettled: set[tuple[str, str]] = set()
        for key, d in list(ledger.items()):
            if d.state != INTENT and not (d.state == FAILED and d.intent):
                continue
            entry = self._entry_by_guid(d.source, d.guid)
            marker = marker_for(d.source, d.guid, partner.id)
            remote: RemoteCopy | None = None
            try:
                if d.remote_id:
                    remote = publisher.refresh([d.remote_id]).get(d.remote_id)
                elif entry is not None:
                    probe = Article(partner=partner.id, source=d.source, guid=d.guid, title=entry.title,
                                    slug=d.slug or self._slug(entry, partner.id, ledger), html="", excerpt="",
                                    canonical_url=entry.url, tags=(), status=partner.status, featured_image=None,
                                    source_url=entry.url)
                    remote = publisher.find(probe, marker)
            except PartnerDown:
                raise
            except PublishError as exc:
                message = redact(f"{partner.id}: could not find out what became of an unanswered write for "
                                 f"{d.entry_url or d.guid}, so nothing is sent for it this run: {exc}")
                log.error(message)
                self.report.errors.append(message)
                unsettled.add(key)
                continue
            if d.intent == "withdraw":
                # an interrupted withdrawal (an editor's or a revoked permission's) is finished now
                self._withdraw(d, publisher, d.note or "permission revoked")
                continue
            if remote is not None:
                log.info("%s: found the copy of %s that an interrupted run %s (%s); adopting it",
                         partner.id, d.guid, "created" if d.intent == "create" else "updated", remote.url)
                self._adopt(d, remote)
                d.state, d.pushed_hash = OK, None  # compare and push our current version below
            elif d.remote_id:  # an update whose copy is gone: deleted on the partner, not recreated
                d.state, d.note = WITHDRAWN, "the copy was deleted on the partner"
            else:
                d.state = PENDING  # never created: create it
            d.intent = None
            self.store.put(d)  # type: ignore[union-attr]
        return unsettled

    def _refresh(self, partner: PartnerConfig, publisher: Publisher,
                 ledger: dict[tuple[str, str], Delivery]) -> bool:
        """Read our copies back: URLs that changed (a draft an editor published), copies deleted remotely.

        Returns whether anything changed."""
        if partner.kind == "files":
            return False  # a folder's URLs never change; edits are caught at update time
        live = [d for d in ledger.values() if d.remote_id and d.state not in (WITHDRAWN,)]
        if not live:
            return False
        try:
            states = publisher.refresh([d.remote_id for d in live if d.remote_id])
        except PartnerDown:
            raise
        except PublishError as exc:  # the copies' URLs stay as recorded; the pushes below still check edits
            log.warning("%s", redact(f"{partner.id}: could not read the copies back: {exc}"))
            return True  # unknown: do not take the shortcut of a run where nothing changed
        anything = False
        for d in live:
            remote = states.get(d.remote_id)  # type: ignore[arg-type]
            if d.remote_id not in states:
                continue
            if remote is None:
                d.state, d.note = WITHDRAWN, "the copy was deleted on the partner"
                log.warning("%s: the copy of %s was deleted on the partner; it will not be recreated",
                            partner.id, d.entry_url or d.guid)
                self.store.put(d)  # type: ignore[union-attr]
                anything = True
                continue
            changed = remote.url != d.remote_url or remote.status != d.remote_status
            if d.state == HELD and remote.fields_hash == d.remote_hash:
                d.state, d.note = OK, None  # the partner reverted its edit
                d.pushed_hash = None
                changed = True
            if changed:
                d.remote_url, d.remote_status = remote.url or d.remote_url, remote.status
                self.store.put(d)  # type: ignore[union-attr]
                anything = True
        return anything

    def _adopt(self, d: Delivery, remote: RemoteCopy) -> None:
        d.remote_id, d.remote_url, d.slug = remote.remote_id, remote.url, remote.slug or d.slug
        d.remote_status, d.remote_version, d.remote_hash = remote.status, remote.version, remote.fields_hash

    def _execute(self, planned: Planned, partner: PartnerConfig, publisher: Publisher,
                 ledger: dict[tuple[str, str], Delivery]) -> str:
        """Push one create/update/withdraw, recording intent first and the outcome after."""
        assert self.store is not None
        entry = planned.entry
        key = (entry.source, entry.guid)
        d = ledger.get(key) or Delivery(partner=partner.id, source=entry.source, guid=entry.guid)
        ledger[key] = d
        marker = marker_for(entry.source, entry.guid, partner.id)
        action = planned.action
        d.entry_url, d.title = entry.url, entry.title
        if action == "withdraw":
            return self._withdraw(d, publisher, planned.reason or "permission revoked")
        article = planned.article
        assert article is not None
        d.intent, d.state, d.attempts = action, INTENT, d.attempts + 1
        d.slug = d.slug or article.slug
        d.permission = planned.verdict.permission.describe() if planned.verdict.permission else d.permission
        if _needs_intent(publisher):
            self.store.put(d)  # durable before any remote write
        unknown = False  # did a write go out whose answer never came? Then the intent stays until reconciled.
        try:
            if action == "create":
                try:
                    remote = publisher.create(article, marker)
                except UnknownOutcome as exc:
                    unknown = True
                    log.warning("%s; looking for the copy before anything is sent again", exc)
                    remote = publisher.find(article, marker)
                    if remote is None:
                        raise
            else:
                remote = publisher.update(d.remote_id or "", article, marker, d.remote_hash,
                                          force=self._overwrite_matches(entry))
        except PartnerEdited as exc:
            d.state, d.intent = HELD, None
            d.note = "the partner edited its copy; run `syndicate sync --overwrite ENTRY` to push ours anyway"
            d.last_error = None
            self.store.put(d)
            self._warn(f"{partner.id}: update of {entry.url or entry.guid} held: {exc}")
            return "held"
        except PartnerDown:
            if not unknown:
                d.intent = None
                d.state = PENDING
                self.store.put(d)
            raise
        except PublishError as exc:
            unknown = unknown or isinstance(exc, UnknownOutcome)
            self._failed(d, exc, entry, intent=action if unknown else None)
            return "failed"
        except Exception as exc:  # a bug or a broken answer: the write may have landed, so reconcile next run
            log.debug("unexpected error pushing %s", entry.guid, exc_info=True)
            error = PublishError(f"{partner.id}: unexpected error ({type(exc).__name__}: {exc}); "
                                 "what became of the write is checked on the next run")
            self._failed(d, error, entry, intent=action)
            return "failed"
        self._adopt(d, remote)
        d.state, d.intent, d.note = OK, None, None
        d.pushed_hash, d.render_key = article.content_hash(), planned.render_key
        d.pushed_at = iso(dt.datetime.now(dt.timezone.utc))
        d.permission = planned.verdict.permission.describe() if planned.verdict.permission else None
        d.last_error = d.failing_since = None
        d.attempts = 0
        # Written with the next delivery's intent (one commit per delivery): lost in a crash, it is
        # found again from the intent on disk, and the copy is adopted, not sent twice.
        self.store.put(d, durable=not _needs_intent(publisher))
        for warning in remote.warnings:
            self.report.warnings.append(f"{partner.id}: {warning}")
            log.warning("%s: %s", partner.id, warning)
        log.info("%s: %s %s → %s", partner.id, "created" if action == "create" else "updated",
                 entry.url or entry.guid, d.remote_url)
        return action

    def _failed(self, d: Delivery, exc: PublishError, entry: Entry, intent: str | None = None) -> None:
        """Record a failed delivery; ``intent``: a write whose outcome is unknown, reconciled next run."""
        message = redact(str(exc))
        now = dt.datetime.now(dt.timezone.utc)
        d.failing_since = d.failing_since or iso(now)
        since = dt.datetime.fromisoformat(d.failing_since.replace("Z", "+00:00"))
        give_up = dt.timedelta(hours=self.config.delivery.give_up_after_hours)
        d.state = FAILED if now - since >= give_up else INTENT if intent else PENDING
        d.intent = intent
        d.last_error = message
        self.store.put(d)  # type: ignore[union-attr]
        log.error("%s (%s; it stays due)", message, entry.url or entry.guid)
        self.report.errors.append(message)

    def _withdraw(self, d: Delivery, publisher: Publisher, reason: str, delete: bool = False) -> str:
        assert self.store is not None
        d.intent, d.state, d.note = "withdraw", INTENT, reason  # the next run finishes it if this one cannot
        self.store.put(d)
        try:
            remote = publisher.withdraw(d.remote_id or "", delete=delete)
        except PartnerDown:
            raise
        except PublishError as exc:
            d.state, d.intent, d.last_error = OK, None, redact(str(exc))
            self.store.put(d)
            self.report.errors.append(redact(str(exc)))
            return "failed"
        d.state, d.intent, d.note = WITHDRAWN, None, reason
        if remote is not None:
            d.remote_status = remote.status
            d.remote_url = remote.url or d.remote_url  # e.g. a Ghost draft's preview address
        d.last_error = None
        self.store.put(d)
        log.info("%s: withdrew %s (%s)", d.partner, d.entry_url or d.guid, reason)
        return "withdraw"

    # ==========================================================================================
    # preview and withdraw

    def find_entry(self, spelling: str) -> Entry:
        """The current entry named by ``spelling`` (its guid or its URL in any spelling)."""
        for entry, _ in self.entries():
            if self.rules.matches(spelling, entry):
                return entry
        if self.store is not None:
            for sid in self.source_ids:
                for entry in self.store.all_entries(sid):
                    if self.rules.matches(spelling, entry):
                        return entry
        raise NotFound(f"no entry matches {spelling!r} (give its original URL or its guid)")

    def preview(self, entry: Entry) -> list[tuple[Decision, Article | None]]:
        """What each selected partner would receive for one entry."""
        out = []
        for pid in self.partner_ids:
            partner = self.config.partners[pid]
            ledger = self._ledger_rows(pid)
            predicted = self._predicted_copies(partner, ledger, placeholders=True)
            publisher = make_publisher(partner, self._publish_context(pid))
            try:
                for planned in self._plan(partner, publisher, ledger, predicted):
                    if planned.entry.guid != entry.guid or planned.entry.source != entry.source:
                        continue
                    article = None
                    if planned.action not in ("skip", "wait"):
                        if planned.article is None:
                            planned.delivery = None  # force a render for display
                            self._render(planned, partner, publisher, self._copies(pid, ledger, predicted), ledger)
                        article = planned.article
                    out.append((self._decision(planned, partner), article))
            finally:
                publisher.close()
        return out

    def withdraw(self, spelling: str, delete: bool = False) -> list[tuple[str, str]]:
        """Unpublish the copies of one entry on the selected partners; (partner, what happened) each."""
        entry = self.find_entry(spelling)
        results = []
        for pid in self.partner_ids:
            partner = self.config.partners[pid]
            d = self.store.delivery(pid, entry.source, entry.guid) if self.store else None
            if d is None or not d.remote_id:
                results.append((pid, "no copy"))
                continue
            if d.state == WITHDRAWN and not delete:
                results.append((pid, "already withdrawn"))
                continue
            publisher = make_publisher(partner, self._publish_context(pid))
            try:
                outcome = self._withdraw(d, publisher, "withdrawn by an editor", delete=delete)
            except PublishError as exc:
                outcome = "failed: " + redact(str(exc))
                self.report.errors.append(outcome)
            finally:
                publisher.close()
            results.append((pid, "withdrawn" if outcome == "withdraw" else outcome))
        return results


def _needs_intent(publisher: Publisher) -> bool:
    """Must the intent of each write be committed before it is sent? (Every CMS: yes.)"""
    return bool(getattr(publisher, "needs_intent", True))


def _merge_outcome(previous: str | None, new: str) -> str:
    """A create followed by an update in a later pass still counts as a create."""
    if previous == "create" and new in ("update", "unchanged"):
        return "create"
    if previous in ("failed",):
        return previous
    return new


def _count(report: PartnerReport, outcome: str) -> None:
    attr = {"create": "created", "update": "updated", "unchanged": "unchanged", "skip": "skipped",
            "wait": "waiting", "held": "held", "withdraw": "withdrawn", "withdrawn": "withdrawn",
            "failed": "failed"}.get(outcome)
    if attr:
        setattr(report, attr, getattr(report, attr) + 1)
