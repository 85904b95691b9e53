"""What a state store must do, whatever keeps it (SQLite today; PostgreSQL next), and the dry-run store.

The stages talk to a ``Store`` only: feed state, entries, series numbers, the delivery ledger, media,
small facts about past runs, transactions, the run's lock and the schema's migrations. A store
kind is one class that keeps these promises; ``open_store`` picks it by the URL.

A dry run (``sync --dry-run``, ``check``, ``preview``, ``status``) uses a ``ReadOnlyStore``: it reads
through to the real store, opened without writing (not even a migration), and drops every write.
So the stages never ask whether this is a dry run before they record something.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol, TypeVar

from .models import Entry
from .records import FAILED, HELD, INTENT, OK, PENDING, WITHDRAWN, Delivery, FeedState  # noqa: F401 (re-exported)
from .sql_store import Taken

T = TypeVar("T")


class Store(Protocol):
    """The ledger and feed state of one deployment.

    Every method is one transaction of its own unless called inside ``transaction()``, whose
    writes commit together or not at all. A write that returns is durable (it survives a crash or a
    power cut), except ``put(durable=False)``.

    Migrations: a writer creates or migrates the schema under its lock (``lock``), once; a store
    opened for reading only never migrates (an older schema is read as it is) and refuses a newer one
    (ConfigError naming ``state.url``). Failures of the store itself are StoreError (one line, exit 1).

    Intents: ``deliver`` puts a row with ``state = intent`` (and ``intent`` = create, update or
    withdraw) before a remote write, and relies on it being on disk when ``put`` returns; the write's
    outcome replaces it. ``unsettled`` and ``deliveries`` must show such rows to the next run, which
    reconciles them before it sends anything again."""

    def lock(self, wait: bool = False) -> None:
        """Take the exclusive lock that keeps two writing runs (``sync``, ``withdraw``) apart, then
        create or migrate the schema under it. LockedError (exit 75) at once when another run holds
        it, unless ``wait``. The lock must be the store's own (the same database reached by any
        spelling of its URL is the same lock) and must die with its holder (kill -9 included)."""

    def close(self) -> None:
        """Write what waits to be written, release the lock, the claims and the connections."""

    def take(self, feeds: list[str], partners: list[str]) -> Taken:
        """Take, for this run, those of ``feeds`` and ``partners`` no other run holds (after ``lock``):
        everything with a single-run lock (SQLite); with a shared server (PostgreSQL), what is free,
        each held until ``close`` (feeds: ``feeds_recorded``), dying with its holder, and at most a
        batch of feeds at once (the free ones past it are ``later``: take them after recording these)."""

    def transaction(self) -> contextlib.AbstractContextManager[object]:
        """One transaction; nested calls join the outer one."""

    def feeds_recorded(self, *, wait: bool = True) -> None:
        """This run's feeds are read and recorded: give them back to other runs, and (``wait``) wait,
        bounded, for the feeds other runs are reading, so the pushes that follow see their entries."""

    def batch(self) -> contextlib.AbstractContextManager[object]:
        """Writes that may commit together at the end of the block, which makes remote calls: one
        transaction where holding one open is harmless (SQLite, one writer), none where it is not
        (a server shared by several runs ends a transaction left idle)."""

    # feeds and entries
    def feed_states(self) -> dict[str, FeedState]:
        """Every source's feed state."""

    def save_feeds(self, states: Iterable[FeedState]) -> None:
        """Insert or replace the states of several feeds."""

    def save_entries_of(self, readings: Mapping[str, list[Entry]]) -> dict[str, dict[str, str]]:
        """Store a successful read of each of several feeds (source → its entries: its current entries
        now; the first of a repeated guid stands), in a few statements however many; returns, per
        source, guid → previous content hash of the entries already known."""

    def current_entries(self, sources: list[str] | None = None) -> Iterator[tuple[Entry, dt.datetime]]:
        """The entries last read from each feed, with when each was first seen: source by source, in
        feed order, read as they are asked for (a caller that keeps some holds only those). The rows
        are read in one transaction, open until the iterator is exhausted or closed."""

    def all_entries(self, source: str | None = None, *, current: bool | None = None) -> list[Entry]:
        """Every entry ever seen (``current``: only those in, or only those no longer in, their feed)."""

    def all_entries_of(self, sources: Iterable[str], keep: Callable[[Entry], T]) -> dict[str, list[T]]:
        """``keep`` of every entry ever seen of each of ``sources`` (source → what it kept), each entry
        handed to ``keep`` as it is read, in a few statements however many sources."""

    # entry identity (identity.py): the guids each entry has been known by
    def entry_guids(self, source: str) -> dict[str, list[str]]:
        """Entry key → every guid the entry has been known by, oldest first (the last is its guid now)."""

    def entry_guids_of(self, sources: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """``entry_guids`` of each of ``sources`` (source → entry key → guids), in a few statements."""

    def save_entry_guids_of(self, readings: Mapping[str, Mapping[str, str]]) -> None:
        """Record a reading of each of several sources (source → entry key → the guid the feed names it
        by now), in a few statements however many."""

    # series
    def series_numbers(self, source: str, series: str) -> dict[str, int]:
        """guid → part number for one series."""

    def number_series(self, source: str, series: str, parts: list[str]) -> dict[str, int]:
        """guid → number of every part of one series: a part keeps the number it got when first seen
        (for ever); those of ``parts`` (in publication order) not numbered yet get the next numbers.
        Atomic across runs sharing the store: a part gets one number, the same for every run."""

    # the ledger
    def deliveries(self, partners: list[str] | None = None) -> list[Delivery]:
        """Every ledger row (optionally of some partners), in the order they were created."""

    def delivery(self, partner: str, source: str, guid: str) -> Delivery | None:
        """One ledger row, or None."""

    def put(self, delivery: Delivery, *, durable: bool = True) -> None:
        """Insert or replace a ledger row (its intent, or its outcome). ``durable=False``: the row may
        wait for the store's next transaction of any kind (reads see it at once); for an outcome whose
        loss in a crash costs only a reconciliation."""

    def unsettled(self, partner: str) -> int:
        """How many of a partner's deliveries are not settled (not ok/withdrawn, or a write in flight)."""

    def ledger_version(self, partner: str) -> str:
        """A value that changes whenever a partner's ledger changes."""

    # media
    def media(self, partner: str, source_url: str) -> tuple[str, str] | None:
        """(remote id, remote URL) of an image already uploaded to this partner."""

    def media_by_hash(self, partner: str, sha256: str) -> tuple[str, str] | None:
        """(remote id, remote URL) of an image with these bytes already uploaded to this partner, under
        any URL."""

    def put_media(self, partner: str, source_url: str, remote_id: str, remote_url: str,
                  sha256: str | None = None) -> None:
        """Remember an uploaded image (``sha256``: of its bytes, where known)."""

    def forget_media(self, partner: str, source_url: str) -> None:
        """Forget an uploaded image (it is gone from the partner)."""

    # small facts about past runs
    def get_meta(self, key: str) -> str | None:
        """A value remembered between runs."""

    def put_meta(self, key: str, value: str) -> None:
        """Remember a value between runs."""


class ReadOnlyStore:
    """Reads through to a store (None: there is none yet) and drops every write: what changes no state.

    The store under it is opened without writing, so an old schema is read as it is, not migrated."""

    def __init__(self, inner: Store | None) -> None:
        self.inner = inner

    def lock(self, wait: bool = False) -> None:
        """A run that changes nothing takes no lock."""

    def close(self) -> None:
        """Close the store under it."""
        if self.inner is not None:
            self.inner.close()

    def take(self, feeds: list[str], partners: list[str]) -> Taken:
        """A run that changes nothing takes everything (and holds nothing)."""
        return Taken(feeds=list(feeds), partners=list(partners))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[object]:
        """Nothing to commit."""
        yield None

    def feeds_recorded(self, *, wait: bool = True) -> None:
        """Nothing held."""

    def batch(self) -> contextlib.AbstractContextManager[object]:
        """Nothing to commit."""
        return self.transaction()

    def feed_states(self) -> dict[str, FeedState]:
        """The stored states."""
        return self.inner.feed_states() if self.inner is not None else {}

    def save_feeds(self, states: Iterable[FeedState]) -> None:
        """Dropped."""

    def save_entries_of(self, readings: Mapping[str, list[Entry]]) -> dict[str, dict[str, str]]:
        """Dropped."""
        return {source: {} for source in readings}

    def current_entries(self, sources: list[str] | None = None) -> Iterator[tuple[Entry, dt.datetime]]:
        """The stored current entries."""
        return self.inner.current_entries(sources) if self.inner is not None else iter(())

    def all_entries(self, source: str | None = None, *, current: bool | None = None) -> list[Entry]:
        """The stored entries."""
        return self.inner.all_entries(source, current=current) if self.inner is not None else []

    def all_entries_of(self, sources: Iterable[str], keep: Callable[[Entry], T]) -> dict[str, list[T]]:
        """The stored entries."""
        return self.inner.all_entries_of(sources, keep) if self.inner is not None else {s: [] for s in sources}

    def entry_guids(self, source: str) -> dict[str, list[str]]:
        """As stored."""
        return self.inner.entry_guids(source) if self.inner is not None else {}

    def entry_guids_of(self, sources: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """As stored."""
        return self.inner.entry_guids_of(sources) if self.inner is not None else {source: {} for source in sources}

    def save_entry_guids_of(self, readings: Mapping[str, Mapping[str, str]]) -> None:
        """Dropped."""

    def series_numbers(self, source: str, series: str) -> dict[str, int]:
        """The stored numbers."""
        return self.inner.series_numbers(source, series) if self.inner is not None else {}

    def number_series(self, source: str, series: str, parts: list[str]) -> dict[str, int]:
        """The stored numbers, and the ones it would give the new parts (not written)."""
        numbers = self.series_numbers(source, series)
        new = [guid for guid in dict.fromkeys(parts) if guid not in numbers]
        return numbers | {guid: n for n, guid in enumerate(new, start=max(numbers.values(), default=0) + 1)}

    def deliveries(self, partners: list[str] | None = None) -> list[Delivery]:
        """The stored rows."""
        return self.inner.deliveries(partners) if self.inner is not None else []

    def delivery(self, partner: str, source: str, guid: str) -> Delivery | None:
        """The stored row."""
        return self.inner.delivery(partner, source, guid) if self.inner is not None else None

    def put(self, delivery: Delivery, *, durable: bool = True) -> None:
        """Dropped."""

    def unsettled(self, partner: str) -> int:
        """As stored."""
        return self.inner.unsettled(partner) if self.inner is not None else 0

    def ledger_version(self, partner: str) -> str:
        """As stored."""
        return self.inner.ledger_version(partner) if self.inner is not None else ""

    def media(self, partner: str, source_url: str) -> tuple[str, str] | None:
        """As stored."""
        return self.inner.media(partner, source_url) if self.inner is not None else None

    def media_by_hash(self, partner: str, sha256: str) -> tuple[str, str] | None:
        """As stored."""
        return self.inner.media_by_hash(partner, sha256) if self.inner is not None else None

    def put_media(self, partner: str, source_url: str, remote_id: str, remote_url: str,
                  sha256: str | None = None) -> None:
        """Dropped."""

    def forget_media(self, partner: str, source_url: str) -> None:
        """Dropped."""

    def get_meta(self, key: str) -> str | None:
        """As stored."""
        return self.inner.get_meta(key) if self.inner is not None else None

    def put_meta(self, key: str, value: str) -> None:
        """Dropped."""


def open_store(url: str, *, readonly: bool, clock: Callable[[], dt.datetime] | None = None,
               password: str | None = None, lease_seconds: float = 60) -> Store:
    """The store a URL names. ``readonly``: a ``ReadOnlyStore`` over it (over nothing when a SQLite
    file does not exist yet); else the store itself, to be ``lock``-ed before it is used. ``clock``:
    the run's (the times the store writes, e.g. when a row was updated). ``password`` and
    ``lease_seconds``: a PostgreSQL store's (``[state]``)."""
    from .config import is_postgres_url
    from .locking import sqlite_file
    from .sqlite_store import SQLiteStore

    if is_postgres_url(url):
        from .pg_store import PostgresStore

        server = PostgresStore(url, readonly=readonly, password=password, lease_seconds=lease_seconds,
                               **({"clock": clock} if clock is not None else {}))
        return ReadOnlyStore(server) if readonly else server
    if readonly:
        path = sqlite_file(url)
        if path is not None and not path.exists():
            return ReadOnlyStore(None)
        return ReadOnlyStore(SQLiteStore(url, readonly=True))
    return SQLiteStore(url, clock=clock) if clock is not None else SQLiteStore(url)
