"""Dates at the calendar's edges: no entry date, embargo or grant expiry ever makes a run raise."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate import dates
from syndicate.config import load_config, parse_config
from syndicate.decide import Rules
from syndicate.models import Entry

UTC = dt.timezone.utc
MAX_EMBARGO = 36_500  # the config's bound (a century)

_anywhere = st.datetimes(min_value=dt.datetime.min, max_value=dt.datetime.max, timezones=st.just(UTC))
# Within a century of either edge of the calendar, where an embargo or a day added overflows.
_near_edges = st.builds(
    lambda edge, offset: edge + offset if edge == dates.FIRST_INSTANT else edge - offset,
    st.sampled_from([dates.FIRST_INSTANT, dates.LAST_INSTANT]),
    st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=MAX_EMBARGO)))
instants = _anywhere | _near_edges
days = st.dates(min_value=dt.date.min, max_value=dt.date.max) | instants.map(lambda i: i.date())


def _rules(embargo: int, expires: dt.date | None) -> Rules:
    grant: dict[str, object] = {"source": "s", "partner": "p", "evidence": "email", "embargo_days": embargo}
    if expires is not None:
        grant["expires"] = expires
    data = {
        "sources": {"s": {"name": "s", "site_url": "https://s.example", "feed": "f.xml", "embargo_days": embargo}},
        "partners": {"p": {"name": "P", "kind": "files", "path": "out", "base_url": "https://p.example"}},
        "grants": [grant],
    }
    return Rules(parse_config(data, Path("/tmp/syndicate.toml")))


@settings(max_examples=300, deadline=None)
@given(published=instants, now=instants, embargo=st.integers(0, MAX_EMBARGO), expires=st.none() | days)
def test_any_entry_date_with_any_embargo_and_expiry_gets_a_verdict(
        published: dt.datetime, now: dt.datetime, embargo: int, expires: dt.date | None) -> None:
    rules = _rules(embargo, expires)
    entry = Entry(source="s", guid="g", url="https://s.example/a", title="t", author=None, published=published,
                  updated=None, content="<p>x</p>").with_hash()
    verdict = rules.verdict(entry, rules.config.partners["p"], now)
    if verdict.not_before is not None:  # waiting: the end is after now, and never before the publication
        assert now < verdict.not_before and verdict.not_before >= published
    if verdict.allowed and embargo:
        assert now >= published


@given(instant=instants, amount=st.floats(-1e12, 1e12, allow_nan=False) | st.integers(-10**12, 10**12))
def test_adding_days_saturates(instant: dt.datetime, amount: float) -> None:
    result = dates.add(instant, days=amount)
    assert dates.FIRST_INSTANT <= result <= dates.LAST_INSTANT
    if amount >= 0:
        assert result >= instant
    else:
        assert result <= instant


@given(day=days)
def test_the_day_after_any_day_is_after_it(day: dt.date) -> None:
    after = dates.start_of_day_after(day)
    assert after.date() >= day and after.tzinfo is not None


def test_a_grant_that_expires_on_the_last_day_of_the_calendar_runs_in_steady_state(example: Path) -> None:
    from tests.conftest import CLI

    text = example.read_text().replace("embargo_days = 0\n", "embargo_days = 0\nexpires = 9999-12-31\n", 1)
    example.write_text(text)
    load_config(example)  # valid
    run = CLI(example)
    for _ in range(2):  # the second run goes through the steady-state bookkeeping of the first
        result = run("sync")
        assert result.exit_code == 0, result.output
