"""``[state]`` for a PostgreSQL store: the URL without a password, the password by reference, the lease."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.config import load_config, parse_config
from syndicate.errors import ConfigError

from .conftest import CLI
from .test_config import BASE, write


def state_error(state: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({"state": state}, Path("/cfg/syndicate.toml"))
    return str(info.value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user=st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
       password=st.text(st.characters(codec="utf-8"), min_size=1, max_size=24),
       in_query=st.booleans())
def test_a_password_in_the_url_is_a_config_error_that_never_repeats_it(user: str, password: str,
                                                                        in_query: bool) -> None:
    # Whatever the password (quoted as a URL must carry it), in the userinfo or the query string:
    # the message is exactly this, so it can hold no part of the password.
    url = (f"postgresql://{quote(user, safe='')}@db.example:5432/ledger?password={quote(password, safe='')}"
           if in_query else f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@db.example:5432/ledger")
    assert state_error({"url": url}) == (
        "/cfg/syndicate.toml: invalid config\n"
        '  state.url: must not carry a password: give it as [state] password = { env = "NAME" } or { file = "path" }')


def test_the_cli_exits_2_naming_state_url(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + '[state]\nurl = "postgresql://syndicate:hunter2-in-url@db.example/ledger"\n')
    result = CLI(path)("check", "--json")
    assert result.exit_code == 2, result.output
    assert "state.url: must not carry a password" in result.output
    assert "hunter2-in-url" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("state", "line"), [
    ({"url": "postgres://u@h/db"}, "state.url: write postgresql://, not postgres://"),
    ({"url": "postgresql+psycopg2://u@h/db"},
     "state.url: a PostgreSQL state store is reached with psycopg: use postgresql:// (not postgresql+psycopg2://)"),
    ({"url": "postgresql://u@h"}, "state.url: must name a database: postgresql://user@host:port/database"),
    ({"url": "postgresql://u@h/db", "password": "hunter2-literal"},
     'state.password: a literal secret is not allowed here: write { env = "NAME" } or { file = "path" }'),
    ({"url": "sqlite:///state.db", "password": {"env": "PW"}},
     'state.password: only a PostgreSQL store (url = "postgresql://…") takes a password'),
    ({"url": "postgresql://u@h/db", "password": {"env": "A", "file": "b"}},
     'state.password: give exactly one of { env = "NAME" } or { file = "path" }'),
    ({"url": "postgresql://u@h/db", "lease_seconds": 0}, "state.lease_seconds: Input should be greater than or equal to 1"),
])
def test_state_errors_name_their_key(state: dict[str, object], line: str) -> None:
    message = state_error(state)
    assert message.splitlines()[1:] == [f"  {line}"]
    assert "hunter2-literal" not in message


def test_the_password_is_read_by_reference_and_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate import redact

    path = write(tmp_path, BASE + '[state]\nurl = "postgresql://syndicate@db.example:5432/ledger"\n'
                                  'password = { env = "LEDGER_PW" }\nlease_seconds = 20\n')
    monkeypatch.setenv("LEDGER_PW", "ledger-secret-1")
    config = load_config(path)
    assert config.state.is_postgres and config.state.lease_seconds == 20
    assert config.state.password is not None and config.state.password.reveal() == "ledger-secret-1"
    assert "ledger-secret-1" not in repr(config.state)
    assert redact.redact("failed with ledger-secret-1") == "failed with ***"
    monkeypatch.delenv("LEDGER_PW")
    with pytest.raises(ConfigError, match="state.password: environment variable LEDGER_PW is not set"):
        config.state.password.reveal()
    secret = tmp_path / "ledger.pw"
    secret.write_text("ledger-secret-2\n")
    secret.chmod(0o644)
    config = load_config(write(tmp_path, path.read_text().replace('{ env = "LEDGER_PW" }', '{ file = "ledger.pw" }')))
    assert config.state.password is not None
    with pytest.raises(ConfigError, match="state.password: secret file .* is readable by others"):
        config.state.password.reveal()
    secret.chmod(0o600)
    assert config.state.password.reveal() == "ledger-secret-2"


def test_the_defaults_are_a_sqlite_file_and_a_60_s_lease(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    assert not config.state.is_postgres
    assert config.state.password is None and config.state.lease_seconds == 60


def test_a_sqlite_config_loads_without_the_postgresql_driver(tmp_path: Path) -> None:
    # Every command loads the config: a SQLite store must not pay for importing psycopg.
    import subprocess
    import sys

    path = write(tmp_path, BASE + '[state]\nurl = "sqlite:///.syndicate/state.db"\n')
    probe = ("import sys; from syndicate.config import load_config; load_config(sys.argv[1]); "
             "print(sorted(m for m in ('psycopg', 'syndicate.postgres') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
