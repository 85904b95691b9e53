"""The PostgreSQL primitives of the shared state store, against a real PostgreSQL on 127.0.0.1.

Other runs are other processes (tests/pg_worker.py), as other hosts would be; a connection that goes
silent goes through a proxy that stops forwarding (tests/tcp_proxy.py); a restart is ``pg_ctl restart``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from syndicate import postgres as pg
from syndicate.errors import ClaimLost, StoreUnavailable

from .conftest import REPO, PostgresDatabase
from .tcp_proxy import SilentProxy


class Worker:
    """A tests/pg_worker.py process; its JSON events, read as they come."""

    started: list[Worker] = []

    def __init__(self, **args: Any) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.pg_worker", json.dumps(args)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        Worker.started.append(self)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def next(self, timeout: float = 30) -> dict[str, Any]:
        """The next event (``exit`` when the process ended without one more)."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event from the worker within {timeout} s") from None

    def finish(self) -> tuple[int, str]:
        """Wait for the process (kill it if it lingers); its exit code and stderr."""
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """Every worker a test started is gone when it ends (a failed or interrupted test included)."""
    yield
    while Worker.started:
        worker = Worker.started.pop()
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


def claim_worker(db: PostgresDatabase, name: str, **args: Any) -> Worker:
    return Worker(mode="claim", url=db.url, password=db.password, name=name, **args)


def prepared(db: PostgresDatabase, **engine_options: Any) -> Any:
    """An engine on ``db`` whose schema (store and claims tables) exists."""
    from .pg_worker import create_schema

    engine = db.engine(**engine_options)
    pg.migrate_once(engine, create_schema)
    return engine


def take_within(claims: pg.Claims, name: str, seconds: float) -> tuple[pg.Claim | None, float]:
    """Try to take ``name`` every 50 ms for up to ``seconds``: the claim (or None) and the time it took."""
    started = time.monotonic()
    while True:
        claim = claims.take(name)
        if claim is not None or time.monotonic() - started >= seconds:
            return claim, time.monotonic() - started
        time.sleep(0.05)


# --- the schema, once --------------------------------------------------------------------------


def test_runs_starting_together_create_the_schema_once(postgres: PostgresDatabase) -> None:
    start_at = time.time() + 2.5  # every worker has connected by then
    workers = [Worker(mode="migrate", url=postgres.url, password=postgres.password, start_at=start_at)
               for _ in range(6)]
    events = [w.next() for w in workers]
    results = [w.finish() for w in workers]
    assert [code for code, _ in results] == [0] * 6, [err for _, err in results]
    assert sorted(e["created"] for e in events) == [False] * 5 + [True]
    engine = postgres.engine()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM meta WHERE key = 'schema_version'")).scalar_one() == 1


