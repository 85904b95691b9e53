"""PostgreSQL primitives for a state store that several hosts share.

What the store needs from PostgreSQL, and nothing of the ledger itself:

* ``create_engine``: a SQLAlchemy engine on the ``postgresql+psycopg`` driver for a ``postgresql://``
  URL, the password passed to the driver (never in a URL that could be printed), and the connection
  settings that make the server drop a client that went silent (see ``connect_args``);
* ``migrate_once``: schema creation and migration under a transaction-scoped advisory lock, so that
  of several runs starting at once exactly one does it and the others then see it done;
* ``Claims``: the feeds and partners one run holds. A claim is a session-level advisory lock *and* a
  lease row (see ``Claims`` for why both);
* ``StoreUnavailable`` for "PostgreSQL went away mid-run" (``store_errors``, ``is_gone``), which the
  pipeline maps to one clear line and exit 1.

Keys of advisory locks are 64-bit integers derived from a stable name (``advisory_key``): the same on
every host and in every Python, so "partner:wp" is one lock for all runs sharing the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import sqlalchemy
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, text
from sqlalchemy.engine import URL, Connection, Engine, make_url

from . import redact
from .errors import ClaimLost, StoreUnavailable

T = TypeVar("T")

#: The only driver syndicate speaks PostgreSQL through (psycopg 3).
DRIVER = "postgresql+psycopg"
#: Schemes a ``[state] url`` may use for PostgreSQL (``postgres://`` is refused with a hint).
SCHEMES = ("postgresql", DRIVER)
#: Names every lock key is derived under, so that keys do not collide with another application's
#: advisory locks in the same database.
KEY_NAMESPACE = "syndicate:"
SCHEMA_LOCK = "schema"

# SQLSTATEs that mean the session is over (class 08: connection exception; 57P01 admin shutdown,
# 57P02 crash shutdown, 57P03 cannot connect now, i.e. the server is starting or stopping).
_GONE_CLASSES = ("08",)
_GONE_STATES = frozenset({"57P01", "57P02", "57P03"})


# --- URLs and engines ---------------------------------------------------------------------------


def check_url(url: str) -> str:
    """A PostgreSQL state URL as given, or ValueError saying what is wrong (never repeating the URL).

    A password in the URL is refused: URLs get printed (in messages, in ``ps``, in shell history),
    so the password comes from ``[state] password`` or the client's own ``PGPASSWORD``/``~/.pgpass``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "postgres":
        raise ValueError("write postgresql://, not postgres://")
    if scheme not in SCHEMES:
        raise ValueError(f"a PostgreSQL state store is reached with psycopg: use postgresql:// (not {scheme}://)")
    try:
        parsed = make_url(url)
    except Exception:
        raise ValueError("is not a valid URL: postgresql://user@host:port/database") from None
    if parsed.password is not None or "password" in parsed.query:
        raise ValueError('must not carry a password: give it as [state] password = { env = "NAME" } '
                         'or { file = "path" }')
    if not parsed.database:
        raise ValueError("must name a database: postgresql://user@host:port/database")
    return url


def engine_url(url: str) -> URL:
    """The SQLAlchemy URL of a ``postgresql://`` state URL, on the psycopg 3 driver."""
    return make_url(url).set(drivername=DRIVER)


