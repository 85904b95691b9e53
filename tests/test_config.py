"""Config errors: exit 2, the file, the key, what is wrong; never a traceback, never a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from syndicate.config import load_config
from syndicate.errors import ConfigError

from .conftest import CLI

BASE = """
[sources.blog]
name = "blog.example"
site_url = "https://blog.example"
feed = "feed.xml"

[partners.mag]
name = "Mag"
kind = "files"
path = "out"
base_url = "https://mag.example"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syndicate.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("extra", "key", "what"), [
    ("[network]\ntimeot = 5\n", "network.timeot", "unknown key"),
    ("[network]\ntimeout = \"soon\"\n", "network.timeout", "valid number"),
    ("[[grants]]\nsource = \"nope\"\npartner = \"mag\"\nevidence = \"x\"\n", "grants[0].source", "unknown source 'nope'"),
    ("[[grants]]\nsource = \"blog\"\npartner = \"nobody\"\nevidence = \"x\"\n", "grants[0].partner", "unknown partner 'nobody'"),
    ("[[grants]]\nsource = \"blog\"\npartner = \"mag\"\n", "grants[0].evidence", "Field required"),
    ("[[overrides]]\nsource = \"blog\"\nentry = \"x\"\npartner = \"ghosty\"\n", "overrides[0].partner", "unknown partner 'ghosty'"),
    ("[partners.other]\nname = \"O\"\nkind = \"medium\"\n", "partners.other.kind", "unknown partner kind 'medium'"),
    ("[partners.wp]\nname = \"W\"\nkind = \"wordpress\"\nurl = \"https://w.example\"\nusername = \"u\"\npassword = \"hunter2-literal\"\n",
     "partners.wp.password", "a literal secret is not allowed"),
    ("[partners.other]\nname = \"O\"\nkind = \"files\"\npath = \"o\"\nbase_url = \"https://o.example\"\nstatus = \"live\"\n",
     "partners.other.status", "'draft' or 'publish'"),
    ("[sources.cc]\nname = \"c\"\nsite_url = \"https://c.example\"\nfeed = \"c.xml\"\nlicense = \"GPL-3.0\"\n",
     "sources.cc.license", "unknown licence 'GPL-3.0'"),
])
def test_config_error_names_file_key_and_problem(tmp_path: Path, extra: str, key: str, what: str) -> None:
    path = write(tmp_path, BASE + extra)
    result = CLI(path)("check", "--json")
    assert result.exit_code == 2, result.output
    assert str(path) in result.output
    assert key in result.output
    assert what in result.output
    assert "Traceback" not in result.output
    assert "hunter2-literal" not in result.output


def test_not_toml(tmp_path: Path) -> None:
    result = CLI(write(tmp_path, "[sources\n"))("sync")
    assert result.exit_code == 2
    assert "not valid TOML" in result.output


def test_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    result = CLI(tmp_path / "nope.toml")("status")
    assert result.exit_code == 2
    assert "config file not found" in result.output and "syndicate init" in result.output


def test_config_from_environment_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, BASE)
    monkeypatch.setenv("SYNDICATE_CONFIG", str(path))
    assert load_config().path == path
    monkeypatch.delenv("SYNDICATE_CONFIG")
    monkeypatch.chdir(tmp_path)
    assert load_config().path == path


def test_relative_paths_are_relative_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, BASE)
    monkeypatch.chdir("/")
    config = load_config(path)
    assert config.state_url == f"sqlite:///{tmp_path}/.syndicate/state.db"
    assert config.resolve("feed.xml") == tmp_path / "feed.xml"


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    with pytest.raises(ValidationError):
        config.sources["blog"].name = "other"  # type: ignore[misc]


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("file-secret-value\n")
    secret_file.chmod(0o600)
    text = BASE + ('[partners.wp]\nname = "W"\nkind = "wordpress"\nurl = "https://w.example"\nusername = "u"\n'
                   'password = { file = "pw" }\n')
    config = load_config(write(tmp_path, text))
    assert config.partners["wp"].password.reveal() == "file-secret-value"
    assert "file-secret-value" not in repr(config.partners["wp"])
    secret_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        config.partners["wp"].password.reveal()
    monkeypatch.delenv("WP_PW", raising=False)
    text = text.replace('{ file = "pw" }', '{ env = "WP_PW" }')
    config = load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match="partners.wp.password: environment variable WP_PW is not set"):
        config.partners["wp"].password.reveal()


def test_several_problems_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "[network]\nbogus = 1\n[[grants]]\nsource = \"x\"\npartner = \"mag\"\nevidence = \"e\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "network.bogus: unknown key" in str(info.value)
    assert "grants[0].source: unknown source 'x'" in str(info.value)


def test_starter_config_is_valid(tmp_path: Path) -> None:
    result = CLI()("init", str(tmp_path))
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "syndicate.toml")
    assert list(config.partners) == ["preview"]
    again = CLI()("init", str(tmp_path))
    assert again.exit_code == 2 and "already exists" in again.output
    assert os.listdir(tmp_path) == ["syndicate.toml"]
