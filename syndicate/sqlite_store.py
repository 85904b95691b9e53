"""The SQLite state store (``Store`` in store.py says what it promises), with SQLAlchemy Core.

WAL, a busy timeout and ``synchronous=FULL``, so a delivery's intent survives a power cut before its
remote write is sent. Nothing here is SQLite-specific but the pragmas, the lock and the read-only
opening.

The lock that keeps two writing runs apart is an ``flock`` on the database file itself: whatever the
URL spelling (a query string, an absolute path, a symlink, a hard link), the same database is the
same file, so the same lock; the kernel releases it when its holder dies, ``kill -9`` included.
(SQLite's own locks are POSIX record locks, which Linux keeps apart from ``flock``.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from typing import Any

import sqlalchemy.exc
from sqlalchemy import (
    Table,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from .errors import ConfigError, StoreError
from .locking import StoreLock, sqlite_file
from .models import Entry, from_iso, iso
from .records import OK, WITHDRAWN, Delivery, FeedState
from .schema import MIGRATIONS, SCHEMA_VERSION, deliveries, entries, feeds, media, meta, metadata, series_parts

_FEED_FIELDS = tuple(f.name for f in fields(FeedState))
_DELIVERY_FIELDS = tuple(f.name for f in fields(Delivery))


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class SQLiteStore:
    """The ledger and feed state in one SQLite file (see ``store.Store`` for what each method promises).

    The schema is created or migrated by the first write (after ``lock``, in a run). ``readonly``:
    the file is opened so that nothing can be written to it, and a schema older than ours is read as
    it is (its missing columns read as their defaults), never migrated."""

    def __init__(self, url: str, *, readonly: bool = False,
                 clock: Callable[[], dt.datetime] = _system_clock) -> None:
        self.url = url
        self.path = sqlite_file(url)
        self.readonly = readonly
        self._clock = clock
        try:
            if readonly and self.path is not None:
                uri = f"file:{self.path}?mode=ro"
                self.engine: Engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(
                    uri, uri=True, timeout=10, check_same_thread=False))
            else:
                if self.path is not None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self.engine = create_engine(url)
        except (OSError, sqlalchemy.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"state.url: cannot open the state store: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas_readonly if readonly else _sqlite_pragmas)
        self._upserts: dict[str, Any] = {}
        self._local = threading.local()  # one transaction per thread (fetch threads read feed state)
        self._pending: list[dict[str, Any]] = []  # ledger rows put with durable=False, not yet written
        self._pending_lock = threading.Lock()
        self._lock: StoreLock | None = None
        self._schema_ready = False
        self._present: dict[str, set[str]] | None = None  # readonly: the tables and columns the file has

    # --- plumbing -----------------------------------------------------------------------------

    def _now(self) -> str:
        return iso(self._clock()) or ""

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "the state store"

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
            raise ConfigError(f"state.url: {self._where()} is not a readable syndicate state store "
                              f"({_db_message(exc)})") from None

    def _read_schema(self) -> dict[str, set[str]]:
        with self.engine.connect() as conn:
            names = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))]
            present = {name: {r[1] for r in conn.execute(text(f'PRAGMA table_info("{name}")'))} for name in names}
            if "meta" in present:
                row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
                _check_version(row[0] if row else None)
        return present

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
            if row is None:
                conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif _check_version(row[0]) < SCHEMA_VERSION:
                for version in range(int(row[0]) + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS.get(version, ()):
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
                raise StoreError(f"state store {self._where()}: {_db_message(exc)}") from None
            raise

    def close(self) -> None:
        """Write what waits to be written; release the lock and the connections."""
        try:
            if self._pending:
                with self.transaction():
                    pass
        finally:
            self.engine.dispose()
            self.unlock()  # after the connections are closed: see StoreLock

    # --- the sync lock ------------------------------------------------------------------------

    def lock(self, wait: bool = False) -> None:
        """Take the store's exclusive lock (LockedError, exit 75, when another run holds it), then make
        the schema ready under it."""
        if self.path is None:
            raise ConfigError("state.url: this store has no lock (use a SQLite file)")
        self._lock = StoreLock.acquire(self.path, wait=wait)
        self._ready()

    def unlock(self) -> None:
        """Release the lock if held."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

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

    def save_entries(self, source: str, items: list[Entry]) -> dict[str, str]:
        """Store the entries of a successful read of ``source``'s feed; they become its current entries.

        Returns the previous content hash of each entry that was known (guid → hash)."""
        now = self._now()
        previous: dict[str, str] = {}
        with self.transaction() as conn:
            known = {r.guid: r for r in conn.execute(
                select(entries.c.guid, entries.c.content_hash, entries.c.first_seen).where(entries.c.source == source))}
            conn.execute(entries.update().where(entries.c.source == source).values(current=False))
            seen: set[str] = set()
            rows = []
            for position, entry in enumerate(items):
                if entry.guid in seen:  # a feed that repeats a guid: the first one stands
                    continue
                seen.add(entry.guid)
                old = known.get(entry.guid)
                if old is not None:
                    previous[entry.guid] = old.content_hash
                rows.append({"source": source, "guid": entry.guid, "url": entry.url,
                             "content_hash": entry.content_hash,
                             "data": json.dumps(entry.to_json(), ensure_ascii=False),
                             "first_seen": old.first_seen if old is not None else now,
                             "last_seen": now, "current": True, "position": position})
            if rows:
                conn.execute(self._upsert(entries), rows)
        return previous

    def current_entries(self, sources: list[str] | None = None) -> list[tuple[Entry, dt.datetime]]:
        """The entries last read from each feed (a 304 or a failed fetch leaves them standing), with first-seen."""
        if not self._has(entries):
            return []
        query = select(entries.c.data, entries.c.first_seen).where(entries.c.current.is_(True))
        if sources is not None:
            query = query.where(entries.c.source.in_(sources))
        query = query.order_by(entries.c.source, entries.c.position)
        with self.transaction() as conn:
            rows = conn.execute(query).all()
        return [(Entry.from_json(json.loads(r.data)), from_iso(r.first_seen)) for r in rows]  # type: ignore[misc]

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

    # --- series -------------------------------------------------------------------------------

    def series_numbers(self, source: str, series: str) -> dict[str, int]:
        """guid → part number for one series."""
        if not self._has(series_parts):
            return {}
        with self.transaction() as conn:
            rows = conn.execute(select(series_parts.c.guid, series_parts.c.number).where(
                series_parts.c.source == source, series_parts.c.series == series))
            return {r.guid: r.number for r in rows}

    def add_series_parts(self, source: str, series: str, numbered: dict[str, int]) -> None:
        """Record the numbers of newly seen parts (a part keeps the number it got when first seen)."""
        if not numbered:
            return
        with self.transaction() as conn:
            conn.execute(series_parts.insert(), [
                {"source": source, "series": series, "guid": g, "number": n} for g, n in numbered.items()])

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

    def _upsert(self, table: Table) -> Any:
        """One statement that inserts a row or replaces the row with the same key (built once per table).

        SQLite and PostgreSQL both say ``INSERT … ON CONFLICT DO UPDATE``; anything else would need a
        read-then-write, which this store does not support yet."""
        if table.name not in self._upserts:
            dialect = self.engine.dialect.name
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            elif dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
            else:
                raise ConfigError(f"state.url: {dialect} is not supported (use SQLite or PostgreSQL)")
            stmt = insert(table)
            keys = [c.name for c in table.primary_key.columns]
            self._upserts[table.name] = stmt.on_conflict_do_update(
                index_elements=keys, set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})
        return self._upserts[table.name]

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

    def put_media(self, partner: str, source_url: str, remote_id: str, remote_url: str) -> None:
        """Remember an uploaded image so later updates reuse it."""
        with self.transaction() as conn:
            conn.execute(media.delete().where(media.c.partner == partner, media.c.source_url == source_url))
            conn.execute(media.insert().values(partner=partner, source_url=source_url, remote_id=remote_id,
                                               remote_url=remote_url, created_at=self._now()))

    def forget_media(self, partner: str, source_url: str) -> None:
        """Forget an uploaded image (it is gone from the partner)."""
        with self.transaction() as conn:
            conn.execute(media.delete().where(media.c.partner == partner, media.c.source_url == source_url))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")
    for _ in range(50):  # WAL needs a moment of exclusivity the first time
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            break
        except Exception:
            time.sleep(0.1)
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_pragmas_readonly(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


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
