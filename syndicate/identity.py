"""Identity: which known post each entry of a feed's reading is, however the feed names it now.

A pure function of what is known of a source (each post's stable key, the guids it was known by, its
URL, title and publication instant) and this reading's entries. An entry is a known post when, in
this order:

1. its guid is one the post was known by (the URL may have changed: a slug edited);
2. its original URL, in any spelling (``SiteIdentity.key``), is the post's, or is a guid the post was
   known by (a permalink guid): a guid change (http → https, a new domain, ``?p=123`` → permalink);
3. its title (without case, spacing or punctuation) and publication instant are the post's: both
   changed at once (a site rebuilt on another CMS).

A guid that several different posts of one reading carry (different URLs) identifies none of them:
each is identified by its URL. Two entries of one reading are never the same known post, so
different posts never merge. A new post's key is its guid (its URL where its guid is shared).
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from .models import Entry, utc
from .urls import SiteIdentity


@dataclass(frozen=True)
class KnownPost:
    """What is known of one post of a source: its stable key and the guids it was known by (oldest first)."""

    key: str
    guids: tuple[str, ...]
    url: str | None
    title: str
    published: dt.datetime | None


@dataclass(frozen=True)
class IdentityChange:
    """A known post that a reading names by another guid than before."""

    source: str
    key: str
    old_guid: str
    new_guid: str
    why: str      # "same URL" | "same title and date" | "guid shared by several posts"

    def line(self) -> str:
        """How ``sync -v`` lists it."""
        return f"{self.source}: {self.old_guid} is now {self.new_guid} ({self.why})"


@dataclass(frozen=True)
class Identified:
    """A reading's entries with their stable keys (``Entry.guid``; ``Entry.feed_guid`` is the guid the
    feed gives now), and the identity changes to report."""

    entries: list[Entry]
    changes: list[IdentityChange]


def title_key(title: str) -> str:
    """A title compared without case, spacing or punctuation."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in ("L", "N"))


def _instant(value: dt.datetime | None) -> dt.datetime | None:
    return utc(value).replace(microsecond=0) if value is not None else None  # type: ignore[union-attr]


def identify(known: Sequence[KnownPost], entries: Iterable[Entry], site: SiteIdentity) -> Identified:
    """Each entry's stable identity (see the module's docstring), and the changes of guid to report.

    Entries that repeat a guid with the same URL are one post: the first stands (as before)."""
    site_key = functools.lru_cache(maxsize=None)(site.key)  # a URL is parsed once per call, not once per rule
    items = _distinct(list(entries), site_key)
    shared = _shared_guids(items, site_key)

    by_guid: dict[str, KnownPost] = {}
    by_url: dict[str, KnownPost] = {}
    by_title: dict[tuple[str, dt.datetime], list[KnownPost]] = {}
    for post in known:
        for guid in post.guids:
            by_guid.setdefault(guid, post)
        for spelling in (post.url, *post.guids):
            url_key = site_key(spelling) if spelling else None
            if url_key:
                by_url.setdefault(url_key, post)
        when = _instant(post.published)
        if when is not None and title_key(post.title):
            by_title.setdefault((title_key(post.title), when), []).append(post)

    claimed: dict[int, KnownPost] = {}
    taken: set[str] = set()

    def claim(index: int, post: KnownPost | None) -> None:
        if post is not None and post.key not in taken:
            claimed[index] = post
            taken.add(post.key)

    # Each rule in turn over the whole reading, so that an exact guid wins over another entry's URL.
    for i, e in enumerate(items):
        if e.guid not in shared:
            claim(i, by_guid.get(e.guid))
    for i, e in enumerate(items):
        if i not in claimed:
            url_key = site_key(e.url) if e.url else None
            claim(i, by_url.get(url_key) if url_key else None)
    for i, e in enumerate(items):
        when = _instant(e.published)
        if i not in claimed and when is not None and title_key(e.title):
            candidates = [p for p in by_title.get((title_key(e.title), when), []) if p.key not in taken]
            claim(i, candidates[0] if len(candidates) == 1 else None)  # two such posts: neither is sure

    used = {post.key for post in known} | {g for post in known for g in post.guids} | taken  # a new key is none of these
    out: list[Entry] = []
    changes: list[IdentityChange] = []
    for i, e in enumerate(items):
        found = claimed.get(i)
        if found is not None:
            post = found
            key = post.key
            if e.guid != post.guids[-1]:
                why = ("guid shared by several posts" if e.guid in shared else
                       "same URL" if (e.url and site_key(e.url) in {site_key(s) for s in (post.url, *post.guids) if s})
                       else "same title and date")
                changes.append(IdentityChange(e.source, key, post.guids[-1], e.guid, why))
        else:
            key = _new_key(e, shared, used)
        used.add(key)
        out.append(replace(e, guid=key, feed_guid=e.guid if e.guid != key else None))
    return Identified(out, changes)


def _distinct(items: list[Entry], site_key: Callable[[str], str | None]) -> list[Entry]:
    """The reading without repeats of one post (the same guid and the same URL): the first stands."""
    seen: set[tuple[str, str | None]] = set()
    out = []
    for e in items:
        mark = (e.guid, site_key(e.url) or e.url if e.url else None)
        if mark not in seen:
            seen.add(mark)
            out.append(e)
    return out


def _shared_guids(items: list[Entry], site_key: Callable[[str], str | None]) -> set[str]:
    """Guids that several different posts of the reading carry (different URLs)."""
    urls: dict[str, set[str | None]] = {}
    for e in items:
        urls.setdefault(e.guid, set()).add(site_key(e.url) or e.url if e.url else None)
    return {guid for guid, spellings in urls.items() if len(spellings) > 1}


def _new_key(e: Entry, shared: set[str], used: set[str]) -> str:
    """A new post's key: its guid, else (a shared or used one) its URL, else a numbered guid."""
    for candidate in ((e.url,) if e.guid in shared else (e.guid, e.url)):
        if candidate and candidate not in used:
            return candidate
    n = 2
    while f"{e.guid}#{n}" in used:
        n += 1
    return f"{e.guid}#{n}"
