"""SQL that means the same on SQLite and on PostgreSQL: upserts, insert-if-missing, sortable text.

The store's tables and queries are SQLAlchemy Core; these are the few places where the two engines
differ in a way the store would notice:

* an upsert is ``INSERT … ON CONFLICT (key) DO UPDATE`` on both, but SQLAlchemy builds it from each
  dialect's own ``insert`` (``upsert``), and "insert unless it is there" likewise (``insert_missing``);
* text sorts by code point on SQLite (BINARY) and by the database's collation on PostgreSQL — in a
  database created in an English locale "alpha" sorts before "Zeta", by code point after it:
  ``sortable_text`` orders by code point on both, so ``status`` lists rows in one order whatever the
  store;
* PostgreSQL's ``text`` cannot hold U+0000 (SQLite's can): ``pg_text`` says whether a value fits, and
  ``without_nul`` is the store's choice for text from feeds (JSON columns are safe: ``json.dumps``
  writes ``\\u0000``).

What store.py (schema 2) needs on PostgreSQL, found by running it against one (the rest — its
Core tables, Text timestamps in ISO form, Boolean, ``func.count``/``sum``/``max`` — is portable):

1. its engine from ``postgres.create_engine`` (psycopg driver, password in connect args, keepalives),
   not ``sqlalchemy.create_engine(url)``;
2. ``_migrate`` in one transaction under the schema's lock (``postgres.migrate_once``,
   ``sqlite_store.schema_transaction``): on PostgreSQL concurrent ``create_all`` fails on
   the catalog; on SQLite each ``ALTER`` of a migration commits on its own (the driver begins no
   transaction before DDL), so one that dies midway leaves a column added at the old version, and
   the next run's ``ALTER`` fails (duplicate column);
3. ``_upsert`` is already ``ON CONFLICT DO UPDATE`` per dialect: ``upsert`` here is the same, shared;
4. series numbering read the numbers, then inserted new ones (two runs numbering at once could give
   one number to two parts, or fail): ``number_series`` does both in one transaction under the
   series' advisory lock, and a unique index on (source, series, number) guards it;
5. ``put_media`` deletes then inserts: one ``upsert``;
6. the ``ORDER BY`` of ``deliveries`` (partner, created_at, guid) sorts guids linguistically on
   PostgreSQL: key columns as ``sortable_text()`` (a schema-3 migration for SQLite is not needed:
   the variant changes nothing there);
7. text from feeds through ``without_nul`` (titles, URLs, guids);
8. ``lock`` has no file for a server: the run's ``postgres.Claims`` instead, one per feed and partner;
9. a transaction must not stay open across a remote call: ``idle_in_transaction_session_timeout``
   (one lease) ends it on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Table
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine


def _dialect_insert(table: Table, dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    raise ValueError(f"{dialect} is not supported (use SQLite or PostgreSQL)")


def upsert(table: Table, dialect: str) -> Insert:
    """``INSERT`` that replaces the non-key columns of the row with the same primary key, if any.

    Executed with a list of rows it is one statement (executemany); each row must give every column
    (a column left out would be set from ``excluded``, i.e. to its default)."""
    stmt = _dialect_insert(table, dialect)
    keys = [c.name for c in table.primary_key.columns]
    changes = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    if not changes:  # every column is in the key: nothing to replace
        return stmt.on_conflict_do_nothing(index_elements=keys)  # type: ignore[no-any-return]
    return stmt.on_conflict_do_update(index_elements=keys, set_=changes)  # type: ignore[no-any-return]


def insert_missing(table: Table, dialect: str) -> Insert:
    """``INSERT`` that leaves a row with the same primary key as it is (first writer wins).

    What a series number wants: two runs numbering the same part cannot both insert, and the one
    that loses reads the number the winner gave."""
    stmt = _dialect_insert(table, dialect)
    return stmt.on_conflict_do_nothing(index_elements=[c.name for c in table.primary_key.columns])  # type: ignore[no-any-return]


def sortable_text() -> TypeEngine[str]:
    """A text column type that sorts by code point on both engines (``COLLATE "C"`` on PostgreSQL).

    SQLite has no "C" collation (its default BINARY already sorts by code point), hence a variant."""
    return String().with_variant(String(collation="C"), "postgresql")


def pg_text(value: str) -> bool:
    """Whether PostgreSQL can store this text (it cannot store U+0000)."""
    return "\x00" not in value


def without_nul(value: str) -> str:
    """The text with U+0000 removed: what a feed's NUL means nothing, and PostgreSQL refuses it."""
    return value.replace("\x00", "")
