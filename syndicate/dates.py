"""Date arithmetic that saturates at the calendar's edges instead of raising.

Python's dates end at 0001-01-01 and 9999-12-31; ``datetime + timedelta`` past either edge raises
OverflowError. Dates here come from feeds (an entry "published" 9999-12-31) and from configs (a grant
that ``expires = 9999-12-31``, meaning "never"), so every addition of a duration to a date goes
through this module: past the last instant is the last instant, and an embargo that would end after
the end of the calendar simply never ends in practice.
"""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc
#: The first and last instants a timezone-aware UTC datetime can hold.
FIRST_INSTANT = dt.datetime.min.replace(tzinfo=UTC)
LAST_INSTANT = dt.datetime.max.replace(tzinfo=UTC)


def _edge_like(instant: dt.datetime, last: bool) -> dt.datetime:
    """The calendar's edge with the same awareness as ``instant`` (naive stays naive)."""
    edge = dt.datetime.max if last else dt.datetime.min
    return edge if instant.tzinfo is None else edge.replace(tzinfo=instant.tzinfo)


def add(instant: dt.datetime, *, days: float = 0, hours: float = 0) -> dt.datetime:
    """``instant`` plus the duration, clamped to the first/last instant instead of overflowing."""
    try:
        delta = dt.timedelta(days=days, hours=hours)
    except OverflowError:  # a duration longer than timedelta holds (~2.7 million years) is past any edge
        return _edge_like(instant, last=(days + hours / 24) > 0)
    try:
        return instant + delta
    except OverflowError:
        return _edge_like(instant, last=delta > dt.timedelta(0))


def start_of_day_after(day: dt.date) -> dt.datetime:
    """The UTC instant the day after ``day`` begins (a grant that ``expires = D`` is expired from then).

    For the calendar's last day there is no day after: the last instant stands for it."""
    return add(dt.datetime.combine(day, dt.time(), UTC), days=1)
