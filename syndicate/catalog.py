"""Identity and series: the run's entries, every entry ever seen, and the numbers of series parts.

The entries a run works on are each feed's read of this run, else (a 304, a failure) the last read
stored. Copies link to entries that may have left their feed, so every entry ever seen is looked up
by guid and by URL here, loaded once per run when first asked for.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

from .config import Config
from .decide import Rules
from .identity import KnownPost
from .models import Entry
from .report import FeedOutcome
from .store import Store

#: An entry with when it was first seen.
Seen = tuple[Entry, dt.datetime | None]


class Catalog:
    """The entries of one run, with lookups by guid and by URL, and the series' numbers."""

    def __init__(self, config: Config, store: Store, rules: Rules, source_ids: list[str],
                 outcomes: list[FeedOutcome], now: dt.datetime) -> None:
        self.config, self.store, self.rules, self.source_ids, self.now = config, store, rules, source_ids, now
        self.current: dict[str, list[Seen]] = _current(store, source_ids, outcomes, now)
        self._known: dict[str, dict[str, Entry]] | None = None
        self._by_guid: dict[str, dict[str, Entry]] = {}
        self._by_url: dict[str, dict[str, str]] = {}
        self._guids: dict[str, dict[str, list[str]]] = {}
        self.series: dict[tuple[str, str], dict[str, int]] = self._number_series()

    def entries(self) -> list[Seen]:
        """Every current entry of the selected sources, in feed order."""
        return [item for sid in self.source_ids for item in self.current.get(sid, [])]

    def _number_series(self) -> dict[tuple[str, str], dict[str, int]]:
        """Each series' numbers: a part keeps the number it got when first seen; new ones follow, by date."""
        numbers: dict[tuple[str, str], dict[str, int]] = {}
        for sid in self.source_ids:
            for series in self.config.sources[sid].series:
                wanted = series.category.casefold()
                parts = [e for e, _ in self.current.get(sid, []) if any(c.casefold() == wanted for c in e.categories)]
                parts.sort(key=lambda e: (e.when or self.now, e.guid))
                # The store numbers the new ones, atomically: another run sharing it may be numbering too.
                numbers[(sid, series.name)] = self.store.number_series(sid, series.name, [e.guid for e in parts])
        return numbers

    def series_of(self, entry: Entry) -> list[tuple[str, dict[str, int]]]:
        """(series name, guid → number) of each series the entry is a part of."""
        out = []
        for series in self.config.sources[entry.source].series:
            numbers = self.series.get((entry.source, series.name), {})
            if entry.guid in numbers:
                out.append((series.name, numbers))
        return out

    def label(self, entry: Entry, partner: str, number: int, series_name: str) -> str:
        """How a series note names a part: an override's label, else the series' own."""
        label = self.rules.override_field(entry, partner, "series_label")
        if isinstance(label, str):
            return label
        series = next(s for s in self.config.sources[entry.source].series if s.name == series_name)
        return series.label.format(n=number, title=entry.title)

    def known(self, source: str) -> dict[str, Entry]:
        """guid → entry, for every entry of ``source`` ever seen (the current ones win)."""
        if self._known is None:
            known: dict[str, dict[str, Entry]] = {}
            for e in self.store.all_entries(current=False):
                known.setdefault(e.source, {})[e.guid] = e
            for sid, items in self.current.items():
                known.setdefault(sid, {}).update((e.guid, e) for e, _ in items)
            self._known = known
        return self._known.get(source, {})

    def by_guid(self, source: str, guid: str) -> Entry | None:
        """The entry of ``source`` with this guid (current, else ever seen)."""
        current = self._by_guid.get(source)
        if current is None:
            current = self._by_guid[source] = {e.guid: e for e, _ in self.current.get(source, [])}
        return current.get(guid) or self.known(source).get(guid)

    def url_index(self, source: str) -> dict[str, str]:
        """site key of an entry's URL (or guid) → its guid, over every entry ever seen of the source."""
        if source not in self._by_url:
            site = self.rules.sites[source]
            index: dict[str, str] = {}
            for e in self.known(source).values():
                for candidate in (e.url, e.guid):
                    key = site.key(candidate) if candidate else None
                    if key:
                        index.setdefault(key, e.guid)
            self._by_url[source] = index
        return self._by_url[source]

    def guids_of(self, entry: Entry) -> tuple[str, ...]:
        """Every guid the entry has been known by (oldest first), its key and its guid now among them."""
        if entry.source not in self._guids:
            self._guids[entry.source] = self.store.entry_guids(entry.source)
        known = self._guids[entry.source].get(entry.guid, [])
        return tuple(dict.fromkeys([entry.guid, *known, entry.current_guid]))

    def names(self, spelling: str, entry: Entry) -> bool:
        """Does ``spelling`` (a URL in any spelling, or any guid the entry has had) name this entry?"""
        return any(self.rules.matches(spelling, replace(entry, guid=guid)) for guid in self.guids_of(entry))

    def find(self, spelling: str) -> Entry | None:
        """The entry named by ``spelling`` (any guid it had, or its URL in any spelling): a current one first."""
        for entry, _ in self.entries():
            if self.names(spelling, entry):
                return entry
        for sid in self.source_ids:
            for entry in self.store.all_entries(sid):
                if self.names(spelling, entry):
                    return entry
        return None


