"""The SQLite state store: the shared SQL store (sql_store.py) in one SQLite file.

WAL, a busy timeout and ``synchronous=FULL``, so a delivery's intent survives a power cut before its
remote write is sent. What is SQLite's own here: the pragmas, the lock and the read-only opening.

The lock that keeps two writing runs apart is an ``flock`` on the database file itself: whatever the
URL spelling (a query string, an absolute path, a symlink, a hard link), the same database is the
same file, so the same lock; the kernel releases it when its holder dies, ``kill -9`` included.
(SQLite's own locks are POSIX record locks, which Linux keeps apart from ``flock``.)
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from .errors import ConfigError
from .locking import StoreLock, sqlite_file
from .sql_store import SQLStore, system_clock

T = TypeVar("T")


class SQLiteStore(SQLStore):
    """The ledger and feed state in one SQLite file (see ``store.Store`` for what each method promises).

    The schema is created or migrated by the first write (after ``lock``, in a run). ``readonly``:
    the file is opened so that nothing can be written to it, and a schema older than ours is read as
    it is (its missing columns read as their defaults), never migrated."""

    def __init__(self, url: str, *, readonly: bool = False,
                 clock: Callable[[], dt.datetime] = system_clock) -> None:
        super().__init__(url, readonly=readonly, clock=clock)
        self.path = sqlite_file(url)
        try:
            if readonly and self.path is not None:
                uri = f"file:{self.path}?mode=ro"
                self.engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(
                    uri, uri=True, timeout=10, check_same_thread=False))
            else:
                if self.path is not None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self.engine = create_engine(url)
        except (OSError, sqlalchemy.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"state.url: cannot open the state store: {exc}") from None
        if self.engine.dialect.name != "sqlite":
            raise ConfigError(f"state.url: {self.engine.dialect.name} is not supported (use SQLite or PostgreSQL)")
        event.listen(self.engine, "connect", _sqlite_pragmas_readonly if readonly else _sqlite_pragmas)
        self._lock: StoreLock | None = None

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "the state store"

    def close(self) -> None:
        """Write what waits to be written; release the connections, then the lock."""
        try:
            super().close()
        finally:
            self.unlock()  # after the connections are closed: see StoreLock

    def _schema_transaction(self, migrate: Callable[[Connection], None]) -> None:
        schema_transaction(self.engine, migrate)

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


def schema_transaction(engine: Engine, migrate: Callable[[Connection], T]) -> T:
    """Run ``migrate`` in one transaction that holds the file's write lock from its start.

    SQLite's DDL is transactional, but Python's sqlite3 driver (before 3.12's ``autocommit``) begins
    no transaction before a ``CREATE`` or ``ALTER``, so each would commit on its own, and a run dying
    midway would leave a column added at the old version. The transaction is begun by hand,
    ``BEGIN IMMEDIATE``, which also takes the file's write lock at once: SQLite's schema lock."""
    with engine.connect() as outer:
        conn = outer.execution_options(isolation_level="AUTOCOMMIT")  # the driver begins nothing
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            result = migrate(conn)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")
        return result


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
