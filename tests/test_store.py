"""The state store's ledger writes, checked on a real SQLite file through a second connection.

A delivery's outcome may be put with ``durable=False``: it then rides along with the store's next
transaction (the next delivery's intent, usually), so a push costs one commit, not two. What must
hold: reads in the same run see it at once, the next transaction of any kind writes it first,
``close`` writes what is left, and a transaction that fails keeps it for the next one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

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


# ------------------------------------------------------------------------------------------------
# what every Store kind promises (store.Store): run here on SQLite; a new kind adds its factory


def _sqlite(tmp_path: Path) -> Any:
    return Store(f"sqlite:///{tmp_path / 'state.db'}")


STORE_KINDS = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(STORE_KINDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return lambda: STORE_KINDS[request.param](tmp_path)


def test_a_store_keeps_every_kind_of_record(store_factory: Any) -> None:
    from syndicate.models import Entry
    from syndicate.records import FeedState

    store = store_factory()
    store.lock()
    try:
        store.save_feeds([FeedState(source="blog", etag='"v1"', failures=2, bad_version=True)])
        entries = [Entry(source="blog", guid=g, url=f"https://blog.example/{g}/", title=g, author=None,
                         published=None, updated=None) for g in ("b", "a", "b")]
        assert store.save_entries("blog", entries) == {}
        store.add_series_parts("blog", "s", {"a": 1})
        store.put(Delivery(partner="mag", source="blog", guid="a", state=INTENT, intent="create"))
        store.put_media("mag", "https://img/1.png", "7", "https://mag/7.png")
        store.put_meta("k", "v")
    finally:
        store.close()
    again = store_factory()
    try:
        state = again.feed_states()["blog"]
        assert (state.etag, state.failures, state.bad_version) == ('"v1"', 2, True)
        assert [e.guid for e, _ in again.current_entries(["blog"])] == ["b", "a"]  # feed order, first one stands
        assert again.series_numbers("blog", "s") == {"a": 1}
        found = again.delivery("mag", "blog", "a")
        assert found is not None and (found.state, found.intent) == (INTENT, "create")
        assert again.unsettled("mag") == 1
        assert again.media("mag", "https://img/1.png") == ("7", "https://mag/7.png")
        assert again.get_meta("k") == "v"
    finally:
        again.close()


def test_a_store_has_one_writer_at_a_time(store_factory: Any) -> None:
    from syndicate.errors import LockedError

    first, second = store_factory(), store_factory()
    first.lock()
    try:
        with pytest.raises(LockedError):
            second.lock()
    finally:
        first.close()
    second.lock()
    second.close()


def test_a_read_only_store_reads_through_and_writes_nothing(store_factory: Any) -> None:
    from syndicate.store import ReadOnlyStore

    store = store_factory()
    store.lock()
    store.put(Delivery(partner="mag", source="blog", guid="a", state=OK))
    store.close()
    readonly = ReadOnlyStore(store_factory())
    try:
        readonly.put(Delivery(partner="mag", source="blog", guid="b", state=OK))
        readonly.put_meta("k", "v")
        readonly.lock()  # takes nothing
        assert [d.guid for d in readonly.deliveries()] == ["a"]
        assert readonly.get_meta("k") is None
    finally:
        readonly.close()
