"""The PostgreSQL state store: the shared SQL store (sql_store.py) on a server several hosts share.

What is PostgreSQL's own here (postgres.py has the primitives):

* the engine: psycopg 3, the password in the connect arguments, keepalives scaled to the lease;
* no single-run lock: a run *takes* the feeds and partners no other run holds (``take``, with
  ``postgres.Claims``: a session advisory lock and a lease each) and leaves the others;
* every ledger write of a partner is fenced on this run's claim of it, so a write cannot land after
  another run took the partner over (``ClaimLost``, exit 1), and is committed at once (no write
  waits for a later transaction, no transaction stays open across a remote call: the server ends
  one left idle for a lease);
* a server that goes away mid-run is ``StoreUnavailable``: one line, exit 1, the transaction rolled
  back, so nothing is half-recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable

import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import postgres
from .errors import ConfigError, StoreError, StoreUnavailable
from .records import Delivery
from .redact import redact
from .sql_store import SQLStore, Taken, _db_message, system_clock

#: The most feeds one run holds at once (see ``PostgresStore.take``).
FEED_BATCH = 1000


class PostgresStore(SQLStore):
    """The ledger and feed state in a PostgreSQL database (see ``store.Store``)."""

    def __init__(self, url: str, *, readonly: bool = False, clock: Callable[[], dt.datetime] = system_clock,
                 password: str | None = None, lease_seconds: float = 60) -> None:
        super().__init__(url, readonly=readonly, clock=clock)
        try:
            self.engine = postgres.create_engine(url, password=password, lease_seconds=lease_seconds)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"state.url: {exc}") from None
        self.lease_seconds = lease_seconds
        # A statement waits at most a lease for its answer, and none once this run's claims are lost.
        self._watchdog = postgres.Watchdog(self.engine, limit=max(1.0, float(lease_seconds)))
        self._claims: postgres.Claims | None = None
        self._partner_claims: dict[str, postgres.Claim] = {}
        self._feeds_elsewhere: list[str] = []  # claim names of the feeds other runs were reading

    def _where(self) -> str:
        return f"(PostgreSQL at {postgres.describe(self.url)})"

    def _failure(self, exc: sqlalchemy.exc.DBAPIError) -> Exception:
        if postgres.is_gone(exc):
            if self._watchdog.reason is not None:  # cut by the watchdog: say why, not how the socket died
                return StoreUnavailable(redact(f"the state store {self._where()} went away: {self._watchdog.reason}; "
                                               "the remaining work is left for the next run"))
            return postgres.unavailable(exc, self.url)
        return StoreError(f"state store {self._where()}: {_db_message(exc)}")

    def _schema_transaction(self, migrate: Callable[[Connection], None]) -> None:
        postgres.migrate_once(self.engine, migrate)

    @staticmethod
    def _migrate_in(conn: Connection) -> None:
        SQLStore._migrate_in(conn)
        postgres.claims_metadata.create_all(conn)  # the leases of the runs' claims

    def _serialize(self, conn: Connection, name: str) -> None:
        """A transaction-scoped advisory lock on ``name``: runs on any host queue on it, and the lock
        goes with the transaction (commit, rollback or a dead session alike)."""
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": postgres.advisory_key(name)})

    def lock(self, wait: bool = False) -> None:
        """No single-run lock: runs share the work (``take``). The schema is made ready here, once,
        under the schema's advisory lock."""
        self._ready()

    def take(self, feeds: list[str], partners: list[str]) -> Taken:
        """Claim those of ``feeds`` and ``partners`` that no other run holds (held until ``close``, or
        for feeds until ``feeds_recorded``); at most ``FEED_BATCH`` feeds at once, the free ones past
        it left for the next call (``Taken.later``).

        A claim dies with this run's claims connection (kill -9 included) or, if that connection
        goes silent, within ``lease_seconds``. The batch bounds the advisory locks one run holds:
        they fill a slot each of the server's shared lock table (6,400 on a default server, for every
        session together), and a run of 10,000 feeds would fill it."""
        self._ready()
        if self._claims is None:
            self._claims = postgres.Claims(self.engine, lease_seconds=self.lease_seconds,
                                           on_lost=self._watchdog.abandon)
        names = [f"feed:{f}" for f in feeds]
        got = self._claims.take_many(names, limit=FEED_BATCH) if names else {}
        got |= self._claims.take_many([f"partner:{p}" for p in partners]) if partners else {}
        for pid in partners:
            if f"partner:{pid}" in got:
                self._partner_claims[pid] = got[f"partner:{pid}"]
        taken: list[str] = []
        held: list[str] = []
        later: list[str] = []
        for feed, name in zip(feeds, names):
            if name in got:
                taken.append(feed)
            elif len(taken) >= FEED_BATCH:  # not tried: the batch was full
                later.append(feed)
            else:
                held.append(feed)
        self._feeds_elsewhere += [f"feed:{f}" for f in held]
        return Taken(feeds=taken, partners=[p for p in partners if f"partner:{p}" in got],
                     held_feeds=held, held_partners=[p for p in partners if f"partner:{p}" not in got], later=later)

    def feeds_recorded(self, *, wait: bool = True) -> None:
        """This run's feeds are recorded: give them back, then (``wait``) wait within one lease until
        the feeds other runs are reading are given back too, so the partners' pushes see their entries.

        A feed is free again when its lock can be had: it is taken and given back at once (this run
        does not read it), a batch at a time. A run that died reading one lets go of it with its session."""
        if self._claims is None:
            return
        self._claims.release(*[c for c in self._claims.held if c.name.startswith("feed:")])
        if not wait:
            return
        deadline = time.monotonic() + self.lease_seconds
        while self._feeds_elsewhere:
            for start in range(0, len(self._feeds_elsewhere), FEED_BATCH):
                chunk = self._feeds_elsewhere[start:start + FEED_BATCH]
                got = self._claims.take_many(chunk)
                self._claims.release(*got.values())
                self._feeds_elsewhere[start:start + FEED_BATCH] = [name for name in chunk if name not in got]
            if not self._feeds_elsewhere or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        self._feeds_elsewhere = []

    def put(self, delivery: Delivery, *, durable: bool = True) -> None:
        """Insert or replace a ledger row, committed at once and fenced on this run's claim of its
        partner (ClaimLost when another run took the partner over)."""
        claim = self._partner_claims.get(delivery.partner)
        with self.transaction() as conn:
            if claim is not None:
                claim.fence(conn)
            super().put(delivery)

    def batch(self) -> contextlib.AbstractContextManager[object]:
        """No transaction across the block's remote calls: each write commits as it is made."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Write what waits, close the connections, then give the claims back (with their session)."""
        try:
            super().close()
        finally:
            if self._claims is not None:
                self._claims.close()
                self._claims = None
            self._partner_claims.clear()
            self._watchdog.close()
