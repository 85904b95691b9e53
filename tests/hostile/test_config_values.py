"""Hostile config values: every key given a value of the wrong type or range loads, or is refused with
exit 2 naming the file and the key — never a traceback, never a number that cannot be used."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.config import load_config
from syndicate.errors import ConfigError
from tests.conftest import CLI

FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://s.example/</link>'
        b"<item><title>One</title><link>https://s.example/one</link><guid>https://s.example/one</guid>"
        b"<pubDate>Sun, 01 Mar 2026 09:30:00 +0000</pubDate><category>Essays</category>"
        b"<description>&lt;p&gt;Hello&lt;/p&gt;</description></item></channel></rss>")


def toml_value(value: Any) -> str:
    """A TOML spelling of a Python value (strings escaped as TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


# (table header, key) for every key whose value is a number, a date or a string. Arrays of tables
# are named as the error names them ("grants[0].expires").
KEYS: dict[str, tuple[str, str]] = {
    "network.timeout": ("[network]", "timeout"),
    "network.deadline": ("[network]", "deadline"),
    "network.max_bytes": ("[network]", "max_bytes"),
    "network.concurrency": ("[network]", "concurrency"),
    "network.allow_private": ("[network]", "allow_private"),
    "delivery.give_up_after_hours": ("[delivery]", "give_up_after_hours"),
    "delivery.max_retry_seconds": ("[delivery]", "max_retry_seconds"),
    "sources.s.name": ("[sources.s]", "name"),
    "sources.s.site_url": ("[sources.s]", "site_url"),
    "sources.s.feed": ("[sources.s]", "feed"),
    "sources.s.author": ("[sources.s]", "author"),
    "sources.s.license": ("[sources.s]", "license"),
    "sources.s.embargo_days": ("[sources.s]", "embargo_days"),
    "sources.s.aliases": ("[sources.s]", "aliases"),
    "sources.s.exclude_categories": ("[sources.s]", "exclude_categories"),
    "sources.s.series[0].label": ("[[sources.s.series]]", "label"),
    "sources.s.series[0].name": ("[[sources.s.series]]", "name"),
    "partners.p.name": ("[partners.p]", "name"),
    "partners.p.path": ("[partners.p]", "path"),
    "partners.p.base_url": ("[partners.p]", "base_url"),
    "partners.p.concurrency": ("[partners.p]", "concurrency"),
    "partners.p.status": ("[partners.p]", "status"),
    "partners.p.template": ("[partners.p]", "template"),
    "partners.w.url": ("[partners.w]", "url"),
    "partners.w.username": ("[partners.w]", "username"),
    "partners.w.password": ("[partners.w]", "password"),
    "partners.g.url": ("[partners.g]", "url"),
    "partners.g.api_version": ("[partners.g]", "api_version"),
    "partners.g.admin_api_key": ("[partners.g]", "admin_api_key"),
    "grants[0].embargo_days": ("[[grants]]", "embargo_days"),
    "grants[0].expires": ("[[grants]]", "expires"),
    "grants[0].evidence": ("[[grants]]", "evidence"),
    "overrides[0].featured_image": ("[[overrides]]", "featured_image"),
    "overrides[0].series_label": ("[[overrides]]", "series_label"),
}

BASE: dict[str, dict[str, str]] = {
    "[network]": {"timeout": "5", "deadline": "10"},
    "[delivery]": {"give_up_after_hours": "72"},
    "[sources.s]": {"name": '"S"', "site_url": '"https://s.example"', "feed": '"feed.xml"', "license": '"CC-BY-4.0"'},
    "[[sources.s.series]]": {"name": '"Radicals"', "category": '"Essays"'},
    "[partners.p]": {"name": '"P"', "kind": '"files"', "path": '"out"', "base_url": '"https://p.example"'},
    "[partners.w]": {"name": '"W"', "kind": '"wordpress"', "url": '"https://w.example"', "username": '"jo"',
                     "password": '{ env = "SYN_TEST_WP" }'},
    "[partners.g]": {"name": '"G"', "kind": '"ghost"', "url": '"https://g.example"',
                     "admin_api_key": '{ env = "SYN_TEST_GHOST" }'},
    "[[grants]]": {"source": '"s"', "partner": '"p"', "evidence": '"email"'},
    "[[overrides]]": {"source": '"s"', "entry": '"https://s.example/one"', "series_label": '"Part 1"'},
}

scalars = (st.integers(-2**63, 2**63 - 1) | st.integers(-3, 3_000_000) | st.floats(allow_nan=True)
           | st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0, 1e308]) | st.booleans()
           | st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
           | st.sampled_from(["{title.x}", "{n[0]}", "{0}", "{}", "{n!r:{title}}", "{title.__class__}", "%s",
                              "https://a.example/?q=1", "file:///etc/passwd", "a\x00b", "\x1b[31mred"])
           | st.dates() | st.datetimes() | st.datetimes(timezones=st.just(dt.timezone.utc)) | st.times())
