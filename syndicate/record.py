"""Record: what a run keeps for the next one — each feed's outcome and entries, render keys, and what
lets a run where nothing changed stop early (the steady state).

The steady state: when every feed answered 304 (or is the same file, or failed), the config, the
templates and the selection are the same, every copy is settled, the partner reported no change to
our copies and no embargo or grant expiry has come due, loading and deciding every entry would find
nothing to do; the last run's counts are reported instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from . import __version__, dates
from .config import Config, PartnerConfig, packaged_templates
from .models import from_iso, iso, sha256
from .plan import Ledger, Planned
from .records import OK, WITHDRAWN, Delivery
from .report import FeedOutcome, PartnerReport
from .store import Store


def record_feeds(store: Store, outcomes: list[FeedOutcome]) -> None:
    """Every feed's outcome and entries, in one transaction (one commit, not one per feed) and a few
    statements for all the feeds (not a few per feed)."""
    read = {o.source: o.entries for o in outcomes if o.state is not None and o.status == "ok" and o.entries is not None}
    with store.transaction():
        store.save_feeds(o.state for o in outcomes if o.state is not None)
        store.save_entries_of(read)
        store.save_entry_guids_of({source: {e.guid: e.current_guid for e in items} for source, items in read.items()})


def save_render_keys(store: Store, stale: list[tuple[Delivery, str | None]]) -> None:
    """The render keys of copies rendered the same as what was pushed (so they are not rendered again)."""
    if stale:
        with store.transaction():
            for d, key in stale:
                d.render_key = key
                store.put(d)
    stale.clear()


class Steady:
    """The steady-state memo of each partner: recalled before a run's work, remembered after it."""

    def __init__(self, config: Config, store: Store, source_ids: list[str], now: dt.datetime) -> None:
        self.config, self.store, self.source_ids, self.now = config, store, source_ids, now

    def _whole_config(self) -> bool:
        return self.source_ids == list(self.config.sources)

    def fingerprint(self, partner: PartnerConfig) -> str:
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
        return sha256(__version__, config_bytes, listing, partner.id, self.source_ids,
                      self.store.ledger_version(partner.id))

    def recall(self, partner: PartnerConfig, outcomes: list[FeedOutcome], ledger: Ledger) -> dict[str, int] | None:
        """The last run's counts when nothing that could change a decision or a copy changed since."""
        if not self._whole_config() or any(o.status == "ok" for o in outcomes):
            return None
        if any(d.state not in (OK, WITHDRAWN) or d.intent for d in ledger.values()):
            return None
        raw = self.store.get_meta(f"steady:{partner.id}")
        if raw is None:
            return None
        memo = json.loads(raw)
        due = from_iso(memo.get("next_check_at"))
        if memo.get("fingerprint") != self.fingerprint(partner) or due is None or self.now >= due:
            return None
        return {k: int(v) for k, v in memo.get("counts", {}).items()}

    def remember(self, partner: PartnerConfig, report: PartnerReport, plans: list[Planned], ledger: Ledger) -> None:
        """After a clean full run: what the next run needs to know that nothing changed."""
        if report.failed or report.held or not self._whole_config():
            return
        if any(p.image_warning for p in plans):  # a body image to copy again: the next run must look
            return
        if any(d.state not in (OK, WITHDRAWN) for d in ledger.values()):
            return
        due = self.now + dt.timedelta(hours=24)  # at least one full look a day, whatever else holds
        for planned in plans:
            if planned.verdict is not None and planned.verdict.not_before is not None:
                due = min(due, planned.verdict.not_before)
        for grant in self.config.grants:
            if grant.partner == partner.id and grant.expires is not None:
                expiry = dates.start_of_day_after(grant.expires)  # saturates at 9999-12-31
                if expiry > self.now:
                    due = min(due, expiry)
        counts = report.counts()
        # what was created or updated this run is simply there next time
        counts["unchanged"] += counts.pop("created") + counts.pop("updated")
        counts["created"] = counts["updated"] = 0
        memo = {"fingerprint": self.fingerprint(partner), "next_check_at": iso(due), "counts": counts}
        self.store.put_meta(f"steady:{partner.id}", json.dumps(memo))