def known_posts(store: Store, sources: list[str]) -> dict[str, list[KnownPost]]:
    """What the store knows of every post of each of ``sources``, for the identity stage (two queries
    for all of them: a run identifies the entries of every feed it read)."""
    guids = store.entry_guids_of(sources)

    def known(e: Entry) -> KnownPost:  # only this of each stored entry is kept, not its content
        return KnownPost(e.guid, tuple(guids[e.source].get(e.guid) or [e.current_guid]), e.url, e.title, e.published)

    return store.all_entries_of(sources, known)


def _current(store: Store, source_ids: list[str], outcomes: list[FeedOutcome],
             now: dt.datetime) -> dict[str, list[Seen]]:
    """Each source's entries: as stored (a run records its reads first), else as read this run.

    The stored rows are read one source at a time, and a feed read this run keeps the entries it
    parsed wherever the stored ones equal them: the run holds one copy of its entries, not two."""
    read = {o.source: o.entries for o in outcomes if o.status == "ok" and o.entries is not None}
    current: dict[str, list[Seen]] = {sid: [] for sid in source_ids}
    unstored = set(read)  # read, and nothing stored: a new feed in a dry run, or one with no entries
    for sid, rows in itertools.groupby(store.current_entries(source_ids), key=lambda row: row[0].source):
        stored: list[Seen] = list(rows)
        unstored.discard(sid)
        current[sid] = _as_read(read[sid], stored, now) if sid in read else stored
    for sid in source_ids:
        if sid in unstored:
            current[sid] = _as_read(read[sid], [], now)
    return current


def _as_read(parsed: list[Entry], stored: list[Seen], now: dt.datetime) -> list[Seen]:
    """A feed read this run: its stored rows when they are this read (the run recorded it), else (a
    store that drops writes, as a dry run's) the read's entries with the first-seen dates the store knows.

    A stored entry equal to the one parsed is replaced by it: the same value, held once."""
    first: dict[str, Entry] = {}
    for e in parsed:  # a feed that repeats a guid: the first one stands (as in the store)
        first.setdefault(e.guid, e)
    if [e.guid for e, _ in stored] == list(first) and all(
            s.content_hash == e.content_hash for (s, _), e in zip(stored, first.values(), strict=True)):
        return [(first[e.guid] if first[e.guid] == e else e, seen) for e, seen in stored]
    seen_map = {e.guid: seen for e, seen in stored}
    return [(e, seen_map.get(e.guid, now)) for e in first.values()]