values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.sampled_from(["env", "file", "x"]), scalars,
                                                                   max_size=2)


def write_config(folder: Path, key: str, value: Any) -> Path:
    header, name = KEYS[key]
    tables = {h: dict(keys) for h, keys in BASE.items()}
    tables[header][name] = toml_value(value)
    text = "\n".join(h + "\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for h, keys in tables.items())
    (folder / "feed.xml").write_bytes(FEED)
    path = folder / "syndicate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _numbers_are_sane(config: Any) -> None:
    net, delivery = config.network, config.delivery
    for number in (net.timeout, net.deadline, net.max_bytes, delivery.give_up_after_hours, delivery.max_retry_seconds):
        assert math.isfinite(number) and number >= 0
    assert 0 < net.timeout <= 3600 and 0 < net.deadline <= 3600 and net.max_bytes <= 1_000_000_000
    dt.timedelta(hours=delivery.give_up_after_hours, seconds=delivery.max_retry_seconds)  # fits a timedelta
    for source in config.sources.values():
        assert 0 <= source.embargo_days <= 36_500
        for series in source.series:
            series.label.format(n=7, title="A title")  # validated at load: it renders
    for grant in config.grants:
        assert 0 <= grant.embargo_days <= 36_500


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(KEYS)), value=values)
def test_any_value_for_any_key_loads_or_is_refused_naming_file_and_key(tmp_path: Path, key: str, value: Any) -> None:
    path = write_config(tmp_path, key, value)
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert str(path) in message
        if "not valid TOML" not in message:  # a value TOML itself cannot hold is reported by line
            assert key in message, message
        return
    _numbers_are_sane(config)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(KEYS)), value=values)
def test_check_exits_2_without_a_traceback_or_runs(tmp_path: Path, key: str, value: Any) -> None:
    path = write_config(tmp_path, key, value)
    result = CLI(path)("check", env={"SYN_TEST_WP": "pw", "SYN_TEST_GHOST": "x"})
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 2:
        assert str(path) in result.output
    if result.exit_code == 1:  # a feed path that names nothing readable: that feed's own line, the run went on
        assert "feed s:" in result.output, result.output


@pytest.mark.parametrize(("what", "value"), [
    ("embargo in the millions", "sources.s.embargo_days=3000000"),
    ("label reads an attribute", 'sources.s.series[0].label="{title.x}"'),
    ("label indexes a number", 'sources.s.series[0].label="{n[0]}"'),
    ("deadline inf", "network.deadline=inf"),
    ("timeout nan", "network.timeout=nan"),
    ("give up after forever", "delivery.give_up_after_hours=1e300"),
])
def test_the_cases_of_issue_14(tmp_path: Path, what: str, value: str) -> None:
    key, raw = value.split("=", 1)
    header, name = KEYS[key]
    path = write_config(tmp_path, key, 0)
    path.write_text(path.read_text().replace(f"{name} = 0\n", f"{name} = {raw}\n"))
    result = CLI(path)("check")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert str(path) in result.output and key in result.output, result.output


def test_a_toml_array_3000_deep_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sources.s.aliases", [])
    path.write_text(path.read_text().replace("aliases = []", "aliases = " + "[" * 3000 + "]" * 3000))
    result = CLI(path)("check")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert str(path) in result.output and "sources.s.aliases" in result.output, result.output


def _secret_file_config(tmp_path: Path, secret: Path) -> Path:
    path = write_config(tmp_path, "partners.w.password", {"file": str(secret)})
    return path


@pytest.mark.parametrize("kind", ["directory", "fifo", "unreadable", "not utf-8", "missing"])
def test_a_secret_file_that_cannot_be_read_is_a_config_error(tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret"
    if kind == "directory":
        secret.mkdir(mode=0o700)
    elif kind == "fifo":
        os.mkfifo(secret, 0o600)
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        secret.write_text("pw")
        secret.chmod(0)
    elif kind == "not utf-8":
        secret.write_bytes(b"\xff\xfe\x00pw")
        secret.chmod(0o600)
    config = load_config(_secret_file_config(tmp_path, secret))
    outcome: list[BaseException | str] = []

    def reveal() -> None:
        try:
            outcome.append(config.partners["w"].password.reveal())
        except BaseException as exc:  # noqa: BLE001 (the test looks at it below)
            outcome.append(exc)

    reader = threading.Thread(target=reveal, daemon=True)  # a FIFO would block a plain read for ever
    reader.start()
    reader.join(10)
    assert outcome, "reading the secret blocked"
    assert isinstance(outcome[0], ConfigError) and "partners.w.password" in str(outcome[0]), outcome
    assert str(secret) in str(outcome[0])
    result = CLI(config.path)("partners", "test", "w")
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert "partners.w.password" in result.output
    if kind == "unreadable":
        secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
