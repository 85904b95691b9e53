"""Baseline for benchmark A: ``feedparser.parse`` with its defaults on the same bytes, in one interpreter.

Reads a JSON manifest ``[[path, url], ...]``, loads every file's bytes first, then times only the parse
loop (``feedparser.parse(data, response_headers={"content-location": url})``, sanitising and relative
URI resolution on, as by default). Prints one JSON object: seconds (wall), cpu (process time), entries,
feeds, bozo (feeds flagged not well-formed).

Usage: python bench/fp_baseline.py MANIFEST.json
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path


def main() -> int:
    manifest = json.loads(Path(sys.argv[1]).read_text())
    import feedparser

    jobs = [(Path(path).read_bytes(), url) for path, url in manifest]
    gc.collect()
    entries = bozo = 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for data, url in jobs:
        parsed = feedparser.parse(data, response_headers={"content-location": url})
        entries += len(parsed.entries)
        bozo += bool(parsed.get("bozo"))
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(json.dumps({"seconds": seconds, "cpu": cpu, "entries": entries, "feeds": len(jobs), "bozo": bozo,
                      "feedparser": feedparser.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
