"""Plan: each entry × partner's action, from the permission verdict and the ledger.

``ledger_action`` is the pure rule (``check`` shows its result); ``Planner`` applies it to every
current entry for one partner, renders where it matters, and turns any exception of one entry into
that entry's ``failed`` plan, so that one bad entry never reaches the run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from .catalog import Catalog
from .compose import Composer
from .config import PartnerConfig
from .decide import Rules, Verdict
from .models import Article, Decision, Entry
from .publishers.base import Publisher
from .records import FAILED, HELD, INTENT, OK, PENDING, WITHDRAWN, Delivery
from .redact import redact

log = logging.getLogger("syndicate")

Ledger = dict[tuple[str, str], Delivery]

#: Actions that push something.
PUSHES = ("create", "update", "withdraw")


def ledger_action(delivery: Delivery | None, verdict: Verdict, *, updates: str,
                  overwrite: bool) -> tuple[str, str | None]:
    """(action, reason) for an entry × partner: the permission ``verdict`` combined with the ledger row.

    ``updates``: the partner's policy (``push`` or ``ignore``); ``overwrite``: an editor asked to push
    over the partner's edit of this entry's copy."""
    d = delivery
    if d is not None and d.state == WITHDRAWN:
        return "withdrawn", d.note
    if not verdict.allowed:
        if d is not None and d.has_copy and verdict.revokes:
            return "withdraw", verdict.reason
        if verdict.waiting and not (d is not None and d.has_copy):
            return "wait", verdict.reason
        return "skip", verdict.reason
    retrying = f"retrying: {d.last_error}" if d is not None and d.last_error else None
    if d is None or d.remote_id is None:
        return "create", retrying
    if d.state == HELD and overwrite:
        return "update", "overwriting the partner's edit (--overwrite)"
    if d.state == HELD:
        return "held", d.note or "the partner edited its copy"
    if updates == "ignore":
        return "unchanged", None
    if d.state in (PENDING, INTENT, FAILED):
        return "update", retrying
    return "unchanged", None


@dataclass(frozen=True)
class Planned:
    """One entry × partner being worked on: its action, and the article when one is rendered."""

    entry: Entry
    first_seen: dt.datetime | None
    verdict: Verdict | None  # None: the entry failed before it had one
    delivery: Delivery | None
    action: str = "skip"
    reason: str | None = None
    article: Article | None = None
    render_key: str | None = None
    #: The exception that stopped this entry (action ``failed``).
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(source, guid)."""
        return (self.entry.source, self.entry.guid)

    def decision(self, partner: str) -> Decision:
        """What ``check`` shows; a failed entry is not pushed (``skip``) and says why."""
        verdict = self.verdict
        action, reason = (("skip", self.error) if self.action == "failed" else (self.action, self.reason))
        return Decision(entry=self.entry, partner=partner, action=action, reason=reason,
                        not_before=verdict.not_before if verdict else None,
                        permission=verdict.permission if verdict else None,
                        no_derivatives=verdict.no_derivatives if verdict else False)


def failure_reason(exc: Exception) -> str:
    """One line that says why an entry or a delivery could not be processed."""
    return redact(f"could not be processed: {type(exc).__name__}: {exc}")


def _failed(planned: Planned, exc: Exception, partner: PartnerConfig) -> Planned:
    """The plan of an entry whose decision or rendering raised: ``failed``, with the reason."""
    log.debug("%s: %s failed", partner.id, planned.entry.guid, exc_info=True)
    return replace(planned, action="failed", error=failure_reason(exc), article=None)


