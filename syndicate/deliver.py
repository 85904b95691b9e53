"""Deliver: push, reconcile, read back and withdraw — the intent protocol, in one place.

Before a remote write the ledger row records its intent (``state = intent``, ``intent = create |
update | withdraw``) and, for a partner whose copies do not carry our marker where we can read it
back cheaply, commits it: a crash or a lost answer leaves the intent on disk, and the next run looks
for the copy (``reconcile``) before it sends anything again. After the write the outcome replaces the
intent. The clock is the run's (``Clock``), never the wall.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from .compose import marker_for
from .config import Config, PartnerConfig
from .errors import SyndicateError
from .models import Article, Entry, from_iso, iso
from .plan import Ledger, Planned
from .publishers.base import (
    PartnerDown,
    PartnerEdited,
    Publisher,
    PublishError,
    RemoteCopy,
    UnknownOutcome,
)
from .records import FAILED, HELD, INTENT, OK, PENDING, WITHDRAWN, Delivery
from .redact import redact
from .report import RunReport
from .store import Store

log = logging.getLogger("syndicate")

Clock = Callable[[], dt.datetime]


class StoreMedia:
    """A publisher's ``MediaCache``, kept in the store."""

    def __init__(self, store: Store, partner: str) -> None:
        self.store, self.partner = store, partner

    def get(self, source_url: str) -> tuple[str, str] | None:
        """(remote id, remote URL) of the uploaded copy."""
        return self.store.media(self.partner, source_url)

    def put(self, source_url: str, remote_id: str, remote_url: str, sha256: str | None = None) -> None:
        """Remember an upload."""
        self.store.put_media(self.partner, source_url, remote_id, remote_url, sha256=sha256)

    def forget(self, source_url: str) -> None:
        """The upload is gone."""
        self.store.forget_media(self.partner, source_url)


