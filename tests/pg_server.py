"""A private PostgreSQL cluster on 127.0.0.1 for the tests of the shared state store.

Debian's ``postgresql`` package (``tests/run.sh`` installs it when missing; ``python tests/pg_server.py
install`` does the same by hand), a cluster made by ``initdb`` in a temporary folder, a free port on
127.0.0.1 and its unix socket in that folder. It is stopped and removed at the end of the test session,
and also at interpreter exit (Ctrl-C included) should the session's teardown not run.

Who connects how:
* the tests' administrator (``admin``, a superuser) over the unix socket, trusted: it creates a fresh
  database per test and restarts the server;
* syndicate as ``syndicate``, an ordinary role with a password (scram-sha-256), over TCP to
  127.0.0.1 — the way a run on another host would, so the password indirection, TCP keepalives and a
  proxy in between are all real.

The default collation of every database is ICU's English one, as an operator's database created in
an ``en_US.UTF-8`` locale would sort: that makes collation differences between SQLite and PostgreSQL
show in the tests instead of hiding behind the C locale.

PostgreSQL refuses to run as root: as root, the cluster's files belong to the ``postgres`` user (which
the Debian package creates) and ``initdb``/``pg_ctl`` run as that user through ``runuser``.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

APT_PACKAGE = "postgresql"
PREFIX = "syndicate-pg-"
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
ADMIN_USER = "admin"
USER = "syndicate"
#: Durability is not wanted: the cluster is thrown away with the session.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %u@%d '",
}


def find_binaries() -> Path | None:
    """The newest of Debian's ``/usr/lib/postgresql/N/bin`` whose ``postgres`` runs, or None.

    ``/usr/local/bin/pg_ctl`` and ``initdb`` may exist too (on this machine they link to the same
    binaries), but PATH order must not decide which server version the tests get."""
    if not DEBIAN_BINARIES.is_dir():
        return None
    versions = sorted((p for p in DEBIAN_BINARIES.iterdir() if re.fullmatch(r"\d+", p.name)),
                      key=lambda p: int(p.name), reverse=True)
    for version in versions:
        bindir = version / "bin"
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            probe = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True)
            if probe.returncode == 0:
                return bindir
    return None


def ensure_installed() -> Path:
    """Debian's PostgreSQL binaries, installed with apt-get when missing (as root). RuntimeError if not."""
    bindir = find_binaries()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"PostgreSQL is not installed; run as root: apt-get install {APT_PACKAGE}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # The package would start the system's own cluster on port 5432: policy-rc.d forbids it, as the
    # WordPress harness does for MariaDB. Ours is started by hand, elsewhere.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-q"]
        for step in ([*apt, "update"], [*apt, "install", "-y", "--no-install-recommends", APT_PACKAGE]):
            done = subprocess.run(step, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(step)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)
    bindir = find_binaries()
    if bindir is None:
        raise RuntimeError(f"{APT_PACKAGE} was installed but no working server is under {DEBIAN_BINARIES}")
    return bindir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running private cluster; ``url`` and ``password`` are what syndicate's config would hold."""

    root: Path
    bindir: Path
    port: int
    password: str
    run_as: str | None  # the unprivileged user the server runs as when the tests run as root
    databases: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = USER, *, host: str = "127.0.0.1", port: int | None = None) -> str:
        """A state URL without a password, as the config must give it."""
        return f"postgresql://{USER}@{host}:{port or self.port}/{database}"

    def _command(self, *args: str) -> list[str]:
        return (["runuser", "-u", self.run_as, "--"] if self.run_as else []) + list(args)

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run pg_ctl on this cluster (as the server's user)."""
        done = subprocess.run(self._command(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args),
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {done.stdout}{done.stderr}\n{self.tail()}")
        return done

    def admin_sql(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement as the superuser over the unix socket (autocommit); its rows."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=ADMIN_USER, dbname=database,
                             autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql.encode())
            return list(cursor.fetchall()) if cursor.description else []

    def create_database(self) -> str:
        """A new empty database owned by the tests' role; its name."""
        name = f"t{len(self.databases) + 1}_{secrets.token_hex(3)}"
        self.admin_sql(f'CREATE DATABASE "{name}" OWNER {USER}')
        self.databases.append(name)
        return name

    def restart(self) -> None:
        """Restart the server (``pg_ctl restart -m fast``: every session is ended, as on a real restart)."""
        self.pg_ctl("restart", "-m", "fast", "-w", "-l", str(self.log))

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""


def start(bindir: Path | None = None) -> PostgresCluster:
    """initdb a new cluster in a temporary folder, start it on a free 127.0.0.1 port, create the tests' role."""
    bindir = bindir or ensure_installed()
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            owner = pwd.getpwnam(run_as)
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to run the server as") from None
    reap_orphans(bindir, run_as)
    # Not under pytest's tmp_path: that folder is private to root, and the server's user must reach it.
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    cluster = PostgresCluster(root=root, bindir=bindir, port=0, password=secrets.token_urlsafe(12), run_as=run_as)
    atexit.register(stop, cluster)
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    cluster.socket_dir.mkdir()
    pwfile = root / "admin.pw"
    pwfile.write_text(secrets.token_urlsafe(12) + "\n")
    if run_as:
        for path in (root, cluster.socket_dir, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    init = subprocess.run(cluster._command(
        str(bindir / "initdb"), "-D", str(cluster.data), "-U", ADMIN_USER, f"--pwfile={pwfile}",
        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        "--locale-provider=icu", "--icu-locale=en-US", "--no-sync", "--no-instructions"),
        capture_output=True, text=True, timeout=300)
    if init.returncode != 0:
        stop(cluster)
        raise RuntimeError(f"initdb failed: {init.stdout[-2000:]}{init.stderr[-2000:]}")
    for attempt in range(5):  # a free port can be taken by someone else before the server binds it
        cluster.port = _free_port()
        settings = {**SETTINGS, "port": str(cluster.port), "unix_socket_directories": f"'{cluster.socket_dir}'"}
        conf = cluster.data / "postgresql.auto.conf"
        conf.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        if run_as:
            os.chown(conf, owner.pw_uid, owner.pw_gid)
        started = cluster.pg_ctl("start", "-w", "-t", "60", "-l", str(cluster.log), check=False)
        if started.returncode == 0:
            break
        if attempt == 4 or "could not bind" not in cluster.tail():
            stop(cluster)
            raise RuntimeError(f"the PostgreSQL server did not start: {started.stdout}{started.stderr}\n"
                               f"{cluster.tail()}")
    cluster.admin_sql(f"CREATE ROLE {USER} LOGIN PASSWORD '{cluster.password}'")
    return cluster


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(bindir: Path, run_as: str | None) -> None:
    """Stop and remove the clusters of test sessions that died without stopping theirs (kill -9)."""
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # not made by this module, or still being made
        if not _alive(owner):
            stop(PostgresCluster(root=root, bindir=bindir, port=0, password="", run_as=run_as))


def stop(cluster: PostgresCluster) -> None:
    """Stop the server (if running) and remove its folder. Safe to call twice."""
    if not cluster.root.exists():
        return
    if (cluster.data / "postmaster.pid").exists():
        done = cluster.pg_ctl("stop", "-m", "fast", "-w", "-t", "30", check=False)
        if done.returncode != 0:
            cluster.pg_ctl("stop", "-m", "immediate", "-w", "-t", "30", check=False)
    shutil.rmtree(cluster.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``install``: install Debian's package when missing; ``start``: start a cluster until Ctrl-C."""
    command = argv[1] if len(argv) > 1 else ""
    try:
        if command == "install":
            print(f"PostgreSQL binaries: {ensure_installed()}")
            return 0
        if command == "start":
            cluster = start()
            print(f"{cluster.url()} password={cluster.password} (Ctrl-C stops it)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                stop(cluster)
            return 0
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print("usage: pg_server.py install|start", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
