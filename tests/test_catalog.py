"""The catalog's current entries (``catalog._current``) on a real SQLite store.

What must hold: a source not read this run has its stored entries; a feed read and recorded has
the stored rows, which are the entries it parsed (held once: the parsed objects themselves); a read
the store did not keep (a dry run) is used as parsed, with the first-seen dates the store knows.
"""

from __future__ import annotations

import datetime as dt
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.catalog import _current
from syndicate.models import Entry
from syndicate.report import FeedOutcome
from syndicate.sqlite_store import SQLiteStore

from .conftest import CLI

NOW = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.timezone.utc)
SOURCES = ["a", "b", "c"]


def entry(source: str, guid: str, version: int = 0, size: int = 10) -> Entry:
    return Entry(source=source, guid=guid, url=f"https://{source}.example/{guid}/", title=f"{guid} v{version}",
                 author=None, published=None, updated=None, content=f"<p>{version}</p>" + "x" * size).with_hash()


def expected(stored: dict[str, list[tuple[Entry, dt.datetime | None]]], read: dict[str, list[Entry]],
             now: dt.datetime) -> dict[str, list[tuple[Entry, dt.datetime | None]]]:
    """What the catalog must give, said plainly."""
    out = {}
    for sid in SOURCES:
        rows = stored.get(sid, [])
        if sid not in read:
            out[sid] = rows
            continue
        first: dict[str, Entry] = {}
        for e in read[sid]:
            first.setdefault(e.guid, e)
        if [(e.guid, e.content_hash) for e, _ in rows] == [(e.guid, e.content_hash) for e in first.values()]:
            out[sid] = rows
        else:
            seen = {e.guid: s for e, s in rows}
            out[sid] = [(e, seen.get(e.guid, now)) for e in first.values()]
    return out


guids = st.lists(st.sampled_from(["g1", "g2", "g3", "g4"]), max_size=5)
#: Per source: the entries stored by an earlier run (guid, version), and this run's read: none (a 304
#: or a failure), the stored ones again, or other entries; and whether the store kept the read.
plans = st.fixed_dictionaries({sid: st.tuples(
    st.lists(st.tuples(st.sampled_from(["g1", "g2", "g3", "g4"]), st.integers(0, 1)), max_size=4),
    st.one_of(st.none(), st.just("same"), st.lists(st.tuples(st.sampled_from(["g1", "g2", "g3", "g4"]),
                                                             st.integers(0, 1)), max_size=5)),
    st.booleans()) for sid in SOURCES})


@settings(max_examples=60, deadline=None)
@given(plans)
def test_current_entries_are_the_stored_ones_or_this_runs_read(plan: dict[str, tuple]) -> None:  # type: ignore[type-arg]
    with TemporaryDirectory() as folder:
        store = SQLiteStore(f"sqlite:///{Path(folder) / 'state.db'}", clock=lambda: NOW - dt.timedelta(days=1))
        try:
            outcomes, read = [], {}
            for sid, (earlier, this_run, recorded) in plan.items():
                if earlier:
                    store.save_entries_of({sid: [entry(sid, g, v) for g, v in earlier]})
                if this_run is None:
                    continue
                parsed = ([entry(sid, g, v) for g, v in earlier] if this_run == "same"
                          else [entry(sid, g, v) for g, v in this_run])
                if recorded:  # a run records its reads before it builds the catalog; a dry run does not
                    store.save_entries_of({sid: parsed})
                outcomes.append(FeedOutcome(sid, "ok", entries=parsed))
                read[sid] = parsed
            stored: dict[str, list[tuple[Entry, dt.datetime | None]]] = {}
            for e, seen in store.current_entries(SOURCES):
                stored.setdefault(e.source, []).append((e, seen))

            current = _current(store, SOURCES, outcomes, NOW)

            assert current == expected(stored, read, NOW)
            for sid, parsed in read.items():  # an entry equal to one parsed is that very object
                for e, _ in current[sid]:
                    same = [p for p in parsed if p == e]
                    assert not same or any(p is e for p in same)
        finally:
            store.close()


def test_current_entries_are_read_one_at_a_time(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.save_entries_of({"a": [entry("a", f"g{i}") for i in range(3)]})
        rows = store.current_entries(["a"])
        assert isinstance(rows, Iterator)
        assert next(rows)[0].guid == "g0"
        rows.close()  # its transaction ends with it: the store works on
        assert [e.guid for e, _ in store.current_entries()] == ["g0", "g1", "g2"]
    finally:
        store.close()


def test_a_recorded_read_is_held_once(tmp_path: Path) -> None:
    """Building the catalog of a recorded cold read adds far less than a copy of its entries."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'state.db'}")
    sources = [f"s{i}" for i in range(8)]
    try:
        outcomes = []
        for sid in sources:
            parsed = [entry(sid, f"g{i}", size=20_000) for i in range(10)]  # 8 × 10 × 20 KB = 1.6 MB
            store.save_entries_of({sid: parsed})
            outcomes.append(FeedOutcome(sid, "ok", entries=parsed))
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            current = _current(store, sources, outcomes, NOW)
            held, peak = (m - before for m in tracemalloc.get_traced_memory())
        finally:
            tracemalloc.stop()
        assert sum(len(v) for v in current.values()) == 80
        assert held < 200_000  # the catalog keeps the parsed entries, not a decoded copy (1.6 MB)
        assert peak < 800_000  # a source's rows at a time (0.2 MB each), never all of them
    finally:
        store.close()


def test_a_feed_without_entries_does_not_stop_the_partners(run: CLI, example: Path) -> None:
    empty = example.parent / "empty-feed.xml"
    empty.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>Nothing yet</title>'
                     "<link>https://empty.example/</link></channel></rss>")
    example.write_text(example.read_text() + '\n[sources.empty]\nname = "Empty"\nsite_url = "https://empty.example"\n'
                       'feed = "empty-feed.xml"\nlicense = "CC-BY-4.0"\n')
    result = run("sync")
    assert "unexpected error" not in result.output, result.output
    assert result.exit_code == 0, result.output
    assert "enliveningedge: 3 created" in result.output
