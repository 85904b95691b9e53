"""Series numbering shared by runs on several hosts: one number per part, the same for every run.

Two runs that first see parts of one series at the same moment, each over its own connection to
the one PostgreSQL (two ``PostgresStore`` objects, started together on a barrier): whatever parts
each of them sees, in whatever order, every part ends with one number, both runs are told the same
number for it, no number is given to two parts, and the numbers stored are what they were told.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import PostgresDatabase

#: A few guids, so that the two runs' views of the series overlap often.
GUIDS = st.sampled_from([f"part-{n}" for n in range(8)])
VIEW = st.lists(GUIDS, min_size=1, max_size=6, unique=True)

_series = itertools.count()


@pytest.fixture()
def two_runs(postgres: PostgresDatabase) -> Iterator[tuple[Any, Any]]:
    """Two stores on one database, each with its own connections, as two hosts' runs would have."""
    from syndicate.pg_store import PostgresStore

    runs = (PostgresStore(postgres.url, password=postgres.password, lease_seconds=10),
            PostgresStore(postgres.url, password=postgres.password, lease_seconds=10))
    for store in runs:
        store.lock()
    try:
        yield runs
    finally:
        for store in runs:
            store.close()


def at_once(runs: tuple[Any, Any], series: str, views: tuple[list[str], list[str]]) -> list[dict[str, int]]:
    """Both runs number their view of ``series`` at the same moment; what each was told."""
    barrier = threading.Barrier(2)
    told: list[dict[str, int]] = [{}, {}]
    failures: list[BaseException] = []

    def number(i: int) -> None:
        try:
            runs[i].series_numbers("blog", series)  # connected and warm: the race is on the numbering
            barrier.wait(timeout=30)
            told[i] = runs[i].number_series("blog", series, views[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    threads = [threading.Thread(target=number, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    return told


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=VIEW, second=VIEW)
def test_two_runs_numbering_one_series_at_once_agree_on_every_part(
        two_runs: tuple[Any, Any], first: list[str], second: list[str]) -> None:
    series = f"series-{next(_series)}"
    told = at_once(two_runs, series, (first, second))
    stored = two_runs[0].series_numbers("blog", series)
    for view, numbers in zip((first, second), told):
        assert set(view) <= set(numbers), (view, numbers)
        assert all(stored[guid] == n for guid, n in numbers.items()), (stored, numbers)  # told what is stored
    assert set(stored) == set(first) | set(second)
    assert sorted(stored.values()) == list(range(1, len(stored) + 1)), stored  # one number per part, no gap


def test_a_part_keeps_its_number_when_a_later_run_sees_an_earlier_part(two_runs: tuple[Any, Any]) -> None:
    first, second = two_runs
    assert first.number_series("blog", "s", ["b", "c"]) == {"b": 1, "c": 2}
    assert second.number_series("blog", "s", ["a", "b", "c", "d"]) == {"b": 1, "c": 2, "a": 3, "d": 4}
    assert first.series_numbers("blog", "s") == {"b": 1, "c": 2, "a": 3, "d": 4}
