"""syndicate.portable: the store's tables and upserts mean the same on SQLite and on PostgreSQL.

Every test runs on a real SQLite file and on a real PostgreSQL database (skipped where PostgreSQL
cannot be had, failed where tests/run.sh says it must be).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, create_engine, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError

from syndicate import portable
from syndicate import schema as store

from .conftest import PostgresDatabase

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)  # NUL: see its own test
KEY = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
SLOW = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The store's schema on a real SQLite file, or on a real PostgreSQL database."""
    if request.param == "sqlite":
        made = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        database: PostgresDatabase = request.getfixturevalue("postgres")
        made = database.engine()
    store.metadata.create_all(made)
    yield made
    made.dispose()


def value_for(column: Column[Any]) -> st.SearchStrategy[Any]:
    """Any value a column of the store may be given (within the types both engines share)."""
    if isinstance(column.type, Boolean):
        values: st.SearchStrategy[Any] = st.booleans()
    elif isinstance(column.type, Integer):
        values = st.integers(-(2**31), 2**31 - 1)  # PostgreSQL's INTEGER; SQLite's holds 64 bits
    else:
        assert isinstance(column.type, (String, Text)), column
        values = KEY if column.primary_key else TEXT
    return values if column.primary_key or not column.nullable else st.none() | values


def rows_for(table: Table) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({c.name: value_for(c) for c in table.columns})


TABLES = [store.meta, store.feeds, store.entries, store.series_parts, store.deliveries, store.media]


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
@SLOW
@given(data=st.data())
def test_an_upsert_inserts_then_replaces_every_column(engine: Engine, table: Table, data: st.DataObject) -> None:
    first = data.draw(rows_for(table))
    keys = {c.name: first[c.name] for c in table.primary_key.columns}
    second = {**data.draw(rows_for(table)), **keys}
    statement = portable.upsert(table, engine.dialect.name)
    with engine.begin() as conn:
        conn.execute(delete(table))
        conn.execute(statement, [first])
        assert dict(conn.execute(select(table)).mappings().one()) == first
        conn.execute(statement, [second])
        assert dict(conn.execute(select(table)).mappings().one()) == second


def test_an_upsert_of_many_rows_is_one_statement_with_the_last_row_winning(engine: Engine) -> None:
    statement = portable.upsert(store.meta, engine.dialect.name)
    with engine.begin() as conn:
        conn.execute(statement, [{"key": f"k{i}", "value": "old"} for i in range(50)])
        conn.execute(statement, [{"key": f"k{i}", "value": "new"} for i in range(0, 50, 2)])
        values = dict(conn.execute(select(store.meta.c.key, store.meta.c.value)).all())
    assert values == {f"k{i}": ("new" if i % 2 == 0 else "old") for i in range(50)}


def test_insert_missing_lets_the_first_writer_win(engine: Engine) -> None:
    statement = portable.insert_missing(store.series_parts, engine.dialect.name)
    part = {"source": "blog", "series": "s", "guid": "g1"}
    with engine.begin() as conn:
        conn.execute(statement, [{**part, "number": 1}])
        conn.execute(statement, [{**part, "number": 7}, {**part, "guid": "g2", "number": 2}])
        numbers = dict(conn.execute(select(store.series_parts.c.guid, store.series_parts.c.number)).all())
    assert numbers == {"g1": 1, "g2": 2}


def test_a_table_whose_columns_are_all_key_upserts_as_insert_or_ignore(engine: Engine) -> None:
    tags = Table("tags", MetaData(), Column("a", String, primary_key=True), Column("b", String, primary_key=True))
    tags.create(engine)
    with engine.begin() as conn:
        conn.execute(portable.upsert(tags, engine.dialect.name), [{"a": "x", "b": "y"}, {"a": "x", "b": "y"}])
        assert conn.execute(select(tags)).all() == [("x", "y")]


@SLOW
@given(values=st.lists(KEY, min_size=2, max_size=12, unique=True))
def test_sortable_text_sorts_by_code_point_on_both(engine: Engine, values: list[str]) -> None:
    names = Table("names", MetaData(), Column("name", portable.sortable_text(), primary_key=True))
    names.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(delete(names))
        conn.execute(names.insert(), [{"name": v} for v in values])
        assert conn.execute(select(names.c.name).order_by(names.c.name)).scalars().all() == sorted(values)


def test_plain_text_sorts_by_the_database_collation_on_postgresql(postgres: PostgresDatabase) -> None:
    # Why sortable_text exists: the store's String keys sort linguistically in a database created in
    # an English locale (the test cluster's), not as SQLite and Python sort them.
    engine = postgres.engine()
    names = Table("names", MetaData(), Column("name", String, primary_key=True))
    names.create(engine)
    with engine.begin() as conn:
        conn.execute(names.insert(), [{"name": v} for v in ("Zeta", "alpha")])
        assert conn.execute(select(names.c.name).order_by(names.c.name)).scalars().all() == ["alpha", "Zeta"]
    assert sorted(["Zeta", "alpha"]) == ["Zeta", "alpha"]


def test_postgresql_cannot_store_nul_in_text(engine: Engine) -> None:
    # SQLite keeps U+0000 in text; PostgreSQL refuses the statement. Text from feeds passes
    # without_nul before it is stored; JSON columns are safe as json.dumps escapes it.
    row = {"key": "k", "value": "a\x00b"}
    assert not portable.pg_text(row["value"]) and portable.pg_text(portable.without_nul(row["value"]))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DataError, match="NUL"), engine.begin() as conn:
            conn.execute(store.meta.insert(), [row])
    with engine.begin() as conn:
        conn.execute(store.meta.insert(), [{**row, "value": portable.without_nul(row["value"])}])
        assert conn.execute(select(store.meta.c.value)).scalar_one() == "ab"


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql is not supported"):
        portable.upsert(store.meta, "mysql")