def test_on_sqlite_migrate_once_is_one_transaction(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from .pg_worker import create_schema

    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    assert pg.migrate_once(engine, create_schema) is True
    assert pg.migrate_once(engine, create_schema) is False
    with pytest.raises(RuntimeError):
        pg.migrate_once(engine, fail_after_ddl)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'half'")).scalar_one() == 0


def test_a_migration_that_fails_midway_leaves_no_trace_and_no_lock(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    with pytest.raises(RuntimeError):
        pg.migrate_once(engine, fail_after_ddl)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('half')")).scalar_one() is None
    assert pg.migrate_once(engine, lambda conn: "the lock went with the transaction") is not None


def fail_after_ddl(conn: Any) -> None:
    conn.execute(text("CREATE TABLE half (x INTEGER)"))
    raise RuntimeError("the migration failed midway")


# --- claims ------------------------------------------------------------------------------------


def test_of_several_runs_claiming_one_partner_one_gets_it(postgres: PostgresDatabase) -> None:
    prepared(postgres)
    start_at = time.time() + 2.5
    workers = [claim_worker(postgres, "partner:wp", start_at=start_at, hold=2) for _ in range(4)]
    first = [w.next()["event"] for w in workers]
    assert sorted(first) == ["held", "held", "held", "taken"]
    for w in workers:
        w.finish()


def test_a_claim_holds_off_others_and_is_released(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    with pg.Claims(engine, lease_seconds=30) as mine, pg.Claims(engine, lease_seconds=30) as theirs:
        claim = mine.take("feed:blog")
        assert claim is not None
        assert mine.take("feed:blog") is claim  # taking again is a no-op, not a second lock
        assert theirs.take("feed:blog") is None
        assert theirs.holder_of("feed:blog") == mine.holder
        assert theirs.take("feed:other") is not None  # one name does not hold another
        mine.release(claim)
        with pytest.raises(ClaimLost):
            claim.check()
        assert theirs.take("feed:blog") is not None


def advisory_locks_of(db: PostgresDatabase, claims: pg.Claims) -> int:
    """How many advisory locks the claims connection of ``claims`` holds on the server."""
    rows = db.cluster.admin_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid IN "
        f"(SELECT pid FROM pg_stat_activity WHERE datname = '{db.name}' AND backend_type = 'client backend' "
        f"AND pid = (SELECT backend_pid FROM claims WHERE holder = '{claims.holder}' LIMIT 1))",
        database=db.name)
    return int(rows[0][0])  # type: ignore[call-overload]


def test_take_many_takes_what_is_free_up_to_the_limit_and_no_lock_more(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    names = [f"feed:{i}" for i in range(10)]
    with pg.Claims(engine, lease_seconds=30) as mine, pg.Claims(engine, lease_seconds=30) as theirs:
        first = mine.take_many(names[::2])
        assert sorted(first) == sorted(names[::2])
        some = theirs.take_many(names, limit=3)
        assert list(some) == names[1:7:2]  # the first three free ones, in order
        assert advisory_locks_of(postgres, theirs) == 3  # none tried past the limit
        rest = theirs.take_many(names)
        assert sorted(rest) == sorted(names[1::2])  # the three again, and the other two
        assert advisory_locks_of(postgres, theirs) == 5
        mine.release(*first.values())
        assert sorted(theirs.take_many(names)) == names
        assert advisory_locks_of(postgres, mine) == 0


def test_thousands_of_feeds_are_taken_in_batches(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    names = [f"feed:{i}" for i in range(5000)]
    with pg.Claims(engine, lease_seconds=30) as claims:
        started = time.monotonic()
        for start in range(0, len(names), 1000):
            batch = claims.take_many(names[start:start + 1000])
            assert len(batch) == 1000
            claims.release(*batch.values())
        took = time.monotonic() - started
    print(f"5000 feed claims taken and released in batches of 1000: {took:.2f} s")
    assert took < 30


def test_kill_9_of_the_holder_frees_the_claim_at_once(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    holder = claim_worker(postgres, "partner:wp", lease=30)  # a lease far longer than the takeover
    assert holder.next()["event"] == "taken"
    with pg.Claims(engine, lease_seconds=30) as other:
        assert other.take("partner:wp") is None
        os.kill(holder.proc.pid, signal.SIGKILL)
        claim, waited = take_within(other, "partner:wp", 10)
        assert claim is not None
        print(f"taken over {waited:.2f} s after kill -9 of the holder (lease 30 s)")
        assert waited < 2, f"took {waited:.2f} s after kill -9"
    holder.finish()


def test_a_silent_connection_loses_its_hold_within_the_lease(postgres: PostgresDatabase) -> None:
    lease = 3.0
    engine = prepared(postgres)
    with SilentProxy(("127.0.0.1", postgres.cluster.port)) as proxy:
        via_proxy = postgres.cluster.url(postgres.name, port=proxy.port)
        holder = Worker(mode="claim", url=via_proxy, password=postgres.password, name="partner:wp", lease=lease,
                        hold=60)
        assert holder.next()["event"] == "taken"
        with pg.Claims(engine, lease_seconds=lease) as other:
            time.sleep(lease / 2)  # at least one renewal went through the proxy
            assert other.take("partner:wp") is None
            proxy.go_silent()
            silent_at = time.time()
            claim, waited = take_within(other, "partner:wp", lease * 3)
            assert claim is not None, "the silent holder kept its claim"
            assert waited <= lease + 1.0, f"taken over {waited:.2f} s after the connection went silent"
            lost = holder.next(timeout=lease * 3)
            assert lost["event"] == "lost"
            print(f"silent connection, lease {lease:g} s: taken over after {waited:.2f} s, "
                  f"the holder stopped after {lost['t'] - silent_at:.2f} s ({lost['reason']})")
            assert lost["t"] - silent_at <= lease, f"the holder noticed after {lost['t'] - silent_at:.2f} s"
            # the holder's session was ended on the server, so its lock is gone for good
            assert other.take("partner:wp") is claim
    holder.finish()


def test_a_silent_run_of_another_role_is_not_ended_and_no_one_waits_on_it(postgres: PostgresDatabase) -> None:
    lease = 2.0
    engine = prepared(postgres)
    other = f"other_{postgres.name}"
    postgres.cluster.admin_sql(f"CREATE ROLE {other} LOGIN PASSWORD '{postgres.password}'")
    postgres.cluster.admin_sql(f"GRANT ALL ON claims TO {other}", database=postgres.name)
    with SilentProxy(("127.0.0.1", postgres.cluster.port)) as proxy:
        holder = Worker(mode="claim", url=f"postgresql://{other}@127.0.0.1:{proxy.port}/{postgres.name}",
                        password=postgres.password, name="partner:wp", lease=lease, hold=60)
        assert holder.next()["event"] == "taken"
        proxy.go_silent()
        assert holder.next(timeout=lease * 3)["event"] == "lost"  # the holder stops all the same
        time.sleep(lease)
        with pg.Claims(engine, lease_seconds=lease) as mine:
            started = time.monotonic()
            assert mine.take("partner:wp") is None  # its session may not be ended by another role
            assert time.monotonic() - started < 0.5
    holder.finish()


def test_a_restart_loses_the_claims_and_fails_the_store_cleanly(postgres: PostgresDatabase) -> None:
    lease = 3.0
    engine = prepared(postgres)
    holder = claim_worker(postgres, "partner:wp", lease=lease, hold=60)
    assert holder.next()["event"] == "taken"
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        postgres.cluster.restart()
        restarted_at = time.time()
        with pytest.raises(StoreUnavailable) as failure, pg.store_errors(engine.url):
            conn.execute(text("SELECT 1"))
    message = str(failure.value)
    assert "\n" not in message and postgres.password not in message
    assert message.startswith(f"the state store (PostgreSQL at 127.0.0.1:{postgres.cluster.port}/{postgres.name})")
    lost = holder.next(timeout=lease * 3)
    print(f"restart, lease {lease:g} s: the holder stopped {lost['t'] - restarted_at:.2f} s after the restart")
    assert lost["event"] == "lost" and lost["t"] - restarted_at <= lease
    holder.finish()
    with pg.Claims(engine, lease_seconds=lease) as after:  # the next run goes on at once
        claim, waited = take_within(after, "partner:wp", 5)
        assert claim is not None and waited < 1


def test_a_fenced_write_fails_once_the_claim_changed_hands(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    mine = pg.Claims(engine, lease_seconds=30)
    claim = mine.take("partner:wp")
    assert claim is not None
    with engine.begin() as conn:
        claim.fence(conn)  # still ours
    # The server ends the holder's session (as a takeover or a restart would): another run takes over.
    postgres.cluster.admin_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               f"WHERE datname = '{postgres.name}' AND application_name = 'syndicate' "
                               f"AND pid = (SELECT backend_pid FROM claims WHERE name = 'partner:wp')",
                               database=postgres.name)
    with pg.Claims(engine, lease_seconds=30) as theirs:
        taken, _ = take_within(theirs, "partner:wp", 5)
        assert taken is not None
        with pytest.raises(ClaimLost), engine.begin() as conn:
            claim.fence(conn)
    mine.close()


def test_a_takeover_waits_for_the_fenced_write_of_the_last_holder(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    mine = pg.Claims(engine, lease_seconds=30)
    claim = mine.take("partner:wp")
    assert claim is not None
    with engine.begin() as conn:
        claim.fence(conn)
        mine.close()  # the lock is gone, but this write is still in flight under the claim
        with pg.Claims(engine, lease_seconds=30, call_timeout=1) as theirs:
            assert theirs.take("partner:wp") is None  # it waited for the write (lock_timeout), then gave up
            conn.execute(text("SELECT 1"))
    with pg.Claims(engine, lease_seconds=30) as theirs:
        assert theirs.take("partner:wp") is not None  # committed: the takeover goes through


# --- "PostgreSQL went away" is told from an ordinary error --------------------------------------


def test_ordinary_errors_are_not_taken_for_a_server_gone(postgres: PostgresDatabase) -> None:
    engine = prepared(postgres)
    with engine.connect() as first, engine.connect() as second:
        second.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
        with pytest.raises(Exception) as duplicate:
            first.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', 'x')"))
        first.rollback()
        with pytest.raises(Exception) as lock_timeout:  # second holds the row it inserted, uncommitted
            first.execute(text("SET LOCAL lock_timeout = '100ms'"))
            first.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'w')"))
        first.rollback()
        with pytest.raises(Exception) as cancelled:
            first.execute(text("SET LOCAL statement_timeout = '50ms'"))
            first.execute(text("SELECT pg_sleep(1)"))
        for error in (duplicate.value, lock_timeout.value, cancelled.value):
            assert not pg.is_gone(error), error
            with pytest.raises(type(error)), pg.store_errors(engine.url):
                raise error


def test_an_unreachable_server_is_store_unavailable(postgres: PostgresDatabase) -> None:
    with SilentProxy(("127.0.0.1", postgres.cluster.port)) as proxy:
        port = proxy.port
    # nothing listens on that port any more
    engine = pg.create_engine(postgres.cluster.url(postgres.name, port=port), password=postgres.password)
    with pytest.raises(StoreUnavailable) as failure, pg.store_errors(engine.url):
        engine.connect()
    assert "\n" not in str(failure.value)


# --- engines and secrets -----------------------------------------------------------------------


def test_the_password_travels_outside_the_url_and_never_prints(postgres: PostgresDatabase) -> None:
    engine = postgres.engine()
    assert engine.url.drivername == "postgresql+psycopg"
    assert postgres.password not in repr(engine) and postgres.password not in str(engine.url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == "syndicate"
        # the server's side of the socket gives up on a silent client too (lease 60 s)
        assert [conn.execute(text(f"SHOW {name}")).scalar_one() for name in (
            "idle_in_transaction_session_timeout", "tcp_keepalives_idle", "tcp_keepalives_interval",
            "tcp_keepalives_count", "tcp_user_timeout")] == ["1min", "10", "5", "3", "30000"]
    wrong = pg.create_engine(postgres.url, password="not-" + postgres.password)
    with pytest.raises(Exception) as refused:
        wrong.connect()
    from syndicate import redact

    assert ("not-" + postgres.password) not in redact.redact(str(refused.value))


def test_a_password_in_the_url_is_refused() -> None:
    with pytest.raises(ValueError, match="must not carry a password"):
        pg.create_engine("postgresql://syndicate:hunter22@127.0.0.1/db")


def test_lock_keys_are_stable_and_distinct() -> None:
    # Fixed values: every host, every Python and every version of syndicate must derive the same key
    # for a name, or two runs of different versions would both "hold" one partner.
    assert (pg.advisory_key("partner:wp"), pg.advisory_key("feed:blog"), pg.advisory_key("schema")) == (
        -2950293187833573590, -8716686772657743911, 6217558235673485267)
    keys = {pg.advisory_key(f"{kind}:{i}") for kind in ("feed", "partner") for i in range(5000)}
    assert len(keys) == 10000
    assert all(-(2**63) <= k < 2**63 for k in keys)


# --- any sequence of takings, releases and runs ending keeps one holder per name --------------


def test_any_sequence_of_claims_keeps_one_holder_per_name(postgres: PostgresDatabase) -> None:
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

    engine = prepared(postgres)
    names = st.sampled_from(["feed:a", "feed:b", "partner:x", "partner:y"])
    runs = st.integers(0, 2)

    class ThreeRuns(RuleBasedStateMachine):
        """Three runs on one database; the model says who holds what."""

        def __init__(self) -> None:
            super().__init__()
            with engine.begin() as conn:  # what an earlier example's runs left
                conn.execute(text("DELETE FROM claims"))
            self.runs = [pg.Claims(engine, lease_seconds=30) for _ in range(3)]
            self.holder: dict[str, int] = {}

        @rule(run=runs, name=names)
        def take(self, run: int, name: str) -> None:
            claim = self.runs[run].take(name)
            free = self.holder.get(name, run) == run
            assert (claim is not None) == free
            if claim is not None:
                self.holder[name] = run

        @rule(run=runs, wanted=st.lists(names, max_size=4), limit=st.none() | st.integers(0, 3))
        def take_many(self, run: int, wanted: list[str], limit: int | None) -> None:
            taken = self.runs[run].take_many(wanted, limit=limit)
            already = {n for n in wanted if self.holder.get(n) == run}
            free = [n for n in dict.fromkeys(wanted) if n not in self.holder]
            expected = already | set(free if limit is None else free[:limit])
            assert set(taken) == expected
            self.holder.update({n: run for n in taken})

        @rule(run=runs, name=names)
        def release(self, run: int, name: str) -> None:
            claim = next((c for c in self.runs[run].held if c.name == name), None)
            if claim is not None:
                self.runs[run].release(claim)
                del self.holder[name]

        @rule(run=runs)
        def run_ends(self, run: int) -> None:
            self.runs[run].close()  # its session ends: everything it held is free
            self.runs[run] = pg.Claims(engine, lease_seconds=30)
            self.holder = {n: r for n, r in self.holder.items() if r != run}

        @invariant()
        def the_server_agrees(self) -> None:
            with engine.connect() as conn:
                rows = dict(conn.execute(text("SELECT name, holder FROM claims")).all())
            assert rows == {n: self.runs[r].holder for n, r in self.holder.items()}

        def teardown(self) -> None:
            for claims in self.runs:
                claims.close()

    run_state_machine_as_test(ThreeRuns, settings=settings(
        max_examples=12, stateful_step_count=12, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
