"""The state store's ledger and feed state in SQLAlchemy Core, once for every kind of store.

``SQLStore`` is everything a store does with its tables (schema.py declares them once): feeds,
entries, series, the ledger, media, small facts; ``SQLDatabase`` under it, the transactions and the
schema's upkeep they run on. What differs per kind is its own subclass: how its
engine is made, its lock or claims, how a read-only opening sees an old schema, and how a failure of
the database itself is told (``SQLiteStore`` in sqlite_store.py, ``PostgresStore`` in pg_store.py).

Both kinds keep one dialect-neutral SQL: upserts and insert-if-missing from ``portable``, key
columns that sort by code point on both (``portable.sortable_text``), text from feeds without
U+0000 (PostgreSQL cannot hold it), and the schema created or migrated in one transaction under the
schema's lock (``_schema_transaction``: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL).
Nothing here imports the PostgreSQL driver: a SQLite deployment never loads it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import Table, bindparam, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from . import portable
from .errors import ConfigError, StoreError
from .models import Entry, from_iso, iso
from .records import OK, WITHDRAWN, Delivery, FeedState
from .schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    column_additions,
    deliveries,
    entries,
    entry_guids,
    feeds,
    media,
    meta,
    metadata,
    series_parts,
)

T = TypeVar("T")

_FEED_FIELDS = tuple(f.name for f in fields(FeedState))
_DELIVERY_FIELDS = tuple(f.name for f in fields(Delivery))


def system_clock() -> dt.datetime:
    """Now, in UTC (a store's clock unless the run gives its own)."""
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Taken:
    """What a run took of the work (``Store.take``), and what other runs held."""

    feeds: list[str]
    partners: list[str]
    held_feeds: list[str] = field(default_factory=list)
    held_partners: list[str] = field(default_factory=list)
    #: Free feeds not taken this time (a store that bounds how many one run holds): ask again later.
    later: list[str] = field(default_factory=list)


class SQLDatabase:
    """The database under a store: its transactions (one per thread, nested calls joining it), the schema
    made, migrated or checked before the first use, one-statement upserts, and how its failures are told.

    A subclass gives ``engine`` (before calling ``__init__`` here is fine: it is only read when
    used), ``_schema_transaction``, ``_where`` and, if it differs, ``_failure``."""

    engine: Engine

    def __init__(self, url: str, *, readonly: bool = False, clock: Callable[[], dt.datetime] = system_clock) -> None:
        self.url = url
        self.readonly = readonly
        self._clock = clock
        self._upserts: dict[str, Any] = {}
        self._local = threading.local()  # one transaction per thread (fetch threads read feed state)
        self._pending: list[dict[str, Any]] = []  # ledger rows put with durable=False, not yet written
        self._pending_lock = threading.Lock()
        self._schema_ready = False
        self._present: dict[str, set[str]] | None = None  # readonly: the tables and columns the store has

    # --- plumbing -----------------------------------------------------------------------------

    def _now(self) -> str:
        return iso(self._clock()) or ""

    def _where(self) -> str:
        return "the state store"

    def _failure(self, exc: sqlalchemy.exc.DBAPIError) -> Exception:
        """The one-line error for a failure of the database itself mid-run (exit 1)."""
        return StoreError(f"state store {self._where()}: {_db_message(exc)}")

    @property
    def dialect(self) -> str:
        """The engine's dialect name ("sqlite", "postgresql")."""
        return self.engine.dialect.name

    def _ready(self) -> None:
        """The schema, before the first use: created or migrated (a writer), or checked (read-only)."""
        if self._schema_ready:
            return
        self._schema_ready = True
        try:
            if self.readonly:
                self._present = self._read_schema()
            else:
                self._migrate()
        except sqlalchemy.exc.DBAPIError as exc:
            self._schema_ready = False
            failure = self._failure(exc)
            if not isinstance(failure, StoreError):  # the server went away: not the store's fault
                raise failure from None
            raise ConfigError(f"state.url: {self._where()} is not a readable syndicate state store "
                              f"({_db_message(exc)})") from None

    def _read_schema(self) -> dict[str, set[str]]:
        with self.engine.connect() as conn:
            inspector = inspect(conn)
            present = {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}
            if "meta" in present:
                row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
                _check_version(row[0] if row else None)
        return present

    def _migrate(self) -> None:
        """Create or migrate the schema in one transaction under the schema's lock: of several runs
        starting at once one does it, the others find it done (each kind says how: ``_schema_transaction``)."""
        self._schema_transaction(self._migrate_in)

    def _schema_transaction(self, migrate: Callable[[Connection], None]) -> None:
        """Run ``migrate`` in one transaction that holds the schema's lock (the kind's own)."""
        raise NotImplementedError

    @staticmethod
    def _migrate_in(conn: Connection) -> None:
        metadata.create_all(conn)
        row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
        if row is None:
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif _check_version(row[0]) < SCHEMA_VERSION:
            for version in range(int(row[0]) + 1, SCHEMA_VERSION + 1):
                for statement in [*column_additions(conn, version), *MIGRATIONS.get(version, ())]:
                    conn.execute(text(statement))
            conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))

    def _select(self, table: Table) -> Select[Any]:
        """``SELECT`` of the columns this file has (all of them, unless read-only over an old schema)."""
        if self._present is None:
            return select(table)
        have = self._present.get(table.name, set())
        return select(*[c for c in table.columns if c.name in have])

    def _has(self, table: Table) -> bool:
        """Does the file have this table? (Only a read-only store over an old or empty file may not.)"""
        self._ready()
        return self._present is None or table.name in self._present

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; nested calls join the outer one."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        self._ready()
        with self._pending_lock:
            pending, self._pending = self._pending, []
        try:
            with self.engine.begin() as conn:
                self._local.conn = conn
                try:
                    if pending:
                        conn.execute(self._upsert(deliveries), pending)
                    yield conn
                finally:
                    self._local.conn = None
        except BaseException as exc:
            with self._pending_lock:  # not written after all: the next transaction writes them
                self._pending[:0] = pending
            if isinstance(exc, sqlalchemy.exc.DBAPIError):  # e.g. a full disk: one line, exit 1
                raise self._failure(exc) from None
            raise

    def close(self) -> None:
        """Write what waits to be written; release the connections (a subclass releases its lock after)."""
        try:
            if self._pending:
                with self.transaction():
                    pass
        finally:
            self.engine.dispose()

    def _upsert(self, table: Table) -> Any:
        """One statement that inserts a row or replaces the row with the same key (built once per table)."""
        if table.name not in self._upserts:
            try:
                self._upserts[table.name] = portable.upsert(table, self.dialect)
            except ValueError as exc:
                raise ConfigError(f"state.url: {exc}") from None
        return self._upserts[table.name]


