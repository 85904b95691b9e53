"""A separate process for the PostgreSQL tests, as another run (or host) would be.

``python -m tests.pg_worker '{"mode": …, …}'`` prints one JSON line per event on stdout:

* ``claim``: open ``Claims`` on ``url`` (``lease``), wait until ``start_at`` (so that several workers
  start together), take ``name``: ``{"event": "taken"}`` or ``{"event": "held"}``; a holder then
  checks its claim every 20 ms until ``hold`` seconds passed (``released``) or it is lost
  (``{"event": "lost", "reason": …}``), and exits.
* ``migrate``: wait until ``start_at``, create the store's schema with ``migrate_once``:
  ``{"event": "migrated", "created": true|false}``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


def wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


def create_schema(conn: Connection) -> bool:
    """The store's tables and the claims table, and a schema version row; whether this call created them."""
    from syndicate import postgres
    from syndicate import schema as store

    created = not inspect(conn).has_table("meta")
    time.sleep(0.2)  # widen the window in which runs without the lock would collide
    store.metadata.create_all(conn)
    postgres.claims_metadata.create_all(conn)
    if conn.execute(select(store.meta.c.value).where(store.meta.c.key == "schema_version")).first() is None:
        conn.execute(store.meta.insert().values(key="schema_version", value=str(store.SCHEMA_VERSION)))
    return created


def main(args: dict[str, Any]) -> int:
    from syndicate import postgres
    from syndicate.errors import ClaimLost, StoreUnavailable

    engine = postgres.create_engine(args["url"], password=args["password"], lease_seconds=args.get("lease", 60))
    if args["mode"] == "migrate":
        wait_until(args.get("start_at", 0))
        say("migrated", created=postgres.migrate_once(engine, create_schema))
        return 0
    claims = postgres.Claims(engine, lease_seconds=args.get("lease", 60))
    wait_until(args.get("start_at", 0))
    claim = claims.take(args["name"])
    if claim is None:
        say("held")
        return 0
    say("taken", token=claim.token)
    until = time.monotonic() + args.get("hold", 60)
    while time.monotonic() < until:
        try:
            claim.check()
        except (ClaimLost, StoreUnavailable) as exc:
            say("lost", reason=str(exc))
            return 3
        time.sleep(0.02)
    claims.close()
    say("released")
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
