"""Recording a run's reads (record.py) and reading what identity needs (catalog.known_posts): a few
statements for all the feeds a run read, not a few per feed. Counted on a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from syndicate.catalog import known_posts
from syndicate.models import Entry
from syndicate.record import record_feeds
from syndicate.records import FeedState
from syndicate.report import FeedOutcome
from syndicate.sqlite_store import SQLiteStore

from .fakes import same


def outcomes(count: int, reading: int, prefix: str = "s") -> list[FeedOutcome]:
    """``count`` feeds read with one entry each (named by another guid from the second reading on), and
    one feed that failed."""
    read = []
    for i in range(count):
        sid = f"{prefix}{i}"
        url = f"https://{sid}.example/post/"
        entry = Entry(source=sid, guid="post", url=url, title="Post", author=None, published=None, updated=None,
                      content_hash=f"v{reading}", feed_guid=url if reading > 1 else None)
        read.append(FeedOutcome(sid, "ok", entries=[entry], state=FeedState(source=sid, etag=f'"{reading}"')))
    return [*read, FeedOutcome(f"{prefix}-broken", "failed", error="HTTP 500",
                               state=FeedState(source=f"{prefix}-broken", failures=1))]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(f"sqlite:///{tmp_path / 'state.db'}")
    opened.lock()
    yield opened
    opened.close()


def statements(store: SQLiteStore, work: Callable[..., object], *args: object) -> int:
    """How many statements ``work(*args)`` sends to the database (an executemany counts once)."""
    sent: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        work(*args)
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
    return len(sent)


@pytest.mark.parametrize("reading", [1, 2])
def test_recording_many_feeds_costs_the_statements_of_a_few(store: SQLiteStore, reading: int) -> None:
    """The statements of recording (and of identifying) 3 feeds and 60 are as many: on a first reading,
    and on a second one where every entry is known and named by another guid now."""
    recorded, identified = [], []
    for count, prefix in ((3, "few"), (60, "many")):
        if reading > 1:  # the first reading of these feeds, as an earlier run recorded it
            record_feeds(store, outcomes(count, 1, prefix))
        batch = outcomes(count, reading, prefix)
        recorded.append(statements(store, record_feeds, store, batch))
        identified.append(statements(store, known_posts, store, [o.source for o in batch if o.status == "ok"]))
    assert recorded[0] == recorded[1]
    assert identified[0] == identified[1]


def test_known_posts_are_each_sources_own(store: SQLiteStore) -> None:
    """What identity is given of each source: its posts with every guid they were known by, and
    nothing of the other sources read with it (nor of a source not asked for)."""
    record_feeds(store, outcomes(4, 1))
    record_feeds(store, outcomes(4, 2))
    known = known_posts(store, ["s0", "s2", "new"])
    assert sorted(known) == ["new", "s0", "s2"]
    assert known["new"] == []
    for sid in ("s0", "s2"):
        (post,) = known[sid]
        assert (post.key, post.guids, post.url) == ("post", ("post", f"https://{sid}.example/post/"),
                                                    f"https://{sid}.example/post/")
    assert known_posts(store, []) == {}


def test_recording_a_large_run_holds_a_slice_of_its_json_at_once(store: SQLiteStore) -> None:
    """Recording 50 feeds of 20 entries of 10 KB (10 MB of JSON) never holds all of that JSON at once: the
    rows go to the database in slices, inside the one transaction."""
    import tracemalloc

    def item(sid: str, i: int) -> Entry:
        return Entry(source=sid, guid=f"g{i}", url=f"https://{sid}.example/{i}/", title=f"Post {i}", author=None,
                     published=None, updated=None, content="<p>" + "x" * 10_000 + "</p>").with_hash()

    read = [FeedOutcome(f"s{n}", "ok", entries=[item(f"s{n}", i) for i in range(20)], state=FeedState(source=f"s{n}"))
            for n in range(50)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        record_feeds(store, read)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # the JSON of every row at once would be more than 10 MB
    assert sum(len(v) for v in store.all_entries_of([o.source for o in read], same).values()) == 1000