class SQLStore(SQLDatabase):
    """The ledger and feed state in SQL tables (see ``store.Store`` for what each method promises); a
    subclass is one kind of database (``SQLDatabase``) and brings its ``lock``."""

    def take(self, feeds: list[str], partners: list[str]) -> Taken:
        """Everything: a store with a single-run lock (after ``lock``) shares its work with no one."""
        return Taken(feeds=list(feeds), partners=list(partners))

    def feeds_recorded(self, *, wait: bool = True) -> None:
        """Nothing to give back or wait for: no other run shares the work."""

    def batch(self) -> contextlib.AbstractContextManager[object]:
        """Writes that may commit together at the end of the block (a pass of pushes that needs no
        durable intent). Here one transaction; a kind that must not hold one across the block's
        remote calls overrides it."""
        return self.transaction()

    # --- feeds --------------------------------------------------------------------------------

    def feed_states(self) -> dict[str, FeedState]:
        """Every source's feed state."""
        if not self._has(feeds):
            return {}
        with self.transaction() as conn:
            return {r["source"]: FeedState(**r) for r in conn.execute(self._select(feeds)).mappings()}

    def save_feeds(self, states: Iterable[FeedState]) -> None:
        """Insert or replace the states of several feeds, in one statement."""
        rows = [{name: getattr(state, name) for name in _FEED_FIELDS} for state in states]
        if rows:
            with self.transaction() as conn:
                conn.execute(self._upsert(feeds), rows)

    # --- entries ------------------------------------------------------------------------------

    def save_entries_of(self, readings: Mapping[str, list[Entry]]) -> dict[str, dict[str, str]]:
        """Store a successful read of each of several feeds (source → its entries, in feed order); they
        become the sources' current entries. A few statements however many feeds (a run records all
        its reads at once).

        Returns, for each source, the previous content hash of each entry that was known (guid → hash)."""
        now = self._now()
        previous: dict[str, dict[str, str]] = {source: {} for source in readings}
        if not readings:
            return previous
        t = entries.c
        with self.transaction() as conn:
            known: dict[tuple[str, str], Any] = {}
            for chunk in _chunks(list(readings)):
                known.update(((r.source, r.guid), r) for r in conn.execute(
                    select(t.source, t.guid, t.content_hash, t.first_seen).where(t.source.in_(chunk))))
                conn.execute(entries.update().where(t.source.in_(chunk)).values(current=False))
            rows: list[dict[str, Any]] = []
            for source, items in readings.items():
                seen: set[str] = set()
                for position, entry in enumerate(items):
                    entry = _storable(entry)
                    if entry.guid in seen:  # a feed that repeats a guid: the first one stands
                        continue
                    seen.add(entry.guid)
                    old = known.get((source, entry.guid))
                    if old is not None:
                        previous[source][entry.guid] = old.content_hash
                    rows.append({"source": source, "guid": entry.guid, "url": entry.url,
                                 "content_hash": entry.content_hash,
                                 "data": json.dumps(entry.to_json(), ensure_ascii=False),
                                 "first_seen": old.first_seen if old is not None else now,
                                 "last_seen": now, "current": True, "position": position})
                    if len(rows) >= _ROWS_AT_ONCE:  # every entry's JSON at once would be a copy of the run's reads
                        conn.execute(self._upsert(entries), rows)
                        rows = []
            if rows:
                conn.execute(self._upsert(entries), rows)
        return previous

    def current_entries(self, sources: list[str] | None = None) -> Iterator[tuple[Entry, dt.datetime]]:
        """The entries last read from each feed (a 304 or a failed fetch leaves them standing), with
        first-seen: source by source, in feed order, each row read and decoded as it is asked for."""
        if not self._has(entries):
            return
        query = select(entries.c.data, entries.c.first_seen).where(entries.c.current.is_(True))
        if sources is not None:
            query = query.where(entries.c.source.in_(sources))
        query = query.order_by(entries.c.source, entries.c.position)
        with self.transaction() as conn:
            for r in conn.execute(query):
                yield Entry.from_json(json.loads(r.data)), from_iso(r.first_seen)  # type: ignore[misc]

    def all_entries(self, source: str | None = None, *, current: bool | None = None) -> list[Entry]:
        """Every entry ever seen (``current``: only those in, or only those no longer in, their feed)."""
        if not self._has(entries):
            return []
        query = select(entries.c.data)
        if source is not None:
            query = query.where(entries.c.source == source)
        if current is not None:
            query = query.where(entries.c.current.is_(current))
        with self.transaction() as conn:
            return [Entry.from_json(json.loads(r.data)) for r in conn.execute(query)]

    def all_entries_of(self, sources: Iterable[str], keep: Callable[[Entry], T]) -> dict[str, list[T]]:
        """``keep`` of every entry ever seen of each of ``sources`` (source → what it kept), in one query
        or a few. Each entry is handed to ``keep`` as it is decoded: a caller that keeps a little of
        each never holds every source's whole history at once."""
        out: dict[str, list[T]] = {source: [] for source in sources}
        if not out or not self._has(entries):
            return out
        with self.transaction() as conn:
            for chunk in _chunks(list(out)):
                for r in conn.execute(select(entries.c.source, entries.c.data).where(entries.c.source.in_(chunk))):
                    out[r.source].append(keep(Entry.from_json(json.loads(r.data))))
        return out

    # --- entry identity ----------------------------------------------------------------------

    def entry_guids(self, source: str) -> dict[str, list[str]]:
        """Entry key → every guid the entry has been known by, oldest first (the last is its guid now)."""
        return self.entry_guids_of([source])[source]

    def entry_guids_of(self, sources: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """``entry_guids`` of each of ``sources`` (source → entry key → guids), in one query or a few."""
        out: dict[str, dict[str, list[str]]] = {source: {} for source in sources}
        if not out or not self._has(entry_guids):
            return out
        t = entry_guids.c
        with self.transaction() as conn:
            for chunk in _chunks(list(out)):
                for r in conn.execute(select(t.source, t.entry_key, t.guid).where(t.source.in_(chunk))
                                      .order_by(t.source, t.entry_key, t.reading, t.first_seen, t.guid)):
                    out[r.source].setdefault(r.entry_key, []).append(r.guid)
        return out

    def save_entry_guids_of(self, readings: Mapping[str, Mapping[str, str]]) -> None:
        """Record a reading of each of several sources (source → entry key → the guid the feed names it
        by now), in a few statements however many sources."""
        # As save_entries_of keeps them: keys and guids without U+0000.
        readings = {source: {portable.without_nul(key): portable.without_nul(guid) for key, guid in guids.items()}
                    for source, guids in readings.items() if guids}
        if not readings:
            return
        t = entry_guids.c
        now = self._now()
        with self.transaction() as conn:
            stored: dict[str, list[Any]] = {source: [] for source in readings}
            for chunk in _chunks(list(readings)):
                for r in conn.execute(select(t.source, t.entry_key, t.guid, t.reading).where(t.source.in_(chunk))):
                    stored[r.source].append(r)
            fresh: list[dict[str, Any]] = []
            returned: list[dict[str, Any]] = []
            for source, guids in readings.items():
                new, back = _guid_changes(source, guids, stored[source], now)
                fresh += new
                returned += back
            if fresh:
                conn.execute(entry_guids.insert(), fresh)
            if returned:  # a guid the feed went back to sorts last again
                conn.execute(entry_guids.update().where(
                    t.source == bindparam("b_source"), t.entry_key == bindparam("b_key"), t.guid == bindparam("b_guid"),
                ).values(reading=bindparam("b_reading")), returned)

    # --- series -------------------------------------------------------------------------------

    def series_numbers(self, source: str, series: str) -> dict[str, int]:
        """guid → part number for one series."""
        if not self._has(series_parts):
            return {}
        with self.transaction() as conn:
            rows = conn.execute(select(series_parts.c.guid, series_parts.c.number).where(
                series_parts.c.source == source, series_parts.c.series == series))
            return {r.guid: r.number for r in rows}

    def number_series(self, source: str, series: str, parts: list[str]) -> dict[str, int]:
        """guid → number of every part of one series: the stored numbers stand, and those of ``parts``
        (guids in publication order) not numbered yet get the next numbers, in that order.

        Reading the numbers and adding the new ones is one transaction under the series' own lock
        (``_serialize``), so two runs that first see parts of one series at once cannot give one part
        two numbers, or one number to two parts: the second waits, then finds them numbered. The
        unique index on (source, series, number) would refuse it if they ever did."""
        t = series_parts.c
        with self.transaction() as conn:
            self._serialize(conn, f"series:{source}:{series}")
            numbers = {r.guid: r.number for r in conn.execute(
                select(t.guid, t.number).where(t.source == source, t.series == series))}
            new = [guid for guid in dict.fromkeys(parts) if guid not in numbers]
            if new:
                start = max(numbers.values(), default=0) + 1
                numbered = {guid: n for n, guid in enumerate(new, start=start)}
                conn.execute(series_parts.insert(), [
                    {"source": source, "series": series, "guid": g, "number": n} for g, n in numbered.items()])
                numbers.update(numbered)
        return numbers

    def _serialize(self, conn: Connection, name: str) -> None:
        """Inside a transaction: hold ``name``'s lock until it ends, so a read-then-write under the
        same name by another run waits for this one. Nothing for a kind with one writer at a time."""

    # --- deliveries ---------------------------------------------------------------------------

    def deliveries(self, partners: list[str] | None = None) -> list[Delivery]:
        """Every ledger row (optionally for some partners)."""
        if not self._has(deliveries):
            return []
        query = self._select(deliveries)
        if partners is not None:
            query = query.where(deliveries.c.partner.in_(partners))
        query = query.order_by(deliveries.c.partner, deliveries.c.created_at, deliveries.c.guid)
        with self.transaction() as conn:
            return [Delivery(**r) for r in conn.execute(query).mappings()]

    def unsettled(self, partner: str) -> int:
        """How many of a partner's deliveries are not settled (anything but ok or withdrawn, or a write in flight)."""
        from sqlalchemy import func, or_

        if not self._has(deliveries):
            return 0
        with self.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(deliveries).where(
                deliveries.c.partner == partner,
                or_(deliveries.c.state.not_in([OK, WITHDRAWN]), deliveries.c.intent.is_not(None)))).scalar_one())

    def ledger_version(self, partner: str) -> str:
        """Changes whenever a partner's ledger changes (rows, states, the last write)."""
        from sqlalchemy import case, func

        if not self._has(deliveries):
            return ""
        with self.transaction() as conn:
            row = conn.execute(select(func.count(), func.sum(case((deliveries.c.state == WITHDRAWN, 1), else_=0)),
                                      func.max(deliveries.c.updated_at)).where(deliveries.c.partner == partner)).one()
        return f"{row[0]}:{row[1] or 0}:{row[2] or ''}"

    def delivery(self, partner: str, source: str, guid: str) -> Delivery | None:
        """One ledger row, or None."""
        if not self._has(deliveries):
            return None
        with self.transaction() as conn:
            row = conn.execute(self._select(deliveries).where(
                deliveries.c.partner == partner, deliveries.c.source == source, deliveries.c.guid == guid,
            )).mappings().first()
        return Delivery(**row) if row else None

    def put(self, delivery: Delivery, *, durable: bool = True) -> None:
        """Insert or replace a ledger row (committed at once unless inside ``transaction``).

        ``durable=False``: the row may wait for this store's next transaction, of any kind (``close``
        makes one), and is written first in it; reads always see it. For an outcome whose loss in a
        crash costs only a reconciliation: the write's intent is on disk, so the next run looks for
        the copy before it sends anything. It saves a commit (an fsync) per delivery."""
        delivery.updated_at = self._now()
        if delivery.created_at is None:
            delivery.created_at = delivery.updated_at
        row = {name: getattr(delivery, name) for name in _DELIVERY_FIELDS}
        if not durable and getattr(self._local, "conn", None) is None:
            with self._pending_lock:
                self._pending.append(row)
            return
        with self.transaction() as conn:
            conn.execute(self._upsert(deliveries), [row])

    # --- small facts about past runs ------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A value remembered between runs."""
        if not self._has(meta):
            return None
        with self.transaction() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return row[0] if row else None

    def put_meta(self, key: str, value: str) -> None:
        """Remember a value between runs."""
        with self.transaction() as conn:
            conn.execute(self._upsert(meta), [{"key": key, "value": value}])

    # --- media --------------------------------------------------------------------------------

    def media(self, partner: str, source_url: str) -> tuple[str, str] | None:
        """(remote id, remote URL) of an image already uploaded to this partner."""
        if not self._has(media):
            return None
        with self.transaction() as conn:
            row = conn.execute(select(media.c.remote_id, media.c.remote_url).where(
                media.c.partner == partner, media.c.source_url == source_url)).first()
        return (row[0], row[1]) if row else None

    def media_by_hash(self, partner: str, sha256: str) -> tuple[str, str] | None:
        """(remote id, remote URL) of an image with these bytes already uploaded to this partner."""
        if not self._has(media) or (self._present is not None and "sha256" not in self._present["media"]):
            return None  # read-only over a store from before body images: no hashes recorded
        with self.transaction() as conn:
            row = conn.execute(select(media.c.remote_id, media.c.remote_url).where(
                media.c.partner == partner, media.c.sha256 == sha256).order_by(media.c.created_at).limit(1)).first()
        return (row[0], row[1]) if row else None

    def put_media(self, partner: str, source_url: str, remote_id: str, remote_url: str,
                  sha256: str | None = None) -> None:
        """Remember an uploaded image so later updates reuse it (one upsert)."""
        with self.transaction() as conn:
            conn.execute(self._upsert(media), [{"partner": partner, "source_url": source_url, "remote_id": remote_id,
                                               "remote_url": remote_url, "created_at": self._now(),
                                               "sha256": sha256}])

    def forget_media(self, partner: str, source_url: str) -> None:
        """Forget an uploaded image (it is gone from the partner)."""
        with self.transaction() as conn:
            conn.execute(media.delete().where(media.c.partner == partner, media.c.source_url == source_url))


