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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.models import Entry
from syndicate.records import INTENT, OK, Delivery
from syndicate.sqlite_store import SQLiteStore as Store

from .fakes import same


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


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def store_factory(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Opens the test's store (a fresh one of its kind), as many times as asked: the same database."""
    if store_kind == "sqlite":
        return lambda: Store(f"sqlite:///{tmp_path / 'state.db'}")
    from syndicate.pg_store import PostgresStore

    db = request.getfixturevalue("postgres")
    return lambda: PostgresStore(db.url, password=db.password, lease_seconds=10)


def test_a_store_keeps_every_kind_of_record(store_factory: Any) -> None:
    from syndicate.records import FeedState

    store = store_factory()
    store.lock()
    try:
        store.save_feeds([FeedState(source="blog", etag='"v1"', failures=2, bad_version=True)])
        entries = [Entry(source="blog", guid=g, url=f"https://blog.example/{g}/", title=g, author=None,
                         published=None, updated=None) for g in ("b", "a", "b")]
        assert store.save_entries_of({"blog": entries}) == {"blog": {}}
        assert store.number_series("blog", "s", ["a"]) == {"a": 1}
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


def test_a_store_has_one_writer_at_a_time(store_factory: Any, store_kind: str) -> None:
    """SQLite: one writing run at a time (the second exits 75). PostgreSQL splits the work instead."""
    from syndicate.errors import LockedError

    if store_kind != "sqlite":
        pytest.skip("a shared server has no single-run lock: test_runs_sharing_a_store_split_the_work")

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


def test_runs_sharing_a_store_split_the_work(store_factory: Any, store_kind: str) -> None:
    """What one run takes no other run gets until it closes; SQLite's locked run takes everything."""
    first, second = store_factory(), store_factory()
    first.lock()
    try:
        taken = first.take(["a", "b"], ["mag"])
        assert (taken.feeds, taken.partners) == (["a", "b"], ["mag"])
        if store_kind == "sqlite":
            return  # the second cannot even lock (above)
        second.lock()
        other = second.take(["a", "b", "c"], ["mag", "wp"])
        assert (other.feeds, other.partners) == (["c"], ["wp"])
        assert (other.held_feeds, other.held_partners) == (["a", "b"], ["mag"])
    finally:
        first.close()
    try:
        again = second.take(["a"], ["mag"])
        assert (again.feeds, again.partners) == (["a"], ["mag"])  # released with the first run
    finally:
        second.close()


def test_series_numbers_given_first_stand(store_factory: Any) -> None:
    """A part keeps the number it got first; new parts follow the highest, in the order given."""
    store = store_factory()
    store.lock()
    try:
        assert store.number_series("blog", "s", ["a", "b"]) == {"a": 1, "b": 2}
        assert store.number_series("blog", "s", ["c", "b", "d"]) == {"a": 1, "b": 2, "c": 3, "d": 4}
        assert store.number_series("blog", "s", []) == {"a": 1, "b": 2, "c": 3, "d": 4}
        assert store.number_series("blog", "other", ["d"]) == {"d": 1}
        assert store.series_numbers("blog", "s") == {"a": 1, "b": 2, "c": 3, "d": 4}
        store.put_media("mag", "https://img/1.png", "7", "https://mag/7.png")
        store.put_media("mag", "https://img/1.png", "8", "https://mag/8.png")  # one upsert, replaced
        assert store.media("mag", "https://img/1.png") == ("8", "https://mag/8.png")
    finally:
        store.close()


def test_one_number_is_never_given_to_two_parts(store_factory: Any) -> None:
    """The store refuses a second part under a number already given (schema 4's unique index)."""
    import sqlalchemy

    from syndicate.errors import StoreError
    from syndicate.schema import series_parts

    store = store_factory()
    store.lock()
    try:
        store.number_series("blog", "s", ["a"])
        with pytest.raises((StoreError, sqlalchemy.exc.IntegrityError)), store.transaction() as conn:
            conn.execute(series_parts.insert(), [{"source": "blog", "series": "s", "guid": "b", "number": 1}])
        assert store.series_numbers("blog", "s") == {"a": 1}
    finally:
        store.close()


def test_a_store_keeps_the_guids_an_entry_was_known_by(store_factory: Any) -> None:
    """Entry identity's table (identity.py): each entry's guids oldest first, on every kind of store;
    a guid the feed goes back to is its guid now again."""
    store = store_factory()
    store.lock()
    try:
        store.save_entry_guids_of({"blog": {"a": "a", "b": "b"}})
        store.save_entry_guids_of({"blog": {"a": "https://blog.example/a/", "b": "b"}})
        store.save_entry_guids_of({"blog": {"a": "a"}})  # back to the first guid
        store.save_entry_guids_of({"other": {"a": "x"}})
    finally:
        store.close()
    again = store_factory()
    try:
        assert again.entry_guids("blog") == {"a": ["https://blog.example/a/", "a"], "b": ["b"]}
        assert again.entry_guids("other") == {"a": ["x"]}
        assert again.entry_guids("none") == {}
    finally:
        again.close()


def test_a_sqlite_deployment_never_loads_the_postgresql_driver(tmp_path: Path) -> None:
    """``--help`` and a whole sync on SQLite, each in a fresh interpreter: neither psycopg nor the
    PostgreSQL store is imported (what an operator without PostgreSQL must not pay for, or need)."""
    import shutil
    import subprocess
    import sys

    from .conftest import REPO

    folder = tmp_path / "example"
    shutil.copytree(REPO / "config", folder, ignore=shutil.ignore_patterns("out", ".syndicate"))
    for args in (["--help"], ["--config", str(folder / "syndicate.toml"), "sync"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "syndicate", *args], cwd=folder,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        loaded = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert "syndicate.cli" in loaded  # the list is the real one
        postgres = sorted(m for m in loaded if m.split(".")[0].startswith("psycopg")
                          or m in ("syndicate.postgres", "syndicate.pg_store"))
        assert postgres == [], (args, postgres)
    assert (folder / ".syndicate" / "state.db").exists()  # the sync did use its SQLite store


# ------------------------------------------------------------------------------------------------
# a run records (and identifies) the reads of all its feeds at once: the batch methods


def _entry(source: str, guid: str, text: str = "", feed_guid: str | None = None) -> Any:
    return Entry(source=source, guid=guid, url=f"https://{source}.example/{guid}/", title=guid or "untitled",
                 author=None, published=None, updated=None, content=text, content_hash=f"{guid}:{text}",
                 feed_guid=feed_guid)


def test_an_empty_batch_reads_and_writes_nothing(store_factory: Any) -> None:
    store = store_factory()
    store.lock()
    try:
        assert store.save_entries_of({}) == {}
        store.save_entry_guids_of({})
        store.save_entry_guids_of({"blog": {}})  # a source with no entries: no reading recorded
        assert store.entry_guids_of([]) == {}
        assert store.all_entries_of([], same) == {}
        assert store.entry_guids_of(["blog"]) == {"blog": {}}
        assert store.all_entries_of(["blog"], same) == {"blog": []}
        assert list(store.current_entries()) == []
    finally:
        store.close()


def test_one_batch_records_many_sources_each_as_its_own(store_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """More sources than one ``IN (…)`` names (the slice made small here): every one is read and
    written, each under its own name, and a source read with no entries has none current."""
    from syndicate import sql_store

    monkeypatch.setattr(sql_store, "_IN_CHUNK", 3)
    sources = [f"s{i}" for i in range(10)]
    store = store_factory()
    store.lock()
    try:
        first = {s: [_entry(s, "a", "one"), _entry(s, f"only-{s}")] for s in sources}
        assert store.save_entries_of(first) == {s: {} for s in sources}
        store.save_entry_guids_of({s: {e.guid: e.current_guid for e in items} for s, items in first.items()})
        second = {s: [_entry(s, "a", "two", feed_guid=f"https://{s}.example/a/")] for s in sources[:7]} | {"s9": []}
        assert store.save_entries_of(second) == {s: {"a": "a:one"} for s in sources[:7]} | {"s9": {}}
        store.save_entry_guids_of({s: {e.guid: e.current_guid for e in items} for s, items in second.items()})
    finally:
        store.close()
    again = store_factory()
    try:
        current: dict[str, list[str]] = {}
        for entry, _ in again.current_entries(sources):
            current.setdefault(entry.source, []).append(entry.content_hash)
        assert current == {s: ["a:two"] for s in sources[:7]} | {s: ["a:one", f"only-{s}:"] for s in ("s7", "s8")}
        guids = again.entry_guids_of(sources)
        assert guids == {s: {"a": ["a", f"https://{s}.example/a/"], f"only-{s}": [f"only-{s}"]} for s in sources[:7]} | {
            s: {"a": ["a"], f"only-{s}": [f"only-{s}"]} for s in sources[7:]}
        known = again.all_entries_of(sources, same)
        assert {s: sorted(e.guid for e in items) for s, items in known.items()} == {s: ["a", f"only-{s}"] for s in sources}
        assert all(e.source == s for s, items in known.items() for e in items)
        assert again.entry_guids("s3") == guids["s3"]
    finally:
        again.close()


# Readings of a few sources, each a few entries (a guid, the guid the feed names it by, a body): small
# alphabets, so that entries come back, change, repeat a guid and take another guid now and then.
_SOURCES = st.sampled_from(["a", "b", "c"])
_READ_ENTRY = st.tuples(st.sampled_from(["p", "q", "r"]), st.sampled_from([None, "p", "q", "x"]), st.sampled_from(["", "v1", "v2"]))
_READINGS = st.lists(st.dictionaries(_SOURCES, st.lists(_READ_ENTRY, max_size=4), max_size=3), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(readings=_READINGS)
def test_recording_sources_together_is_recording_each_alone(tmp_path: Path, readings: list[dict[str, list[Any]]]) -> None:
    """What a store keeps of a run's reads is the same whether the feeds are recorded in one batch or
    one by one: no source's entries, first-seen times, previous hashes or guid history leak into another's."""
    import datetime as dt
    import uuid

    clock = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]
    folder = tmp_path / uuid.uuid4().hex
    together = Store(f"sqlite:///{folder / 'together.db'}", clock=lambda: clock[0])
    alone = Store(f"sqlite:///{folder / 'alone.db'}", clock=lambda: clock[0])
    try:
        for reading in readings:
            clock[0] += dt.timedelta(hours=1)
            batch = {s: [_entry(s, guid, text, feed_guid=now) for guid, now, text in items] for s, items in reading.items()}
            guids = {s: {e.guid: e.current_guid for e in items} for s, items in batch.items()}
            previous = together.save_entries_of(batch)
            together.save_entry_guids_of(guids)
            one_by_one: dict[str, dict[str, str]] = {}
            for s in batch:
                one_by_one |= alone.save_entries_of({s: batch[s]})
                alone.save_entry_guids_of({s: guids[s]})
            assert previous == one_by_one
        sources = ["a", "b", "c"]
        assert list(together.current_entries(sources)) == list(alone.current_entries(sources))
        assert together.entry_guids_of(sources) == alone.entry_guids_of(sources)
        assert ({s: sorted(map(repr, items)) for s, items in together.all_entries_of(sources, same).items()}
                == {s: sorted(map(repr, items)) for s, items in alone.all_entries_of(sources, same).items()})
    finally:
        together.close()
        alone.close()
