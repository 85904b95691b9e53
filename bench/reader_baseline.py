"""Baseline for benchmark R: lemon24/reader's ``update_feeds()`` on the same feeds as A.

reader is the library a user would most likely script this job with (feeds on SQLite, conditional
GET, feedparser underneath). It runs from the bench venv (``$BENCH_VENV``, where bench/run installs
it, pinned), with its defaults: ``make_reader(db)``, ``add_feed(url)`` for each feed, ``update_feeds()``
— but ``scheduled=False``: by default reader 3.x updates only the feeds due by its schedule (an hour
after the last update), so a second call right after checks no feed at all (it returns in 1 ms).
A no-change sync checks every feed; so does this.

Two modes, each a fresh process as a user's cron job would be:

- ``cold``: a fresh database; every feed added, then ``update_feeds()`` once (timed);
- ``again``: the same database; ``update_feeds()`` once more (timed): every feed answers 304.

Prints one JSON object: seconds (the ``update_feeds()`` call alone), add_seconds, import_seconds,
feeds, entries, broken (feeds whose last update failed), reader (its version).

Usage: python bench/reader_baseline.py DB URLS.json cold|again
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> int:
    db, urls_file, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    urls = json.loads(urls_file.read_text())
    t0 = time.perf_counter()
    import reader
    from reader import make_reader

    import_seconds = time.perf_counter() - t0
    if mode == "cold":
        Path(db).unlink(missing_ok=True)
    with make_reader(db) as feeds:
        t1 = time.perf_counter()
        if mode == "cold":
            for url in urls:
                feeds.add_feed(url)
        add_seconds = time.perf_counter() - t1
        t2 = time.perf_counter()
        feeds.update_feeds(scheduled=False)
        seconds = time.perf_counter() - t2
        entries = feeds.get_entry_counts().total
        broken = feeds.get_feed_counts(broken=True).total
    print(json.dumps({"seconds": seconds, "add_seconds": add_seconds, "import_seconds": import_seconds,
                      "feeds": len(urls), "entries": entries, "broken": broken, "reader": reader.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