def describe(url: str | URL) -> str:
    """``host:port/database`` of a state URL, for messages (no user, no password)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def connect_args(*, password: str | None = None, lease_seconds: float = 60,
                 application_name: str = "syndicate") -> dict[str, Any]:
    """libpq connection parameters for a run's connections, scaled to the lease.

    Both ends are told to give up on a peer that went silent well within one lease, so that a host
    powered off or cut from the network loses its advisory locks on the server and its client
    notices: TCP keepalives and ``tcp_user_timeout`` on the client (libpq parameters) and the same on
    the server's side of the socket (``-c`` options, which any role may set for its own session).
    ``idle_in_transaction_session_timeout`` ends a session that went silent inside a transaction, so
    its row locks do not block the run that takes its work over; ``synchronous_commit=on`` keeps
    every commit durable (an intent) even on a server configured otherwise. None of this helps when a proxy
    keeps acknowledging TCP but forwards nothing: the lease is for that (``Claims``)."""
    lease = max(1.0, float(lease_seconds))
    idle = max(1, int(lease / 6))          # first probe after ~10 s of silence at the default 60 s
    interval = max(1, int(lease / 12))
    count = 3
    user_timeout_ms = max(1000, int(lease * 1000 / 2))
    options = " ".join(f"-c {name}={value}" for name, value in (
        ("idle_in_transaction_session_timeout", f"{int(lease * 1000)}ms"),
        # A write's intent must be on disk when its commit returns, whatever the server's default:
        # with synchronous_commit off, a crash of PostgreSQL loses the last commits it acknowledged,
        # and a copy created after its lost intent would be created again (a duplicate).
        ("synchronous_commit", "on"),
        ("tcp_keepalives_idle", idle), ("tcp_keepalives_interval", interval), ("tcp_keepalives_count", count),
        ("tcp_user_timeout", user_timeout_ms),
        # PostgreSQL 14+: a query still running for a client that is gone is stopped.
        ("client_connection_check_interval", f"{max(1000, int(lease * 1000 / 6))}ms"),
    ))
    args: dict[str, Any] = {
        "connect_timeout": max(2, int(lease / 6)),
        "keepalives": 1, "keepalives_idle": idle, "keepalives_interval": interval, "keepalives_count": count,
        "tcp_user_timeout": user_timeout_ms,
        "application_name": application_name,
        "options": options,
    }
    if password is not None:
        args["password"] = password
    return args


def create_engine(url: str, *, password: str | None = None, lease_seconds: float = 60,
                  application_name: str = "syndicate", **engine_options: Any) -> Engine:
    """An engine for a ``postgresql://`` state URL (checked with ``check_url``) on psycopg 3.

    The password travels in the connect arguments, so ``engine.url`` never holds it; it and
    ``PGPASSWORD`` are registered with the redactor, so no message or traceback prints them."""
    check_url(url)
    for secret in (password, os.environ.get("PGPASSWORD")):
        if secret:
            redact.register(secret)
    return sqlalchemy.create_engine(
        engine_url(url),
        connect_args=connect_args(password=password, lease_seconds=lease_seconds,
                                  application_name=application_name),
        **engine_options)


# --- "PostgreSQL went away" ---------------------------------------------------------------------


def is_gone(exc: BaseException) -> bool:
    """Whether an error means the server went away or cannot be reached (not a bad query or a conflict).

    Judged by the SQLSTATE, not the message: no SQLSTATE at all is a client-side failure of the
    connection (refused, reset, closed, timed out), class 08 a connection exception, and 57P01-03 a
    server shutting down, crashed or starting. Serialization failures, lock timeouts and constraint
    violations are ordinary errors of the statement, even though psycopg calls some of them
    ``OperationalError``."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(_GONE_CLASSES) or state in _GONE_STATES


def unavailable(exc: BaseException, url: str | URL) -> StoreUnavailable:
    """The one-line error for a server that went away (first line of the driver's message, redacted)."""
    orig = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None else exc
    reason = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    return StoreUnavailable(redact.redact(
        f"the state store (PostgreSQL at {describe(url)}) went away: {reason}; "
        "the remaining work is left for the next run"))


@contextlib.contextmanager
def store_errors(url: str | URL) -> Iterator[None]:
    """Turn "the server went away" inside the block into ``StoreUnavailable``; other errors pass."""
    try:
        yield
    except (sqlalchemy.exc.DBAPIError, psycopg.Error) as exc:
        if is_gone(exc):
            raise unavailable(exc, url) from None
        raise


# --- the schema, once ---------------------------------------------------------------------------


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name ("feed:blog", "partner:wp", "schema")."""
    digest = hashlib.blake2b((KEY_NAMESPACE + name).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def migrate_once(engine: Engine, migrate: Callable[[Connection], T]) -> T:
    """Run ``migrate`` in one transaction that holds the schema's advisory lock.

    Runs starting at once queue on ``pg_advisory_xact_lock``; the first creates or migrates the
    schema, and each later one finds it done when its turn comes (``migrate`` must look before it
    changes anything, as ``MetaData.create_all`` does). PostgreSQL's DDL is transactional, so a run
    that dies mid-migration leaves the schema as it was, and the lock goes with its transaction.

    On SQLite (one writer, the file's own lock) it is ``sqlite_store.schema_transaction``."""
    if engine.dialect.name == "sqlite":
        from .sqlite_store import schema_transaction

        return schema_transaction(engine, migrate)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(SCHEMA_LOCK)})
        return migrate(conn)


# --- statements that never get an answer ---------------------------------------------------------


