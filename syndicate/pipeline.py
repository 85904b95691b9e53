"""The order of the stages, convergence, and per-feed / per-entry / per-delivery error capture.

fetch → parse (ingest) → decide (plan) → rewrite → render (compose) → push (deliver) → record
(``STAGES``). Each stage is a module; this one only wires them. A bad feed is recorded and the others
go on; an entry whose decision or rendering raises is recorded against that entry, and a delivery
that raises against that delivery: nothing one entry does reaches the run. The report's exit code
tells cron the truth.

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
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from .bodyimages import BodyImages
from .catalog import Catalog, Seen, known_posts
from .compose import Composer
from .config import Config, PartnerConfig
from .decide import Rules
from .deliver import Deliverer, StoreMedia
from .errors import ConfigError, NotFound, SyndicateError, UsageError
from .identity import KnownPost, identify
from .ingest import USER_AGENT, FeedReader, Network
from .models import Article, Decision, Entry, RewriteRules
from .plan import PUSHES, Ledger, Planned, Planner
from .publishers import make_publisher, publisher_class
from .publishers.base import (
    FetchedImage,
    ImageError,
    PartnerDown,
    PublishContext,
    Publisher,
    PublishError,
)
from .record import Steady, record_feeds, save_render_keys
from .records import WITHDRAWN
from .redact import redact
from .report import FeedOutcome, NoProgress, PartnerReport, Progress, RunReport, merge_outcome
from .store import ReadOnlyStore, Store

log = logging.getLogger("syndicate")

#: The stages in the order they run; ``tests/test_pipeline.py`` checks the code keeps it.
STAGES = ("fetch", "parse", "decide", "rewrite", "render", "push", "record")
MAX_PASSES = 4


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Pipeline:
    """One run of syndicate over a config and a store.

    ``store``: a ``ReadOnlyStore`` (or None: none) for a run that changes nothing — it then pushes
    nothing either. ``clock``: the run's time (``now`` fixes it)."""

    def __init__(self, config: Config, store: Store | None, *, sources: Iterable[str] = (),
                 partners: Iterable[str] = (), overwrite: Iterable[str] = (),
                 progress: Progress | None = None, now: dt.datetime | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.config = config
        self.store: Store = store if store is not None else ReadOnlyStore(None)
        self.pushes = not isinstance(self.store, ReadOnlyStore)
        self.clock = clock or ((lambda: now) if now is not None else _system_clock)
        self.now = self.clock()
        self.progress = progress or NoProgress()
        self.rules = Rules(config)
        self.rewrite_rules = RewriteRules(config.rewrite.embed_hosts, config.rewrite.strip_params)
        self.source_ids = _select(list(sources), config.sources, "source")
        self.partner_ids = _select(list(partners), config.partners, "partner")
        self.overwrite = tuple(overwrite)
        self.report = RunReport(dry_run=not self.pushes)
        self.network = Network(config)
        self.outcomes: list[FeedOutcome] = []
        self.read_every_feed = True
        self._catalog: Catalog | None = None
        self._planner: Planner | None = None
        self.deliverer = Deliverer(config, self.store, self.report, self.clock,
                                   lambda entry: self.planner.overwrites(entry))

    # --- stages, made when first needed ------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """This run's entries (loaded when first needed: a run where nothing changed may not need them)."""
        if self._catalog is None:
            self._catalog = Catalog(self.config, self.store, self.rules, self.source_ids, self.outcomes, self.now)
        return self._catalog

    @property
    def planner(self) -> Planner:
        """The plan stage (with the render stage it calls)."""
        if self._planner is None:
            composer = Composer(self.config, self.rules, self.catalog)
            self._planner = Planner(self.rules, self.catalog, composer, self.now, self.overwrite)
        return self._planner

    def entries(self) -> list[Seen]:
        """Every current entry of the selected sources, in feed order."""
        return self.catalog.entries()

    # --- fetch + parse + record ---------------------------------------------------------------------

    def fetch(self, sources: list[str] | None = None) -> list[FeedOutcome]:
        """Read every selected feed (or those of ``sources``) and record the outcomes."""
        reader = FeedReader(self.config, self.source_ids if sources is None else sources, self.rewrite_rules, self.network, self.now)
        outcomes = reader.read_all(self.store.feed_states(), self.progress, while_parsing=self._load_for_push)
        known = known_posts(self.store, [o.source for o in outcomes if o.status == "ok" and o.entries is not None])
        outcomes = [self._identify(outcome, known) for outcome in outcomes]
        for outcome in outcomes:
            if outcome.status == "failed":
                log.error("feed %s: %s", outcome.source, outcome.error)
            elif outcome.warning:
                log.warning("feed %s: %s", outcome.source, outcome.warning)
                self.report.warnings.append(f"feed {outcome.source}: {outcome.warning}")
        record_feeds(self.store, outcomes)
        self.report.feeds = self.outcomes = outcomes
        self._catalog = self._planner = None
        return outcomes

    def _identify(self, outcome: FeedOutcome, known: Mapping[str, list[KnownPost]]) -> FeedOutcome:
        """A read's entries under their stable identities (identity.py), given what is ``known`` of the
        posts of every source read; the changes go to the report."""
        if outcome.status != "ok" or outcome.entries is None:
            return outcome
        found = identify(known[outcome.source], outcome.entries, self.rules.sites[outcome.source])
        for change in found.changes:
            log.debug("identity: %s", change.line())
        self.report.identity_changes += found.changes
        return replace(outcome, entries=found.entries)

    def _load_for_push(self) -> None:
        """Load what rendering and pushing need while the feeds are parsed in other processes."""
        import jinja2  # noqa: F401 (loaded now rather than when the first article is rendered)

        for kind in {self.config.partners[pid].kind for pid in self.partner_ids}:
            publisher_class(kind).preload()

    def close(self) -> None:
        """Release the run's network connections."""
        self.network.close()

    # --- publishers -------------------------------------------------------------------------------

    def publisher(self, pid: str) -> Publisher:
        """A partner's publisher, with what the run lends it."""
        net = self.config.network
        context = PublishContext(fetch_image=self._fetch_image, media=StoreMedia(self.store, pid),
                                 user_agent=USER_AGENT, timeout=net.timeout, base_dir=self.config.base_dir,
                                 max_retry_seconds=self.config.delivery.max_retry_seconds, now=self.clock)
        return make_publisher(self.config.partners[pid], context)

    def _fetch_image(self, url: str, what: str = "featured image") -> FetchedImage:
        """An image through the guarded fetcher (size cap, deadline, no private address unless allowed),
        accepted by its bytes only; ImageError otherwise."""
        from .fetch import FetchError
        from .images import checked_image

        try:
            response = self.network.fetcher().get(url, trusted=False,
                                                  accept="image/avif,image/webp,image/png,image/jpeg,image/*")
        except FetchError as exc:
            raise ImageError(f"{what} {url.split('?', 1)[0]} could not be fetched: {exc}") from None
        return checked_image(url, response.body, what)

    def _body_images(self, partner: PartnerConfig, publisher: Publisher) -> None:
        """Let this sync upload the partner's body images (``images = "upload"``) as its copies are rendered."""
        if self.pushes and partner.images == "upload":
            self.planner.composer.body_images[partner.id] = BodyImages(
                self.store, partner.id, fetch=lambda url: self._fetch_image(url, "body image"),
                upload=publisher.upload_image)

    def _ledger(self, pid: str) -> Ledger:
        return {(d.source, d.guid): d for d in self.store.deliveries([pid])}

    # --- sync -------------------------------------------------------------------------------------

    def sync(self) -> RunReport:
        """The whole pipeline, on the feeds and partners the store lets this run take (all of them,
        unless other runs share the store and hold some)."""
        outcomes: list[FeedOutcome] = []
        remaining = list(self.source_ids)
        while True:  # a batch of feeds at a time, where the store bounds how many one run holds
            feeds = self.store.take(remaining, [])
            self.report.held_feeds += feeds.held_feeds
            outcomes += self.fetch(feeds.feeds)
            remaining = feeds.later
            if not remaining:
                break
            self.store.feeds_recorded(wait=False)  # this batch is recorded: give it back
        self.report.feeds = self.outcomes = outcomes
        self.read_every_feed = not self.report.held_feeds
        self.store.feeds_recorded()
        for pid in self.partner_ids:
            # One partner at a time, once the feeds are recorded: a run sharing the store takes the
            # next partner no other run holds, and pushes the entries in the ledger now.
            if not self.store.take([], [pid]).partners:
                self.report.held_partners.append(pid)
                continue
            partner = self.config.partners[pid]
            publisher = self.publisher(pid)
            try:
                self._sync_partner(partner, publisher)
            except PartnerDown as exc:
                message = redact(str(exc))
                log.error("%s (its deliveries stay due)", message)
                self.report.errors.append(message)
                self.report.partner(pid).failed += 1
            except ConfigError as exc:  # e.g. its secret is missing: the other partners still go on
                message = redact(str(exc))
                log.error("%s", message)
                self.report.config_errors.append(message)
            except SyndicateError:  # the store failed (e.g. a full disk): the run stops, with one line
                raise
            except Exception as exc:  # a bug in this partner's work: recorded against it, the others go on
                log.debug("unexpected error working on %s", pid, exc_info=True)
                message = redact(f"{pid}: stopped on an unexpected error ({type(exc).__name__}: {exc}); "
                                 "its deliveries stay due")
                log.error("%s", message)
                self.report.errors.append(message)
                self.report.partner(pid).failed += 1
            finally:
                publisher.close()
            where = publisher.where()
            counts = self.report.partner(pid)
            if where is not None and self.pushes and (counts.created or counts.updated):
                self.report.locations[pid] = where
        return self.report

    def _sync_partner(self, partner: PartnerConfig, publisher: Publisher) -> None:
        report = self.report.partner(partner.id)
        steady = Steady(self.config, self.store, self.source_ids, self.now)
        # The steady-state shortcut knows only the feeds this run read: not when others read some.
        may_shortcut = self.pushes and not self.overwrite and self.read_every_feed
        if may_shortcut and not publisher.reads_back and not self.store.unsettled(partner.id):
            counts = steady.recall(partner, self.outcomes, {})  # nothing to read back: skip the ledger too
            if counts is not None:
                _set_counts(report, counts)
                return
        ledger = self._ledger(partner.id)
        unsettled: set[tuple[str, str]] = set()
        touched = False
        if self.pushes:
            unsettled = self.deliverer.reconcile(partner, publisher, ledger, self.catalog.by_guid,
                                                 lambda e: self.planner.composer.slugs.slug(e, partner.id, ledger))
            touched = self.deliverer.refresh(partner, publisher, ledger) or bool(unsettled)
        counts = steady.recall(partner, self.outcomes, ledger) if may_shortcut and not touched else None
        if counts is not None:  # nothing that could change any copy changed since the last run
            _set_counts(report, counts)
            return
        self._body_images(partner, publisher)
        first = self._passes(partner, publisher, ledger, unsettled)
        save_render_keys(self.store, self.planner.stale_keys)
        if self.pushes and not self.overwrite:
            steady.remember(partner, report, first, ledger)

    def _passes(self, partner: PartnerConfig, publisher: Publisher, ledger: Ledger,
                unsettled: set[tuple[str, str]]) -> list[Planned]:
        """Plan and push until the copies converge; counts the outcomes; returns the first pass's plans."""
        planner, report = self.planner, self.report.partner(partner.id)
        # What could not be reconciled is not pushed this run: a create might duplicate the copy an
        # earlier run made, an update might take our own unanswered write for a partner's edit.
        failed: set[tuple[str, str]] = set(unsettled)
        done: dict[tuple[str, str], str] = {}
        first: list[Planned] = []
        predicted = planner.predicted_copies(partner, publisher, ledger, placeholders=False)
        for pass_no in range(MAX_PASSES):
            plans = planner.plan(partner, publisher, ledger, predicted)
            if pass_no == 0:
                first = plans
                done = {p.key: "failed" if p.key in unsettled else p.action for p in plans}
                self._first_pass(partner, plans, ledger, failed)
            work = [p for p in plans if p.action in PUSHES and p.key not in failed]
            if pass_no == 0:
                self.progress.start(f"push {partner.id}", len(work))
            if not self.pushes or not work:
                break
            for key, outcome in self._push(partner, publisher, ledger, work):
                if outcome == "failed":
                    failed.add(key)
                done[key] = merge_outcome(done.get(key) if pass_no else None, outcome)
            predicted = {}  # every copy made so far has its real URL now
        for outcome in done.values():
            report.count(outcome)
        return first

    def _first_pass(self, partner: PartnerConfig, plans: list[Planned], ledger: Ledger,
                    failed: set[tuple[str, str]]) -> None:
        """What the first pass reports once: held updates, and entries that failed (recorded against them)."""
        for p in plans:
            if p.action == "held":  # reported on every run until an editor resolves it
                self.deliverer.warn(f"{partner.id}: update of {p.entry.url or p.entry.guid} held: {p.reason}")
            elif p.action == "failed":
                failed.add(p.key)
                self.deliverer.entry_failed(p, partner, ledger)
            if p.images is not None and self.pushes:
                self.deliverer.body_images(p, partner)

    def _push(self, partner: PartnerConfig, publisher: Publisher, ledger: Ledger,
              work: list[Planned]) -> list[tuple[tuple[str, str], str]]:
        """Push a pass's work: (entry, outcome) each."""
        results: list[tuple[tuple[str, str], str]] = []

        def push(planned: Planned) -> None:
            results.append((planned.key, self.deliverer.execute(planned, partner, publisher, ledger)))
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
            # A partner whose copies carry our marker where we read them back needs no durable intent
            # per delivery: a crash is reconciled from the copies themselves, so one commit per pass.
            batch = self.store.batch() if not publisher.needs_intent else contextlib.nullcontext()
            with batch:
                for planned in work:
                    push(planned)
        return results

    # --- check, preview, withdraw -------------------------------------------------------------------

    def check(self) -> list[Decision]:
        """The decision for every current entry × selected partner, grouped by entry (in feed order),
        each entry's partners in config order."""
        by_entry: dict[tuple[str, str], list[Decision]] = {}
        for pid, plans in self._plans_for_display():
            for planned in plans:
                by_entry.setdefault(planned.key, []).append(planned.decision(pid))
                if planned.action == "failed":
                    self.report.errors.append(f"{pid}: {planned.entry.url or planned.entry.guid} {planned.error}")
        return [d for decisions in by_entry.values() for d in decisions]

    def _plans_for_display(self, entry: Entry | None = None) -> list[tuple[str, list[Planned]]]:
        """Each selected partner's plans as ``check`` and ``preview`` show them (placeholders for the
        URLs of copies not made yet; with ``entry``, that entry's article rendered whatever its key)."""
        out = []
        for pid in self.partner_ids:
            partner = self.config.partners[pid]
            ledger = self._ledger(pid)
            # The publisher only shapes the HTML here (as it would be pushed); nothing is sent.
            publisher = self.publisher(pid)
            try:
                predicted = self.planner.predicted_copies(partner, publisher, ledger, placeholders=True)
                plans = self.planner.plan(partner, publisher, ledger, predicted)
                if entry is not None:
                    copies = self.planner.composer.copies(ledger, predicted)
                    plans = [self.planner.render_or_fail(replace(p, delivery=None), partner, publisher, copies, ledger)
                             if p.action not in ("skip", "wait", "failed") and p.article is None else p
                             for p in plans if p.key == (entry.source, entry.guid)]  # rendered for display
            finally:
                publisher.close()
            out.append((pid, plans))
        return out

    def find_entry(self, spelling: str) -> Entry:
        """The current entry named by ``spelling`` (its guid or its URL in any spelling)."""
        found = self.catalog.find(spelling)
        if found is None:
            raise NotFound(f"no entry matches {spelling!r} (give its original URL or its guid)")
        return found

    def preview(self, entry: Entry) -> list[tuple[Decision, Article | None]]:
        """What each selected partner would receive for one entry."""
        return [(p.decision(pid), p.article if p.action not in ("skip", "wait", "failed") else None)
                for pid, plans in self._plans_for_display(entry) for p in plans]

    def withdraw(self, spelling: str, delete: bool = False) -> list[tuple[str, str]]:
        """Unpublish the copies of one entry on the selected partners; (partner, what happened) each."""
        entry = self.find_entry(spelling)
        results = []
        taken = set(self.store.take([], self.partner_ids).partners)
        for pid in self.partner_ids:
            if pid not in taken:
                results.append((pid, "held by another run (try again when it has finished)"))
                continue
            d = self.store.delivery(pid, entry.source, entry.guid)
            if d is None or not d.remote_id:
                results.append((pid, "no copy"))
                continue
            if d.state == WITHDRAWN and not delete:
                results.append((pid, "already withdrawn"))
                continue
            publisher = self.publisher(pid)
            try:
                outcome = self.deliverer.withdraw(d, publisher, "withdrawn by an editor", delete=delete)
            except PublishError as exc:
                outcome = "failed: " + redact(str(exc))
                self.report.errors.append(outcome)
            finally:
                publisher.close()
            results.append((pid, "withdrawn" if outcome == "withdraw" else outcome))
        return results


def _select(wanted: list[str], known: Mapping[str, object], what: str) -> list[str]:
    for item in wanted:
        if item not in known:
            raise UsageError(f"unknown {what} {item!r} (known: {', '.join(known) or 'none'})")
    return wanted or list(known)


def _set_counts(report: PartnerReport, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        setattr(report, name, value)