class Deliverer:
    """Carries out one partner's pushes and records each one's intent and outcome."""

    def __init__(self, config: Config, store: Store, report: RunReport, clock: Clock,
                 overwrites: Callable[[Entry], bool]) -> None:
        self.config, self.store, self.report, self.clock, self.overwrites = config, store, report, clock, overwrites

    # --- push -----------------------------------------------------------------------------------

    def execute(self, planned: Planned, partner: PartnerConfig, publisher: Publisher, ledger: Ledger) -> str:
        """Push one create/update/withdraw; the outcome (an action, ``held`` or ``failed``).

        Any exception but a partner that is down (``PartnerDown``) or a store that failed is recorded
        against this delivery: the run goes on."""
        entry = planned.entry
        d = ledger.setdefault(planned.key, Delivery(partner=partner.id, source=entry.source, guid=entry.guid))
        try:
            return self._execute(planned, d, partner, publisher)
        except (PartnerDown, SyndicateError):
            raise
        except Exception as exc:  # a bug or a broken answer: the write may have landed, so reconcile next run
            log.debug("unexpected error pushing %s", entry.guid, exc_info=True)
            error = PublishError(f"{partner.id}: unexpected error ({type(exc).__name__}: {exc}); "
                                 "what became of the write is checked on the next run")
            self.failed(d, error, entry, intent=planned.action)
            return "failed"

    def _execute(self, planned: Planned, d: Delivery, partner: PartnerConfig, publisher: Publisher) -> str:
        entry, action = planned.entry, planned.action
        marker = marker_for(entry.source, entry.guid, partner.id)
        d.entry_url, d.title = entry.url, entry.title
        if action == "withdraw":
            return self.withdraw(d, publisher, planned.reason or "permission revoked")
        article = planned.article
        assert article is not None and planned.verdict is not None
        permission = planned.verdict.permission.describe() if planned.verdict.permission else None
        d.intent, d.state, d.attempts = action, INTENT, d.attempts + 1
        d.slug = d.slug or article.slug
        d.permission = permission or d.permission
        if publisher.needs_intent:
            self.store.put(d)  # durable before any remote write
        unknown = False  # did a write go out whose answer never came? Then the intent stays until reconciled.
        try:
            if action == "create":
                try:
                    remote = publisher.create(article, marker)
                except UnknownOutcome as exc:
                    unknown = True
                    log.warning("%s; looking for the copy before anything is sent again", exc)
                    found = publisher.find(article, marker)
                    if found is None:
                        raise
                    remote = found
            else:
                remote = publisher.update(d.remote_id or "", article, marker, d.remote_hash,
                                          force=self.overwrites(entry))
        except PartnerEdited as exc:
            d.state, d.intent, d.last_error = HELD, None, None
            d.note = "the partner edited its copy; run `syndicate sync --overwrite ENTRY` to push ours anyway"
            self.store.put(d)
            self.warn(f"{partner.id}: update of {entry.url or entry.guid} held: {exc}")
            return "held"
        except PartnerDown:
            if not unknown:
                d.intent, d.state = None, PENDING
                self.store.put(d)
            raise
        except PublishError as exc:
            unknown = unknown or isinstance(exc, UnknownOutcome)
            self.failed(d, exc, entry, intent=action if unknown else None)
            return "failed"
        adopt(d, remote)
        d.state, d.intent, d.note = OK, None, planned.image_warning  # status shows what was not copied
        d.pushed_hash, d.render_key = article.content_hash(), planned.render_key
        d.pushed_at = iso(self.clock())
        d.permission = permission
        d.last_error = d.failing_since = None
        d.attempts = 0
        # Written with the next delivery's intent (one commit per delivery): lost in a crash, it is
        # found again from the intent on disk, and the copy is adopted, not sent twice.
        self.store.put(d, durable=not publisher.needs_intent)
        for warning in remote.warnings:
            self.report.warnings.append(f"{partner.id}: {warning}")
            log.warning("%s: %s", partner.id, warning)
        log.info("%s: %s %s → %s", partner.id, "created" if action == "create" else "updated",
                 entry.url or entry.guid, d.remote_url)
        return action

    def failed(self, d: Delivery, exc: Exception, entry: Entry, intent: str | None = None) -> None:
        """Record a failed delivery; ``intent``: a write whose outcome is unknown, reconciled next run.

        It stays due (pending) until ``[delivery] give_up_after_hours`` have passed since it began
        failing; then it is ``failed`` (still retried every run)."""
        message = redact(str(exc))
        now = self.clock()
        since = from_iso(d.failing_since) or now
        d.failing_since = iso(since)
        give_up = dt.timedelta(hours=self.config.delivery.give_up_after_hours)
        d.state = FAILED if now - since >= give_up else INTENT if intent else PENDING
        d.intent = intent
        d.last_error = message
        self.store.put(d)
        log.error("%s (%s; it stays due)", message, entry.url or entry.guid)
        self.report.errors.append(message)

    def entry_failed(self, planned: Planned, partner: PartnerConfig, ledger: Ledger) -> None:
        """Record an entry that could not be decided or rendered against its delivery (it stays due)."""
        entry = planned.entry
        d = ledger.setdefault(planned.key, Delivery(partner=partner.id, source=entry.source, guid=entry.guid))
        d.entry_url, d.title = d.entry_url or entry.url, d.title or entry.title
        self.failed(d, PublishError(f"{partner.id}: {entry.url or entry.guid} {planned.error}"), entry,
                    intent=d.intent)

    def withdraw(self, d: Delivery, publisher: Publisher, reason: str, delete: bool = False) -> str:
        """Unpublish (or delete) a copy, the intent recorded first; ``withdraw`` or ``failed``."""
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

    def body_images(self, planned: Planned, partner: PartnerConfig) -> None:
        """A delivery whose body images could not all be copied: the run's warning, and the copy's note
        in the ledger (``status``) while it lasts; a push records its own note, as ``_execute`` does."""
        warning = planned.image_warning
        if warning is not None:
            self.warn(f"{partner.id}: {planned.entry.url or planned.entry.guid}: {warning}")
        d = planned.delivery
        if d is not None and d.state == OK and planned.action not in ("create", "update") and d.note != warning:
            d.note = warning
            self.store.put(d)

    def warn(self, message: str) -> None:
        """A warning for the log and the run's summary."""
        message = redact(message)
        log.warning("%s", message)
        self.report.warnings.append(message)

    # --- before the pushes: what happened to earlier writes, and to our copies --------------------

    def reconcile(self, partner: PartnerConfig, publisher: Publisher, ledger: Ledger,
                  entry_of: Callable[[str, str], Entry | None],
                  slug_of: Callable[[Entry], str]) -> set[tuple[str, str]]:
        """Deliveries a crash or a lost answer left in INTENT: find out what happened on the partner.

        Returns the deliveries whose outcome could not be found out yet (they stay in INTENT)."""
        unsettled: set[tuple[str, str]] = set()
        for key, d in list(ledger.items()):
            if d.state != INTENT and not (d.state == FAILED and d.intent):
                continue
            try:
                remote = self._look_for(d, partner, publisher, entry_of, slug_of)
            except (PartnerDown, SyndicateError):
                raise
            except Exception as exc:  # a lost answer's check failed (or raised): this delivery waits
                message = redact(f"{partner.id}: could not find out what became of an unanswered write for "
                                 f"{d.entry_url or d.guid}, so nothing is sent for it this run: {exc}")
                log.error(message)
                self.report.errors.append(message)
                unsettled.add(key)
                continue
            if d.intent == "withdraw":
                # an interrupted withdrawal (an editor's or a revoked permission's) is finished now
                self.withdraw(d, publisher, d.note or "permission revoked")
                continue
            if remote is not None:
                log.info("%s: found the copy of %s that an interrupted run %s (%s); adopting it",
                         partner.id, d.guid, "created" if d.intent == "create" else "updated", remote.url)
                adopt(d, remote)
                d.state, d.pushed_hash = OK, None  # compare and push our current version below
            elif d.remote_id:  # an update whose copy is gone: deleted on the partner, not recreated
                d.state, d.note = WITHDRAWN, "the copy was deleted on the partner"
            else:
                d.state = PENDING  # never created: create it
            d.intent = None
            self.store.put(d)
        return unsettled

    @staticmethod
    def _look_for(d: Delivery, partner: PartnerConfig, publisher: Publisher,
                  entry_of: Callable[[str, str], Entry | None],
                  slug_of: Callable[[Entry], str]) -> RemoteCopy | None:
        if d.remote_id:
            return publisher.refresh([d.remote_id]).get(d.remote_id)
        entry = entry_of(d.source, d.guid)
        if entry is None:
            return None
        probe = Article(partner=partner.id, source=d.source, guid=d.guid, title=entry.title,
                        slug=d.slug or slug_of(entry), html="", excerpt="", canonical_url=entry.url, tags=(),
                        status=partner.status, featured_image=None, source_url=entry.url)
        return publisher.find(probe, marker_for(d.source, d.guid, partner.id))

    def refresh(self, partner: PartnerConfig, publisher: Publisher, ledger: Ledger) -> bool:
        """Read our copies back: URLs that changed (a draft an editor published), copies deleted remotely.

        Returns whether anything changed."""
        if not publisher.reads_back:
            return False  # e.g. a folder: its URLs never change; edits are caught at update time
        live = [d for d in ledger.values() if d.remote_id and d.state != WITHDRAWN]
        if not live:
            return False
        try:
            states = publisher.refresh([d.remote_id for d in live if d.remote_id])
        except (PartnerDown, SyndicateError):
            raise
        except Exception as exc:  # the copies' URLs stay as recorded; the pushes below still check edits
            log.warning("%s", redact(f"{partner.id}: could not read the copies back: {exc}"))
            return True  # unknown: do not take the shortcut of a run where nothing changed
        anything = False
        for d in live:
            if d.remote_id not in states:
                continue
            remote = states[d.remote_id]
            if remote is None:
                d.state, d.note = WITHDRAWN, "the copy was deleted on the partner"
                log.warning("%s: the copy of %s was deleted on the partner; it will not be recreated",
                            partner.id, d.entry_url or d.guid)
                self.store.put(d)
                anything = True
                continue
            changed = remote.url != d.remote_url or remote.status != d.remote_status
            if d.state == HELD and remote.fields_hash == d.remote_hash:
                d.state, d.note = OK, None  # the partner reverted its edit
                d.pushed_hash = None
                changed = True
            if changed:
                d.remote_url, d.remote_status = remote.url or d.remote_url, remote.status
                self.store.put(d)
                anything = True
        return anything


def adopt(d: Delivery, remote: RemoteCopy) -> None:
    """The ledger row takes what the partner reports of its copy."""
    d.remote_id, d.remote_url, d.slug = remote.remote_id, remote.url, remote.slug or d.slug
    d.remote_status, d.remote_version, d.remote_hash = remote.status, remote.version, remote.fields_hash
