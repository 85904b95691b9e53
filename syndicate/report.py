"""What a run tells its caller: each feed's outcome, each partner's counts, errors and warnings; and the
progress display's interface (rich on a terminal, nothing in cron)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Protocol

from .identity import IdentityChange
from .models import Entry
from .records import FeedState


class Progress(Protocol):
    """What the pipeline tells a progress display."""

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


@dataclass(frozen=True)
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

    def count(self, outcome: str) -> None:
        """One more entry with this outcome (an action or a delivery's result)."""
        name = _COUNTED.get(outcome)
        if name:
            setattr(self, name, getattr(self, name) + 1)

    def counts(self) -> dict[str, int]:
        """Every count by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_COUNTED = {"create": "created", "update": "updated", "unchanged": "unchanged", "skip": "skipped",
            "wait": "waiting", "held": "held", "withdraw": "withdrawn", "withdrawn": "withdrawn",
            "failed": "failed"}


@dataclass
class RunReport:
    """What a run did; its ``exit_code`` is what cron sees."""

    feeds: list[FeedOutcome] = field(default_factory=list)
    partners: dict[str, PartnerReport] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config_errors: list[str] = field(default_factory=list)
    #: partner id → where its copies can be opened (a files partner's folder), when it wrote any.
    locations: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    #: Known posts that this run's feeds name by another guid (identity.py).
    identity_changes: list[IdentityChange] = field(default_factory=list)
    #: What other runs sharing the store held, so this run left it (PostgreSQL): feed and partner ids.
    held_feeds: list[str] = field(default_factory=list)
    held_partners: list[str] = field(default_factory=list)

    @property
    def held(self) -> str | None:
        """``held by another run: 2 feeds, 1 partner`` (None when no other run held anything)."""
        parts = [f"{len(ids)} {name}{'s' if len(ids) != 1 else ''}"
                 for ids, name in ((self.held_feeds, "feed"), (self.held_partners, "partner")) if ids]
        return f"held by another run: {', '.join(parts)}" if parts else None

    @property
    def failed_feeds(self) -> list[FeedOutcome]:
        """The feeds that could not be read or parsed."""
        return [f for f in self.feeds if f.status == "failed"]

    @property
    def exit_code(self) -> int:
        """2 for a config error, 1 for any recorded failure, else 0."""
        if self.config_errors:
            return 2
        failed = bool(self.failed_feeds) or any(p.failed for p in self.partners.values())
        return 1 if failed or self.errors else 0

    def partner(self, pid: str) -> PartnerReport:
        """The counts of one partner (made on first use)."""
        return self.partners.setdefault(pid, PartnerReport())


def merge_outcome(previous: str | None, new: str) -> str:
    """A create followed by an update in a later pass still counts as a create; a failure stays one."""
    if previous == "create" and new in ("update", "unchanged"):
        return "create"
    if previous == "failed":
        return previous
    return new
