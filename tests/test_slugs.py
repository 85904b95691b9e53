"""The slug of each new copy: the original's own, made unique on the partner by ``-2``, ``-3`` … without end."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.compose import Ledger, Slugs
from syndicate.models import Entry
from syndicate.records import Delivery

WHEN = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


def entry(source: str, n: int, path: str) -> Entry:
    return Entry(source=source, guid=f"{source}-{n}", url=f"https://{source}.example/{path}/", title=path,
                 author=None, published=WHEN, updated=None)


@settings(max_examples=30, deadline=None)
@given(namesakes=st.integers(0, 2500), held=st.sets(st.integers(2, 3000), max_size=40),
       keep_base=st.booleans())
def test_every_namesake_gets_a_slug_of_its_own(namesakes: int, held: set[int], keep_base: bool) -> None:
    # Any number of posts called "post" on one partner, some of the family already held by earlier copies
    # (any suffixes, gaps included): each new copy gets a distinct member of the family, none already held.
    ledger: Ledger = {}
    taken = {f"post-{n}" for n in held} | ({"post"} if keep_base else set())
    for i, slug in enumerate(sorted(taken)):
        ledger[("old", f"old-{i}")] = Delivery(partner="mag", source="old", guid=f"old-{i}", slug=slug)
    slugs = Slugs()
    chosen = [slugs.slug(entry(f"site{n}", n, "post"), "mag", ledger) for n in range(namesakes)]
    assert len(set(chosen)) == len(chosen)
    assert not set(chosen) & taken
    assert all(s == "post" or (s.startswith("post-") and s[5:].isdigit() and int(s[5:]) >= 2) for s in chosen)
    # Chosen once per run and partner: asking again answers the same.
    assert [slugs.slug(entry(f"site{n}", n, "post"), "mag", ledger) for n in range(namesakes)] == chosen
