"""The state store's schema: its tables (the ledger's and the feeds' built from records.py, the one
declaration of their fields), its version, and what each version adds to the one before.

Key columns are ``portable.sortable_text`` (code-point order on both engines: ``status`` lists rows in
one order whatever the store). SQLAlchemy Core, and nothing here is one engine's: the SQLite store uses it, and a PostgreSQL store
can (``portable`` says where the engines differ).
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text, inspect
from sqlalchemy.engine import Connection

from .portable import sortable_text
from .records import KEYS, Delivery, FeedState, MediaCopy

SCHEMA_VERSION = 5

# What each schema version adds to the one before it, applied in order to an older store (new tables
# are created before these run).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE feeds ADD COLUMN body_hash TEXT", "ALTER TABLE feeds ADD COLUMN parse_key TEXT"),
    # Entry identity: every entry known so far is its own key, known by the guid it has.
    # (WHERE true: SQLite's grammar needs it before ON CONFLICT in an INSERT … SELECT; PostgreSQL accepts it.)
    3: ("INSERT INTO entry_guids (source, entry_key, guid, first_seen, reading) "
        "SELECT source, guid, guid, first_seen, 0 FROM entries WHERE true ON CONFLICT DO NOTHING",),
    # Series numbers are unique within a series (runs sharing a server number parts at once).
    4: ("CREATE UNIQUE INDEX IF NOT EXISTS series_parts_number ON series_parts (source, series, number)",),
    # Body images: an upload is found again by its bytes too (the same image under another URL); the
    # column itself is in ADDED_COLUMNS.
    5: ("CREATE INDEX IF NOT EXISTS media_by_sha256 ON media (partner, sha256)",),
}

#: The columns each schema version adds to a table that may exist already. They are added (before that
#: version's MIGRATIONS run) only where the table lacks them: a table that ``create_all`` has just made
#: for an older store has them already.
ADDED_COLUMNS: dict[int, tuple[tuple[str, str], ...]] = {
    5: (("media", "sha256"),),
}

metadata = MetaData()

meta = Table("meta", metadata, Column("key", sortable_text(), primary_key=True), Column("value", Text))



def columns_of(record: type) -> list[Column[Any]]:
    """The columns of a record's table, from its dataclass: the one declaration of its fields."""
    keys = KEYS[record]
    columns: list[Column[Any]] = []
    for f in fields(record):
        kind = Integer if f.type.startswith("int") else Boolean if f.type.startswith("bool") else Text
        if f.name in keys:
            columns.append(Column(f.name, sortable_text(), primary_key=True))
        elif f.default is None or f.default is MISSING:
            columns.append(Column(f.name, kind))
        else:
            columns.append(Column(f.name, kind, nullable=False, default=f.default))
    return columns


feeds = Table("feeds", metadata, *columns_of(FeedState))

entries = Table(
    "entries", metadata,
    Column("source", sortable_text(), primary_key=True),
    Column("guid", sortable_text(), primary_key=True),
    Column("url", Text),
    Column("content_hash", String),
    Column("data", Text, nullable=False),
    Column("first_seen", Text, nullable=False),
    Column("last_seen", Text, nullable=False),
    Column("current", Boolean, nullable=False, default=True),
    Column("position", Integer, nullable=False, default=0),
)

series_parts = Table(
    "series_parts", metadata,
    Column("source", sortable_text(), primary_key=True),
    Column("series", sortable_text(), primary_key=True),
    Column("guid", sortable_text(), primary_key=True),
    Column("number", Integer, nullable=False),
    # One number, one part (store.number_series gives them; this refuses a second giver).
    Index("series_parts_number", "source", "series", "number", unique=True),
)

# The guids each entry has been known by. ``entry_key`` is the entry's stable key (``entries.guid``,
# and the ledger's ``guid``): the guid it was first known by. ``reading`` numbers the source's readings
# that named it so (the highest is the guid it has now).
entry_guids = Table(
    "entry_guids", metadata,
    Column("source", sortable_text(), primary_key=True),
    Column("entry_key", sortable_text(), primary_key=True),
    Column("guid", sortable_text(), primary_key=True),
    Column("first_seen", Text, nullable=False),
    Column("reading", Integer, nullable=False, default=0),
)

deliveries = Table("deliveries", metadata, *columns_of(Delivery))

media = Table("media", metadata, *columns_of(MediaCopy))
Index("media_by_sha256", media.c.partner, media.c.sha256)


def column_additions(conn: Connection, version: int) -> list[str]:
    """The ``ALTER TABLE … ADD COLUMN`` statements that bring the tables to ``version``'s columns, for
    the columns the database does not have yet (in the column types of its own dialect)."""
    statements = []
    inspector = inspect(conn)
    for table_name, column_name in ADDED_COLUMNS.get(version, ()):
        present = {c["name"] for c in inspector.get_columns(table_name)}
        if column_name not in present:
            column = metadata.tables[table_name].c[column_name]
            kind = column.type.compile(dialect=conn.dialect)
            statements.append(f"ALTER TABLE {table_name} ADD COLUMN {column_name} {kind}")
    return statements
