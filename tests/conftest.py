"""Fixtures shared by the unit tests: the bundled example in a temporary folder, a CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from . import pg_server

REPO = Path(__file__).resolve().parents[1]
#: ../shared beside the repository (CI lays a copy there); tests that need it skip when it is absent.
SHARED = Path(os.environ.get("SYNDICATE_SHARED", REPO.parent / "shared"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true",
                     help="Rewrite tests/golden/ from the current output instead of comparing with it.")


@pytest.fixture()
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared is absent)")
    return path


#: The store kind the example's tests run on: SQLite by default, PostgreSQL when
#: SYNDICATE_TEST_STORE=postgresql (tests/run.sh runs the pipeline and delivery tests both ways).
TEST_STORE = os.environ.get("SYNDICATE_TEST_STORE", "sqlite")


@pytest.fixture()
def example(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of config/ (the founding example) in a temporary folder; returns the config file.

    With SYNDICATE_TEST_STORE=postgresql its ``[state]`` is a fresh database of the test cluster."""
    folder = tmp_path / "example"
    shutil.copytree(REPO / "config", folder, ignore=shutil.ignore_patterns("out", ".syndicate"))
    config = folder / "syndicate.toml"
    if TEST_STORE == "postgresql":
        db: PostgresDatabase = request.getfixturevalue("postgres")
        secret = folder / "pgpass"
        secret.write_text(db.password)
        secret.chmod(0o600)
        config.write_text(f'[state]\nurl = "{db.url}"\npassword = {{ file = "pgpass" }}\n\n' + config.read_text())
    return config


#: The fixtures through which a test opens the example's store: with SYNDICATE_TEST_STORE=postgresql
#: these are the tests that run again (the others keep their own SQLite files, or open no store).
STORE_FIXTURES = frozenset({"example", "run"})


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a PostgreSQL test store, only the tests whose store it is: the rest would just run twice."""
    if TEST_STORE == "sqlite":
        return
    keep = [i for i in items if STORE_FIXTURES & set(getattr(i, "fixturenames", ()))]
    kept = {id(i) for i in keep}
    config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
    items[:] = keep


def sqlite_only(reason: str) -> None:
    """Skip a test of SQLite's own behaviour (its single-run lock, its file) when the store is a server."""
    if TEST_STORE != "sqlite":
        pytest.skip(f"SQLite's own: {reason}")


class CLI:
    """Runs ``syndicate`` in-process with click's CliRunner."""

    def __init__(self, config: Path | None = None) -> None:
        self.config = config

    def __call__(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        from syndicate.cli import cli

        full = (["--config", str(self.config)] if self.config else []) + list(args)
        return CliRunner().invoke(cli, full, env=env, input=input, catch_exceptions=False)


@pytest.fixture()
def run(example: Path) -> CLI:
    return CLI(example)


# --- PostgreSQL ------------------------------------------------------------------------------------


def _postgres_unavailable(reason: str) -> None:
    """Skip, or fail where PostgreSQL must be had (tests/run.sh sets SYNDICATE_REQUIRE_POSTGRES=1)."""
    if os.environ.get("SYNDICATE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here but {reason}")
    pytest.skip(f"PostgreSQL cannot be had here: {reason}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[pg_server.PostgresCluster]:
    """A private PostgreSQL cluster on 127.0.0.1 for the session (started on first use)."""
    bindir = pg_server.find_binaries()
    if bindir is None:
        _postgres_unavailable("it is not installed (tests/run.sh installs Debian's postgresql)")
    try:
        cluster = pg_server.start(bindir)
    except RuntimeError as exc:
        _postgres_unavailable(str(exc))
    try:
        yield cluster
    finally:
        pg_server.stop(cluster)


@dataclass
class PostgresDatabase:
    """A fresh database on the session's cluster: its state URL (no password in it) and password."""

    cluster: pg_server.PostgresCluster
    name: str

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)

    @property
    def password(self) -> str:
        return self.cluster.password

    def engine(self, **options: Any) -> Engine:
        """A syndicate engine on this database (``syndicate.postgres.create_engine``)."""
        from syndicate import postgres

        return postgres.create_engine(self.url, password=self.password, **options)


@pytest.fixture()
def postgres(postgres_cluster: pg_server.PostgresCluster) -> PostgresDatabase:
    """An empty database of its own for one test."""
    if not (postgres_cluster.data / "postmaster.pid").exists():  # a test stopped it: bring it back
        postgres_cluster.pg_ctl("start", "-w", "-l", str(postgres_cluster.log))
    return PostgresDatabase(postgres_cluster, postgres_cluster.create_database())