class Planner:
    """Decides every current entry for one partner at a time (verdicts decided once per run)."""

    def __init__(self, rules: Rules, catalog: Catalog, composer: Composer, now: dt.datetime,
                 overwrite: tuple[str, ...]) -> None:
        self.rules, self.catalog, self.composer, self.now, self.overwrite = rules, catalog, composer, now, overwrite
        self._verdicts: dict[tuple[str, str, str], Verdict] = {}
        #: Rows whose render key changed though the article did not: saved so the next run need not render.
        self.stale_keys: list[tuple[Delivery, str | None]] = []

    def verdict(self, entry: Entry, partner: PartnerConfig, first_seen: dt.datetime | None) -> Verdict:
        """The permission verdict, decided once per run (passes and predictions ask again)."""
        key = (partner.id, entry.source, entry.guid)
        if key not in self._verdicts:
            self._verdicts[key] = self.rules.verdict(entry, partner, self.now, first_seen)
        return self._verdicts[key]

    def overwrites(self, entry: Entry) -> bool:
        """Did an editor ask to push over the partner's edit of this entry's copy?"""
        return any(self.catalog.names(o, entry) for o in self.overwrite)

    def plan(self, partner: PartnerConfig, publisher: Publisher, ledger: Ledger,
             predicted: dict[tuple[str, str], str]) -> list[Planned]:
        """Every current entry's plan for one partner, rendered where it matters."""
        owners = self.owners(partner, ledger)
        plans = [self._decide(entry, first_seen, partner, ledger, owners) for entry, first_seen in self.catalog.entries()]
        copies = self.composer.copies(ledger, predicted)
        return [self.render_or_fail(planned, partner, publisher, copies, ledger)
                if planned.action in ("create", "update", "unchanged", "held") else planned for planned in plans]

    def render_or_fail(self, planned: Planned, partner: PartnerConfig, publisher: Publisher,
                       copies: dict[tuple[str, str], str], ledger: Ledger) -> Planned:
        """``render``, or the entry's ``failed`` plan when rendering raises."""
        try:
            return self.render(planned, partner, publisher, copies, ledger)
        except Exception as exc:  # one entry's bug or bad data: recorded against it, the rest go on
            return _failed(planned, exc, partner)

    def _decide(self, entry: Entry, first_seen: dt.datetime | None, partner: PartnerConfig,
                ledger: Ledger, owners: dict[tuple[int, str], str]) -> Planned:
        d = ledger.get((entry.source, entry.guid))
        try:
            verdict = self.verdict(entry, partner, first_seen)
            action, reason = ledger_action(d, verdict, updates=partner.updates, overwrite=self.overwrites(entry))
            owner = self.other_owner(entry, owners, d)
            if owner is not None and action not in ("withdrawn", "skip", "wait"):
                action, reason = "skip", f"already republished from {owner}"
        except Exception as exc:
            return _failed(Planned(entry, first_seen, None, d), exc, partner)
        return Planned(entry, first_seen, verdict, d, action, reason)

    def owners(self, partner: PartnerConfig, ledger: Ledger) -> dict[tuple[int, str], str]:
        """Which source makes and updates this partner's one copy of each post of a site that several
        sources read (a main feed and a category feed): the source whose copy exists (a copy stays with
        the source that made it), else the first source in config order that permits the post."""
        owners: dict[tuple[int, str], str] = {}
        for (source, _), d in ledger.items():
            post = self.rules.post_key(source, d.entry_url) if d.remote_id and d.entry_url else None
            if post is not None:
                owners.setdefault(post, source)
        order = {sid: n for n, sid in enumerate(self.rules.config.sources)}
        for entry, first_seen in sorted(self.catalog.entries(), key=lambda item: order[item[0].source]):
            post = self.rules.post_key(entry.source, entry.url) if entry.url else None
            if post is None or post in owners:
                continue
            try:
                if self.verdict(entry, partner, first_seen).allowed:
                    owners[post] = entry.source
            except Exception:  # noqa: BLE001 - the entry's own plan records it
                continue
        return owners

    def other_owner(self, entry: Entry, owners: dict[tuple[int, str], str], delivery: Delivery | None) -> str | None:
        """The other source that republishes this post on the partner, or None (this entry's own copy
        stays with it)."""
        if delivery is not None and delivery.remote_id:
            return None
        post = self.rules.post_key(entry.source, entry.url) if entry.url else None
        owner = owners.get(post) if post is not None else None
        return owner if owner is not None and owner != entry.source else None

    def render(self, planned: Planned, partner: PartnerConfig, publisher: Publisher,
               copies: dict[tuple[str, str], str], ledger: Ledger) -> Planned:
        """The plan with its article (None when what was pushed is what it renders) and render key."""
        assert planned.verdict is not None
        article, key = self.composer.compose(planned.entry, planned.verdict, partner, publisher, copies, ledger,
                                             planned.delivery)
        action, d = planned.action, planned.delivery
        if action == "unchanged" and d is not None:
            changed = article is not None and article.content_hash() != d.pushed_hash
            if changed and partner.updates == "push":
                action = "update"
            elif not changed and d.state == OK and d.render_key != key:
                # Rendered the same as what was pushed: remember the inputs' fingerprint, so that the
                # next run need not render it again.
                self.stale_keys.append((d, key))
        return replace(planned, action=action, article=article, render_key=key)

    def predicted_copies(self, partner: PartnerConfig, publisher: Publisher, ledger: Ledger, *,
                         placeholders: bool) -> dict[tuple[str, str], str]:
        """URLs the copies about to be created will have, where the partner's URLs can be foretold.

        A partner that can foretell them (``publisher.predicted_url``) gives them; with ``placeholders``
        (check, preview) a stand-in URL is given for the others, so that the other copies are seen to
        change once the new one exists; a real sync links only what it can foretell and converges in
        a later pass."""
        predicted: dict[tuple[str, str], str] = {}
        owners = self.owners(partner, ledger)
        for entry, first_seen in self.catalog.entries():
            d = ledger.get((entry.source, entry.guid))
            if d is not None and (d.remote_id or d.state == WITHDRAWN):
                continue
            try:
                if not self.verdict(entry, partner, first_seen).allowed or self.other_owner(entry, owners, d):
                    continue
                slug = self.composer.slugs.slug(entry, partner.id, ledger)
            except Exception:  # noqa: BLE001 - the entry's plan records it
                continue
            url = publisher.predicted_url(slug)
            if url is not None:
                predicted[(entry.source, entry.guid)] = url
            elif placeholders:
                predicted[(entry.source, entry.guid)] = f"urn:syndicate:pending:{slug}"
        return predicted
