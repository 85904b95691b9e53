"""The state store's ledger writes, checked on a real SQLite file through a second connection.

A delivery's outcome may be put with ``durable=False``: it then rides along with the store's next
transaction (the next delivery's intent, usually), so a push costs one commit, not two. What must
hold: reads in the same run see it at once, the next transaction of any kind writes it first,
``close`` writes what is left, and a transaction that fails keeps it for the next one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from syndicate.records import INTENT, OK, Delivery
from syndicate.sqlite_store import SQLiteStore as Store


def on_disk(path: Path) -> dict[str, str]:
    """guid → state, as another process would read the file now."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT guid, state FROM deliveries").fetchall())


def test_an_outcome_put_lazily_is_written_with_the_next_intent(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(f"sqlite:///{path}")
    try:
        store.put(Delivery(partner="mag", source="blog", guid="one", state=INTENT, intent="create"))
        assert on_disk(path) == {"one": INTENT}
        store.put(Delivery(partner="mag", source="blog", guid="one", state=OK), durable=False)
        assert on_disk(path) == {"one": INTENT}  # not committed on its own
        store.put(Delivery(partner="mag", source="blog", guid="two", state=INTENT, intent="create"))
        assert on_disk(path) == {"one": OK, "two": INTENT}  # one commit wrote both
        store.put(Delivery(partner="mag", source="blog", guid="two", state=OK), durable=False)
        found = store.delivery("mag", "blog", "two")  # a read in the same run sees it
        assert found is not None and found.state == OK
        store.put(Delivery(partner="mag", source="blog", guid="three", state=OK), durable=False)
    finally:
        store.close()
    assert on_disk(path) == {"one": OK, "two": OK, "three": OK}  # close wrote what was left


def test_a_lazy_outcome_survives_a_transaction_that_failed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(f"sqlite:///{path}")
    try:
        store.put(Delivery(partner="mag", source="blog", guid="one", state=OK), durable=False)
        with pytest.raises(RuntimeError), store.transaction():
            raise RuntimeError("the work in this transaction failed: it is rolled back")
        assert on_disk(path) == {}
        store.put_meta("k", "v")
        assert on_disk(path) == {"one": OK}
    finally:
        store.close()


def test_inside_a_transaction_a_lazy_put_is_part_of_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(f"sqlite:///{path}")
    try:
        with store.transaction():
            store.put(Delivery(partner="mag", source="blog", guid="one", state=OK), durable=False)
        assert on_disk(path) == {"one": OK}
    finally:
        store.close()
