"""The identity stage: a known post stays itself however the feed renames it; different posts never merge."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.identity import KnownPost, identify, title_key
from syndicate.models import Entry
from syndicate.urls import SiteIdentity

SITE = SiteIdentity("https://www.easierinc.com", ("easierinc.com", "old-easier.net"))
BASE = dt.datetime(2019, 3, 25, 8, 0, tzinfo=dt.timezone.utc)


def entry(guid: str, url: str | None, title: str, published: dt.datetime | None, body: str = "") -> Entry:
    return Entry(source="easierinc", guid=guid, url=url, title=title, author=None, published=published,
                 updated=None, content=body)


def known_from(entries: list[Entry]) -> list[KnownPost]:
    return [KnownPost(e.guid, (e.current_guid,), e.url, e.title, e.published) for e in entries]


def posts(n: int) -> list[Entry]:
    return [entry(f"https://www.easierinc.com/?p={2100 + i}", f"https://www.easierinc.com/post-{i}/",
                  f"Radical Models of Organising, part {i}", BASE + dt.timedelta(days=i)) for i in range(n)]


# A spelling of a post's URL that names the same post: scheme, www., an alias, a trailing slash, tracking.
spellings = st.tuples(st.sampled_from(["https://", "http://", "HTTPS://"]),
                      st.sampled_from(["www.easierinc.com", "easierinc.com", "old-easier.net", "WWW.EasierInc.com"]),
                      st.booleans(), st.sampled_from(["", "?utm_source=x", "?fbclid=1&utm_medium=rss"]))


def respell(url: str, how: tuple[str, str, bool, str]) -> str:
    scheme, host, slash, query = how
    path = url.split("easierinc.com", 1)[1].rstrip("/")
    return f"{scheme}{host}{path}{'/' if slash else ''}{query}"


def retitle(title: str, how: int) -> str:
    return [title.upper(), title.replace(" ", "  "), title.replace(",", ""), f" {title.lower()}!"][how]


# How a feed renames one post: a new guid (URL respelled), a new URL (guid kept), or both (title, date kept).
renamings = st.tuples(st.sampled_from(["guid", "url", "both", "none"]), spellings, st.integers(0, 3),
                      st.sampled_from(["", "tag:new-cms,2024:", "https://proxy.example/"]))


def rename(e: Entry, i: int, how: tuple[str, tuple[str, str, bool, str], int, str]) -> Entry:
    change, spelling, title_how, prefix = how
    if change == "guid":
        return entry(f"{prefix}guid-{i}-new" if prefix else respell(e.url or "", spelling), respell(e.url or "", spelling),
                     e.title, e.published, "edited body")
    if change == "url":
        return entry(e.guid, f"https://www.easierinc.com/new-slug-{i}/", e.title, e.published)
    if change == "both":
        return entry(f"tag:rebuilt,2024:{i}", f"https://www.easierinc.com/2019/03/rebuilt-{i}.html",
                     retitle(e.title, title_how), e.published)
    return e


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.lists(renamings, min_size=n, max_size=n),
                                                       st.permutations(range(n)))))
def test_renamed_posts_keep_their_identity(case: tuple[int, list, list[int]]) -> None:
    n, hows, order = case
    first = identify([], posts(n), SITE).entries
    known = known_from(first)
    renamed = [rename(first[i], i, hows[i]) for i in order]
    out = identify(known, renamed, SITE)
    assert [e.guid for e in out.entries] == [first[i].guid for i in order]  # no new identity, none swapped
    assert [e.current_guid for e in out.entries] == [r.guid for r in renamed]
    assert len(out.changes) == sum(1 for i in order if renamed[order.index(i)].guid != first[i].guid)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.integers(0, 6), st.data())
def test_different_posts_never_merge(n_known: int, n_new: int, data: st.DataObject) -> None:
    """New posts (their own URL, guid and title) among renamed known ones each get an identity of their own."""
    first = identify([], posts(n_known), SITE).entries
    renamed = [rename(e, i, data.draw(renamings)) for i, e in enumerate(first)]
    new = [entry(f"https://www.easierinc.com/?p={9000 + j}", f"https://www.easierinc.com/fresh-{j}/",
                 f"Fresh post {j}", BASE + dt.timedelta(days=j)) for j in range(n_new)]
    reading = data.draw(st.permutations(renamed + new))
    out = identify(known_from(first), reading, SITE)
    keys = [e.guid for e in out.entries]
    assert len(keys) == len(set(keys)) == n_known + n_new
    old = {e.guid for e in first}
    for e_in, e_out in zip(reading, out.entries, strict=True):
        assert (e_out.guid in old) == (e_in in renamed)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 6), st.integers(1, 3))
def test_a_shared_guid_identifies_none_and_drops_none(n: int, copies: int) -> None:
    """A guid that several posts carry: every post is kept, each by its URL, run after run."""
    reading = [entry("https://www.easierinc.com/?p=1", f"https://www.easierinc.com/post-{i}/", f"Post {i}",
                     BASE + dt.timedelta(days=i)) for i in range(n)] * copies  # exact repeats are one post
    first = identify([], reading, SITE)
    assert len(first.entries) == n
    assert len({e.guid for e in first.entries}) == n
    again = identify(known_from(first.entries), reading, SITE)
    assert [e.guid for e in again.entries] == [e.guid for e in first.entries]
    assert again.changes == []


def test_a_store_of_the_old_code_where_one_post_took_the_shared_guid() -> None:
    """The old ledger kept the first post under the shared guid: that one keeps its copy, the other is new."""
    known = [KnownPost("g", ("g",), "https://www.easierinc.com/a/", "A", BASE)]
    out = identify(known, [entry("g", "https://www.easierinc.com/a/", "A", BASE),
                           entry("g", "https://www.easierinc.com/b/", "B", BASE)], SITE)
    assert [e.guid for e in out.entries] == ["g", "https://www.easierinc.com/b/"]


def test_the_founding_example_moving_to_http_without_www() -> None:
    first = identify([], posts(1), SITE).entries
    moved = entry("http://easierinc.com/?p=2100", "http://easierinc.com/post-0/", first[0].title, first[0].published)
    out = identify(known_from(first), [moved], SITE)
    assert out.entries[0].guid == "https://www.easierinc.com/?p=2100"
    assert out.entries[0].current_guid == "http://easierinc.com/?p=2100"
    assert [c.line() for c in out.changes] == [
        "easierinc: https://www.easierinc.com/?p=2100 is now http://easierinc.com/?p=2100 (same URL)"]


def test_same_title_and_date_of_two_known_posts_identifies_neither() -> None:
    known = [KnownPost("a", ("a",), "https://www.easierinc.com/a/", "News", BASE),
             KnownPost("b", ("b",), "https://www.easierinc.com/b/", "News", BASE)]
    out = identify(known, [entry("c", "https://www.easierinc.com/c/", "news", BASE)], SITE)
    assert out.entries[0].guid == "c"


@given(st.text(max_size=30))
def test_title_key_ignores_case_spacing_and_punctuation(title: str) -> None:
    assert title_key(title) == title_key(f"  {title.upper()} ... ") == title_key(title.replace(" ", "\t"))
