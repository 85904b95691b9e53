"""The floor under benchmark B: what any no-change sync built on syndicate's chosen libraries must do.

Imports click, pydantic, SQLAlchemy and urllib3 (the CLI, config, store and fetch libraries the project
chose), validates each ``[sources.*]`` table with a small pydantic model, reads the stored validators of
every feed with SQLAlchemy, sends the same conditional GETs at the same concurrency (8, syndicate's
default), hashes each body that comes back (all a no-change check can do with a server that sends no
validators, as B′'s), and writes each feed's check time back in one transaction. Nothing else: no permission rules,
no identity, no ledger, no summary. A no-change sync cannot be faster than this on the same libraries.

The libraries are imported with the garbage collector off and frozen before the work starts, as syndicate's entry
point does (`syndicate.cli.main`): with the collector on, its collections during the imports cost this script about
40 ms that syndicate does not pay, and the floor would sit above what the libraries need.

Usage: python bench/b_floor.py CONFIG.toml STATE.db   (use a copy of the state: it writes to it)
Prints one JSON object: seconds (inside the process, imports included), responses by status.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import gc  # noqa: E402

gc.disable()  # until the libraries are loaded, as syndicate's entry point does

import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tomllib  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import click  # noqa: E402, F401 (the CLI library: imported as the CLI does)
import pydantic  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import urllib3  # noqa: E402


class Source(pydantic.BaseModel):
    name: str
    feed: str
    site_url: str
    license: str | None = None


def main() -> int:
    gc.freeze()  # what the imports made lives until the end: kept out of the collections of the work
    gc.enable()
    config, state = sys.argv[1], sys.argv[2]
    with open(config, "rb") as handle:
        sources = {sid: Source.model_validate(table) for sid, table in tomllib.load(handle)["sources"].items()}
    engine = sa.create_engine(f"sqlite:///{state}")
    feeds = sa.Table("feeds", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        stored = {row.source: row for row in conn.execute(sa.select(feeds.c.source, feeds.c.etag,
                                                                         feeds.c.last_modified))}
    pool = urllib3.PoolManager(maxsize=8)

    def check(sid: str) -> tuple[str, int]:
        row, headers = stored.get(sid), {}
        if row is not None and row.etag:
            headers["If-None-Match"] = row.etag
        if row is not None and row.last_modified:
            headers["If-Modified-Since"] = row.last_modified
        response = pool.request("GET", sources[sid].feed, headers=headers, timeout=30)
        hashlib.sha256(response.data).hexdigest()
        return sid, response.status

    with ThreadPoolExecutor(8) as threads:
        statuses = list(threads.map(check, sources))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with engine.begin() as conn:
        conn.execute(feeds.update().where(feeds.c.source == sa.bindparam("sid")).values(fetched_at=sa.bindparam("at")),
                     [{"sid": sid, "at": now} for sid, _ in statuses])
    engine.dispose()
    print(json.dumps({"seconds": time.perf_counter() - T0, "statuses": Counter(str(s) for _, s in statuses)}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        gc.freeze()  # as syndicate's entry point does: no final collection over the libraries' objects
