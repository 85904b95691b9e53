"""The edge of ``syndicate audit``: which copies are live, fetching each as an anonymous reader, the results.

The ledger says which copies exist (not withdrawn); a copy the partner does not show the public (a
draft, a scheduled or private post) is reported ``not public`` and not fetched. Every other copy's
remote URL is fetched with the guarded fetcher, like a feed: size cap, deadline, redirects checked,
no private addresses — except that the partner's own configured host is trusted as a feed URL is (the
operator named it), so a partner on 127.0.0.1 can be audited while other private addresses stay
blocked. What the page must show comes from ``audit.credits_for``; what it lacks from
``audit.page_problems``. Nothing is written anywhere: the store is read-only and no lock is taken.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .audit import credits_for, page_problems
from .config import Config, PartnerConfig
from .decide import Rules
from .models import Entry
from .records import Delivery
from .report import NoProgress, Progress
from .store import Store
from .urls import parse

if TYPE_CHECKING:
    from .ingest import Network

#: What the CMSs call a copy the public can read (WordPress ``publish``, Ghost ``published``; files: ours).
PUBLIC_STATUSES = ("publish", "published")
#: The audit's phase on a progress display.
PHASE = "audit"


@dataclass(frozen=True)
class CopyAudit:
    """What the audit found for one copy."""

    partner: str
    entry: str | None                    # the original's URL (else its guid)
    url: str | None                      # the copy's remote URL, as the ledger has it
    status: str                          # "ok" | "problems" | "not public" | "unreachable"
    problems: tuple[str, ...] = ()       # every problem (for "unreachable": why it could not be read)
    remote_status: str | None = field(default=None, compare=False)  # e.g. "draft", for "not public"

    @property
    def credits_author(self) -> bool:
        """Does this copy pass: ok, or not public (nothing for a reader to see)?"""
        return self.status in ("ok", "not public")

    def as_json(self) -> dict[str, Any]:
        """One object of ``audit --json``."""
        return {"partner": self.partner, "entry": self.entry, "url": self.url, "status": self.status,
                "problems": list(self.problems)}


def partner_home(partner: PartnerConfig) -> str | None:
    """The partner's configured site (a CMS's ``url``, a files partner's ``base_url``)."""
    for name in ("url", "base_url"):  # each kind's own config model names it
        value = getattr(partner, name, None)
        if isinstance(value, str):
            return value
    return None


def on_partner_host(url: str, partner: PartnerConfig) -> bool:
    """Is ``url`` on the partner's configured host and port (trusted like a feed URL)?"""
    home = partner_home(partner)
    mine, theirs = parse(url), parse(home) if home else None
    if mine is None or theirs is None or not mine.is_web or not theirs.is_web:
        return False
    return (mine.host, mine.effective_port) == (theirs.host, theirs.effective_port)


class Auditor:
    """Audits the live copies of some partners (all when none is named)."""

    def __init__(self, config: Config, store: Store, partner_ids: list[str],
                 progress: Progress | None = None) -> None:
        self.config, self.store, self.partner_ids = config, store, partner_ids
        self.rules = Rules(config)
        self.progress = progress or NoProgress()

    def copies(self) -> list[tuple[Delivery, Entry]]:
        """Every live copy (not withdrawn) of the selected partners with its entry, in ledger order."""
        entries = {(e.source, e.guid): e for e in self.store.all_entries()}
        out = []
        for d in self.store.deliveries(self.partner_ids):
            if not d.has_copy or d.partner not in self.config.partners or d.source not in self.config.sources:
                continue  # no copy, or one of a partner or source no longer configured: nothing to derive
            entry = entries.get((d.source, d.guid)) or Entry(
                source=d.source, guid=d.guid, url=d.entry_url, title=d.title or "", author=None, published=None,
                updated=None)  # the ledger's own record of the original, should the entry's row be gone
            out.append((d, entry))
        return out

    def audit(self) -> list[CopyAudit]:
        """Every live copy's result, in ledger order (the pages are fetched ``[network] concurrency`` at a time)."""
        from .ingest import Network

        copies = self.copies()
        self.progress.start(PHASE, len(copies))
        network = Network(self.config)
        try:
            with concurrent.futures.ThreadPoolExecutor(self.config.network.concurrency) as pool:
                return list(pool.map(lambda item: self._one(network, *item), copies))
        finally:
            network.close()

    def _one(self, network: Network, d: Delivery, entry: Entry) -> CopyAudit:
        try:
            return self._audit_copy(network, d, entry)
        finally:
            self.progress.advance(PHASE)

    def _audit_copy(self, network: Network, d: Delivery, entry: Entry) -> CopyAudit:
        from .fetch import FetchError, HTTPStatusError

        shown = entry.url or d.entry_url or d.guid
        result = CopyAudit(partner=d.partner, entry=shown, url=d.remote_url, status="ok",
                           remote_status=d.remote_status)
        if d.remote_status not in PUBLIC_STATUSES:
            return _with(result, "not public")
        if not d.remote_url:
            return _with(result, "unreachable", "the ledger has no URL for this copy")
        partner = self.config.partners[d.partner]
        try:
            response = network.fetcher().get(d.remote_url, trusted=on_partner_host(d.remote_url, partner),
                                             accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
        except HTTPStatusError as exc:
            return _with(result, "problems", f"not reachable: {exc.status}")
        except FetchError as exc:
            return _with(result, "unreachable", str(exc))
        problems = page_problems(_decoded(response.body, response.headers.get("Content-Type", "")),
                                 credits_for(entry, d, self.config, self.rules))
        return _with(result, "problems", *problems) if problems else result


def _with(result: CopyAudit, status: str, *problems: str) -> CopyAudit:
    from dataclasses import replace

    return replace(result, status=status, problems=tuple(problems))


def _decoded(body: bytes, content_type: str) -> str:
    """The page as text: the charset the server names (else UTF-8); bytes that do not decode are replaced."""
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")