#: The most entry rows one upsert sends: a bound on the JSON held at once, not on the statements' count.
_ROWS_AT_ONCE = 200

#: The most sources one ``IN (…)`` names: each is a bound parameter, and SQLite before 3.32 takes 999 at most.
_IN_CHUNK = 500


def _chunks(items: list[str]) -> Iterator[list[str]]:
    """``items`` in slices of at most ``_IN_CHUNK``."""
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start:start + _IN_CHUNK]


def _guid_changes(source: str, guids: Mapping[str, str], stored: list[Any],
                  now: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One reading of a source against its stored guid rows: the rows to insert (a guid not known for its
    entry), and the rows whose reading to renumber (a known guid the entry had before its latest)."""
    reading = max((r.reading for r in stored), default=0) + 1
    known = {(r.entry_key, r.guid) for r in stored}
    latest: dict[str, tuple[int, str]] = {}  # entry key → (reading, guid) of the guid it had last
    for r in stored:
        latest[r.entry_key] = max(latest.get(r.entry_key, (-1, "")), (r.reading, r.guid))
    fresh = [{"source": source, "entry_key": key, "guid": guid, "first_seen": now, "reading": reading}
             for key, guid in guids.items() if (key, guid) not in known]
    back = [{"b_source": source, "b_key": key, "b_guid": guid, "b_reading": reading}
            for key, guid in guids.items() if (key, guid) in known and latest[key][1] != guid]
    return fresh, back


def _storable(entry: Entry) -> Entry:
    """The entry as every store can keep it: no U+0000 in its text (PostgreSQL's text cannot hold it,
    and a guid must read back as it was written on either kind)."""
    changes: dict[str, Any] = {name: portable.without_nul(value) for name in ("guid", "url", "title", "author")
               if isinstance(value := getattr(entry, name), str) and not portable.pg_text(value)}
    return replace(entry, **changes) if changes else entry


def _check_version(value: str | None) -> int:
    """The schema version a store file says it has; ConfigError when a newer syndicate wrote it."""
    try:
        version = int(value or 0)
    except ValueError:
        raise ConfigError(f"state.url: the store's schema version {value!r} is not one syndicate wrote") from None
    if version > SCHEMA_VERSION:
        raise ConfigError(f"state.url: the store was written by a newer syndicate (schema {version} > {SCHEMA_VERSION})")
    return version


def _db_message(exc: sqlalchemy.exc.DBAPIError) -> str:
    """The database's own one-line reason (SQLAlchemy's text adds the statement and a link)."""
    return str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