class Watchdog:
    """Ends the wait of a statement whose answer does not come: after ``limit`` seconds, or at once
    once ``abandon`` was called (this run's claims are lost: nothing it writes may land any more).

    libpq waits for an answer as long as the socket stays up, and a connection that went silent
    (a proxy or NAT that stops forwarding but keeps acknowledging) keeps it up for ever: the run
    would hang. Shutting the socket down makes the waiting call fail at once with a connection error,
    which the store tells as the server gone (one line, exit 1). Only a connection that is running a
    statement is ever touched (libpq says so: ``ACTIVE``), so an idle one in the pool never is."""

    def __init__(self, engine: Engine, *, limit: float) -> None:
        self.limit = limit
        self.reason: str | None = None  # why a statement was cut (for the run's one line)
        self._abandoned: str | None = None
        self._running: dict[int, tuple[psycopg.Connection[Any], float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._engine = engine
        sqlalchemy.event.listen(engine, "before_cursor_execute", self._before)
        sqlalchemy.event.listen(engine, "after_cursor_execute", self._after)
        sqlalchemy.event.listen(engine, "handle_error", self._error)
        self._thread = threading.Thread(target=self._watch, name="statement-watchdog", daemon=True)
        self._thread.start()

    def abandon(self, reason: str) -> None:
        """Cut every statement waiting now or started from now on."""
        self._abandoned = self._abandoned or reason
        self._check()

    def close(self) -> None:
        """Stop watching (the engine's events stay, and do nothing more)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _before(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        with self._lock:
            self._running[id(cursor)] = (cursor.connection, time.monotonic())
        if self._abandoned is not None:
            self._check()

    def _after(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        with self._lock:
            self._running.pop(id(cursor), None)

    def _error(self, context: Any) -> None:
        cursor = getattr(context, "cursor", None)
        if cursor is not None:
            with self._lock:
                self._running.pop(id(cursor), None)

    def _watch(self) -> None:
        while not self._stop.wait(min(0.5, self.limit / 4)):
            self._check()

    def _check(self) -> None:
        now = time.monotonic()
        with self._lock:
            running = list(self._running.values())
        for conn, started in running:
            if self._abandoned is None and now - started < self.limit:
                continue
            if conn.closed or conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.ACTIVE:
                continue
            self.reason = self._abandoned or f"no answer from PostgreSQL within {self.limit:g} s"
            with contextlib.suppress(OSError, psycopg.Error):
                sock = socket.socket(fileno=os.dup(conn.fileno()))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()


# --- claims -------------------------------------------------------------------------------------

claims_metadata = MetaData()

#: One row per claim held (or last held): who, from which server session, until when.
#: ``token`` changes with every taking, so a write fenced on it fails once the claim changed hands.
claims = Table(
    "claims", claims_metadata,
    Column("name", String, primary_key=True),          # "feed:<id>" or "partner:<id>"
    Column("holder", String, nullable=False),          # host, pid and a random run id
    Column("backend_pid", Integer, nullable=False),    # the server process of the holder's claim session
    Column("token", String, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # the server's clock, never a host's
)


def holder_name() -> str:
    """This run's name in the claims table: host, process and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(eq=False)
class Claim:
    """A feed or partner this run holds; ``check`` before acting on it, ``fence`` inside a ledger write."""

    name: str
    token: str
    claims: Claims = field(repr=False)
    #: time.monotonic() after which the lease may have run out, as far as this host can know.
    valid_until: float = 0.0
    lost_reason: str | None = None

    def check(self) -> None:
        """Raise ClaimLost when this claim may no longer be ours (lease ran out, taken over, released)."""
        reason = self.lost_reason or self.claims.lost_reason
        if reason is None and time.monotonic() >= self.valid_until - self.claims.safety_margin:
            reason = f"its lease of {self.claims.lease_seconds:g} s ran out without a renewal"
        if reason is not None:
            raise ClaimLost(f"{self.name} is no longer held by this run: {reason}")

    def fence(self, conn: Connection) -> None:
        """Inside a store transaction: raise ClaimLost unless this claim is still ours, and keep it so.

        ``FOR KEY SHARE`` on our claims row lasts until the transaction ends, and a taking deletes the
        row first: a run taking the claim over waits for this write to commit (and then sees it), or
        this write fails. The heartbeat's renewal (not a key update) is not blocked by it."""
        self.check()
        row = conn.execute(select_fence, {"name": self.name, "token": self.token}).first()
        if row is None:
            self.lost_reason = "another run took it over"
            raise ClaimLost(f"{self.name} is no longer held by this run: another run took it over")


select_fence = text("SELECT 1 FROM claims WHERE name = :name AND token = :token FOR KEY SHARE")

_LOCK_HOLDER = """
SELECT c.holder, c.backend_pid, c.expires_at <= now() AS expired, l.pid
FROM (SELECT 1) AS one
LEFT JOIN claims AS c ON c.name = %(name)s
LEFT JOIN pg_locks AS l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND l.classid = %(high)s AND l.objid = %(low)s
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class Claims:
    """The feeds and partners one run holds, on one connection of its own, renewed by a heartbeat.

    One claim = a session-level advisory lock + a lease row:

    * The advisory lock (``pg_try_advisory_lock``) says who holds it, and dies with its server
      session: a holder killed (``kill -9``), a server restarted, a host whose connection the server
      drops (keepalives) — the next run takes over at once, without waiting for any lease.
    * The lease (``claims.expires_at``, renewed every third of ``lease_seconds``) covers what the
      lock cannot see: a connection that goes silent while TCP stays up (a proxy or NAT that stops
      forwarding but still acknowledges), where the server keeps the holder's session, and so its
      lock, forever. A run that finds the lock held *and* the lease run out ends the holder's session
      (``pg_terminate_backend``, allowed on sessions of one's own role) and takes the lock. The holder
      itself stops within the lease: every call on this connection has a deadline, after which the
      socket is shut down, and ``Claim.check`` fails once the last renewal is ``lease_seconds`` old
      (measured from when the renewal was sent, so never later than the server's expiry).
    * ``token`` fences the ledger: a write made under ``Claim.fence`` cannot land after a takeover.

    A lock alone misses silent connections; a lease alone makes every takeover after a crash wait a
    whole lease. Together: at once when the session is gone, within ``lease_seconds`` when it is only
    silent; and every comparison of times is the server's ``now()``, so hosts' clocks do not matter.

    One thread takes and releases (the heartbeat is its own). All runs should connect as one role
    (or hold ``pg_signal_backend``): ending another role's session is refused.
    """

    def __init__(self, engine: Engine, *, lease_seconds: float = 60, holder: str | None = None,
                 call_timeout: float | None = None, on_lost: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.on_lost = on_lost  # told once, when the claims are lost (the store stops its writes)
        self.lease_seconds = float(lease_seconds)
        self.holder = holder or holder_name()
        #: How long one call on the claims connection may take before the connection is given up.
        self.call_timeout = call_timeout if call_timeout is not None else max(1.0, self.lease_seconds / 3)
        self.safety_margin = min(2.0, self.lease_seconds / 10)
        self.lost_reason: str | None = None
        self._held: dict[str, Claim] = {}
        self._io = threading.Lock()      # one call at a time on the connection (heartbeat or caller)
        self._fd_lock = threading.Lock()  # the socket is shut down only while it is still ours
        self._closed = False
        self._stop = threading.Event()
        with store_errors(engine.url):
            self._raw = engine.raw_connection()  # kept for the run: the advisory locks live in its session
        conn = self._raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        self._conn: psycopg.Connection[Any] = conn
        self._conn.autocommit = True
        self._fd = self._conn.fileno()
        self._call("SELECT set_config('lock_timeout', %(ms)s, false)", {"ms": f"{max(500, int(self.call_timeout * 500))}ms"})
        self._heartbeat = threading.Thread(target=self._beat, name="claims-heartbeat", daemon=True)
        self._heartbeat.start()

    # --- taking and giving back ---------------------------------------------------------------

    def take(self, name: str) -> Claim | None:
        """Take ``name`` ("feed:<id>", "partner:<id>") if no other run holds it; None when one does.

        Raises StoreUnavailable when the server cannot be reached, ClaimLost when this run lost its
        connection's claims already."""
        return self.take_many([name]).get(name)

    def take_many(self, names: Iterable[str], *, limit: int | None = None) -> dict[str, Claim]:
        """Take those of ``names`` that no other run holds, at most ``limit`` new ones (in their order);
        name → claim for each taken now or held already. A few round trips, however many names.

        Bounded because each advisory lock of each session fills a slot of the server's shared lock
        table (``max_locks_per_transaction`` × ``max_connections``: 6,400 by default, for all runs
        together; more and every session gets "out of shared memory"): a run with 10,000 feeds takes
        them a batch at a time and releases each batch when it is recorded."""
        wanted = list(dict.fromkeys(names))
        result = {name: self._held[name] for name in wanted if name in self._held}
        fresh = [name for name in wanted if name not in self._held]
        if not fresh or limit == 0:
            return result
        got = self._try_locks(fresh, limit)
        if limit is None or len(got) < limit:
            # Rare: the lock is held but its lease ran out (a holder gone silent): one at a time.
            expired = self._call("SELECT name FROM claims WHERE name = ANY(%(names)s) AND expires_at <= now()",
                                 {"names": [name for name in fresh if name not in got]})
            for (name,) in expired:
                if limit is not None and len(got) >= limit:
                    break
                if self._take_over_expired(str(name), advisory_key(str(name))):
                    got.append(str(name))
        result.update(self._lease(got))
        return result

    def release(self, *claims: Claim) -> None:
        """Give claims back (their lease rows go, then the locks). Quietly nothing for one already lost."""
        mine = [c for c in claims if self._held.pop(c.name, None) is not None]
        for claim in mine:
            claim.lost_reason = claim.lost_reason or "released"
        if not mine or self.lost_reason is not None:
            return
        self._call("DELETE FROM claims WHERE name = ANY(%(names)s) AND token = ANY(%(tokens)s)",
                   {"names": [c.name for c in mine], "tokens": [c.token for c in mine]})
        self._unlock([c.name for c in mine])

    def holder_of(self, name: str) -> str | None:
        """Who holds ``name`` by the claims table (for messages), or None."""
        rows = self._call("SELECT holder FROM claims WHERE name = %(name)s AND expires_at > now()", {"name": name})
        return str(rows[0][0]) if rows else None

    @property
    def held(self) -> list[Claim]:
        """The claims this run holds now."""
        return list(self._held.values())

    def close(self) -> None:
        """Stop the heartbeat and close the connection: every claim is released with the session."""
        self._stop.set()
        if self._heartbeat.is_alive() and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=self.call_timeout + 1)
        if self._held and self.lost_reason is None:
            with contextlib.suppress(Exception):  # the locks go with the session anyway, but only once
                # the server has noticed it closed: let go now, so a run taking over finds them free
                self._call("DELETE FROM claims WHERE holder = %(holder)s AND backend_pid = pg_backend_pid()",
                           {"holder": self.holder})
                self._call("SELECT pg_advisory_unlock_all()")
        for claim in self._held.values():
            claim.lost_reason = claim.lost_reason or "released"
        self._held.clear()
        with self._fd_lock:
            self._closed = True
        with contextlib.suppress(Exception):
            self._raw.invalidate()  # never back to a pool: the session must end, and its locks with it

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------

    def _try_lock(self, key: int) -> bool:
        rows = self._call("SELECT pg_try_advisory_lock(%(key)s)", {"key": key})
        return bool(rows[0][0])

    def _try_locks(self, names: list[str], limit: int | None) -> list[str]:
        """Try the locks of ``names`` in order, in one statement, stopping once ``limit`` are taken.

        No ORDER BY: rows leave the function scan in order and the filter runs row by row as LIMIT
        pulls them, so no lock is tried past the limit (a sort would try them all first)."""
        rows = self._call(
            "SELECT w.name FROM unnest(%(names)s::text[], %(keys)s::bigint[]) AS w(name, key) "
            "WHERE pg_try_advisory_lock(w.key) LIMIT %(limit)s",
            {"names": names, "keys": [advisory_key(name) for name in names], "limit": limit})
        return [str(name) for (name,) in rows]

    def _unlock(self, names: list[str]) -> None:
        self._call("SELECT pg_advisory_unlock(k) FROM unnest(%(keys)s::bigint[]) AS k",
                   {"keys": [advisory_key(name) for name in names]})

    def _lease(self, names: list[str]) -> dict[str, Claim]:
        """Write the lease rows of names whose locks were just taken; their claims."""
        if not names:
            return {}
        sent = time.monotonic()
        tokens = [uuid.uuid4().hex for _ in names]
        try:
            with self._io, self._deadline(), self._conn.transaction():
                # Deleting first waits for a fenced write of a previous holder to commit.
                self._conn.execute("DELETE FROM claims WHERE name = ANY(%(names)s)", {"names": names})
                self._conn.execute(
                    "INSERT INTO claims (name, holder, backend_pid, token, taken_at, expires_at) "
                    "SELECT name, %(holder)s, pg_backend_pid(), token, now(), now() + %(lease)s * interval '1 second' "
                    "FROM unnest(%(names)s::text[], %(tokens)s::text[]) AS w(name, token)",
                    {"names": names, "tokens": tokens, "holder": self.holder, "lease": self.lease_seconds})
        except Exception as exc:
            self._raise_gone(exc)
            if isinstance(exc, psycopg.errors.LockNotAvailable):  # a fenced write of a last holder lingers
                self._unlock(names)
                return {}
            raise
        claims = {name: Claim(name=name, token=token, claims=self, valid_until=sent + self.lease_seconds)
                  for name, token in zip(names, tokens)}
        self._held.update(claims)
        return claims

    def _take_over_expired(self, name: str, key: int) -> bool:
        """If ``name``'s lease ran out while its holder's session still holds the lock, end that session
        and take the lock. False when the holder is alive (or someone else got there first)."""
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        rows = self._call(_LOCK_HOLDER, {"name": name, "high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF})
        _holder, backend_pid, expired, lock_pid = rows[0]
        # Only the session recorded in the lease, and only once its lease ran out: a lock without a
        # lease row (yet) belongs to a run that is taking the claim right now.
        if not expired or lock_pid is None or lock_pid != backend_pid:
            return False
        try:
            ended = self._call("SELECT pg_terminate_backend(%(pid)s, %(ms)s)",
                               {"pid": lock_pid, "ms": int(self.call_timeout * 1000)})
        except psycopg.errors.InsufficientPrivilege:  # another role's run: grant pg_signal_backend
            return False
        if not ended or not ended[0][0]:
            return False
        deadline = time.monotonic() + self.call_timeout
        while True:  # the ended session lets go of its locks as it exits
            if self._try_lock(key):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _call(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """One statement on the claims connection, within ``call_timeout``; its rows."""
        if self.lost_reason is not None:
            raise ClaimLost(f"this run's claims are lost: {self.lost_reason}")
        try:
            with self._io, self._deadline():
                cursor = self._conn.execute(sql.encode(), params)
                return list(cursor.fetchall()) if cursor.description else []
        except Exception as exc:
            self._raise_gone(exc)
            raise

    def _raise_gone(self, exc: Exception) -> None:
        """If ``exc`` means the connection is gone (or was cut by a deadline), lose every claim and raise."""
        if self.lost_reason is not None or (isinstance(exc, psycopg.Error) and is_gone(exc)):
            self._lose(self.lost_reason or str(unavailable(exc, self.engine.url)))
            raise unavailable(exc, self.engine.url) from None

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        """Shut the socket down if the block has not returned within ``call_timeout``.

        libpq would wait forever for an answer that a silent connection never brings; shutting the
        socket down makes the waiting call fail at once, with the claims marked lost first."""
        timer = threading.Timer(self.call_timeout, self._sever,
                                args=(f"no answer from PostgreSQL within {self.call_timeout:g} s",))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _sever(self, reason: str) -> None:
        self._lose(reason)
        with self._fd_lock:
            if self._closed:
                return
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=os.dup(self._fd))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()

    def _lose(self, reason: str) -> None:
        first = self.lost_reason is None
        if first:
            self.lost_reason = reason
        for claim in list(self._held.values()):
            claim.lost_reason = claim.lost_reason or reason
        if first and self.on_lost is not None:
            self.on_lost(reason)

    def _beat(self) -> None:
        """Renew every lease of this run a third of a lease apart, until closed or lost."""
        interval = self.lease_seconds / 3
        while not self._stop.wait(interval):
            if not self._held:
                continue
            sent = time.monotonic()
            try:
                rows = self._call(
                    "UPDATE claims SET expires_at = now() + %(lease)s * interval '1 second' "
                    "WHERE holder = %(holder)s AND backend_pid = pg_backend_pid() RETURNING name, token",
                    {"lease": self.lease_seconds, "holder": self.holder})
            except (StoreUnavailable, ClaimLost):
                return  # lost already: every claim says so
            except psycopg.Error:  # a lock timeout or the like: the lease stands until it runs out
                continue
            renewed = {(str(name), str(token)) for name, token in rows}
            for claim in list(self._held.values()):
                if (claim.name, claim.token) in renewed:
                    claim.valid_until = sent + self.lease_seconds
                elif claim.lost_reason is None:
                    claim.lost_reason = "another run took it over"
