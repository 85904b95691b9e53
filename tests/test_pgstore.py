"""Several `syndicate sync` runs sharing one PostgreSQL store, as separate hosts would (issue 17).

Each run is its own process in its own folder with its own copy of the config; they share nothing
but the PostgreSQL server (and the partners' folders, which stand for the partners' sites). The
founding example plus 50 synthetic entries in five more feeds, pushed to three files partners.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import REPO, PostgresDatabase

PARTNERS = ("north", "south", "west")
SYNTHETIC_FEEDS = 5
PER_FEED = 10


def synthetic_feed(n: int) -> str:
    items = "".join(f"""
  <item><title>Synthetic {n}.{i}</title><link>https://synthetic{n}.example/post-{i}/</link>
    <guid isPermaLink="false">synthetic-{n}-{i}</guid><pubDate>Mon, 0{1 + i % 9} Apr 2019 08:00:00 +0000</pubDate>
    <description>Entry {i} of feed {n}.</description>
    <content:encoded><![CDATA[<p>The body of entry {i} of feed {n}.</p>]]></content:encoded></item>""" for i in range(PER_FEED))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>Synthetic {n}</title><link>https://synthetic{n}.example</link><description>d</description>{items}
</channel></rss>"""


def host_folder(tmp_path: Path, name: str, db: PostgresDatabase, sites: Path) -> Path:
    """One 'host': a copy of the example with the extra feeds and partners, pointed at the shared store."""
    folder = tmp_path / name
    shutil.copytree(REPO / "config", folder, ignore=shutil.ignore_patterns("out", ".syndicate"))
    (folder / "pgpass").write_text(db.password)
    (folder / "pgpass").chmod(0o600)
    config = (folder / "syndicate.toml").read_text()
    config = config.replace('path = "out/enliveningedge"', f'path = "{sites / "enliveningedge"}"')
    extra = [f'\n[state]\nurl = "{db.url}"\npassword = {{ file = "pgpass" }}\nlease_seconds = 10\n']
    for n in range(SYNTHETIC_FEEDS):
        (folder / f"synthetic{n}.xml").write_text(synthetic_feed(n))
        extra.append(f'\n[sources.synthetic{n}]\nname = "Synthetic {n}"\nsite_url = "https://synthetic{n}.example"\n'
                     f'feed = "synthetic{n}.xml"\nauthor = "A. Writer"\nlicense = "permission"\n')
    for pid in PARTNERS:
        extra.append(f'\n[partners.{pid}]\nname = "{pid}"\nkind = "files"\npath = "{sites / pid}"\n'
                     f'base_url = "https://{pid}.example"\nstatus = "publish"\nupdates = "push"\n')
        for n in range(SYNTHETIC_FEEDS):
            extra.append(f'\n[[grants]]\nsource = "synthetic{n}"\npartner = "{pid}"\nevidence = "e"\nembargo_days = 0\n')
    # [state] must come before the first table that follows it in TOML: put it first.
    (folder / "syndicate.toml").write_text(extra[0] + config + "".join(extra[1:]))
    return folder / "syndicate.toml"


def start_sync(config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "syndicate", "--config", str(config), "sync"],
                            cwd=config.parent, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def copies(sites: Path) -> dict[str, list[str]]:
    """partner folder → the copies in it (one .html per copy)."""
    return {p.name: sorted(f.name for f in p.glob("*.html")) for p in sites.iterdir() if p.is_dir()}


def test_three_runs_started_together_share_the_work_and_push_every_entry_once(
        tmp_path: Path, postgres: PostgresDatabase) -> None:
    sites = tmp_path / "sites"
    configs = [host_folder(tmp_path, f"host{i}", postgres, sites) for i in range(4)]
    runs = [start_sync(config) for config in configs[:3]]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    for code, out, err in results:
        assert code == 0, (out, err)
    found = copies(sites)
    # Every synthetic entry once on each partner, the example's three permitted parts once on its one.
    for pid in PARTNERS:
        assert len(found[pid]) == SYNTHETIC_FEEDS * PER_FEED, found[pid]
    assert len(found["enliveningedge"]) == 3
    # Every run did some of the work: it created copies on a partner no other run was pushing to.
    for _code, out, _err in results:
        assert re.search(r"^\w+: [1-9][0-9]* created", out, re.M), out
    status = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(configs[3]), "status", "--json"],
                            cwd=configs[3].parent, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    listed = rows["deliveries"] if isinstance(rows, dict) else rows
    ok = [r for r in listed if r.get("state") == "ok"]
    assert len(ok) == len(PARTNERS) * SYNTHETIC_FEEDS * PER_FEED + 3
    assert len({(r["partner"], r["source"], r["guid"]) for r in ok}) == len(ok)  # one row per copy


def test_a_run_that_finds_everything_held_says_so_and_exits_0(tmp_path: Path, postgres: PostgresDatabase) -> None:
    from syndicate.pg_store import PostgresStore

    sites = tmp_path / "sites"
    config = host_folder(tmp_path, "host", postgres, sites)
    holder = PostgresStore(postgres.url, password=postgres.password, lease_seconds=10)
    holder.lock()
    names = ["easierinc", *[f"synthetic{n}" for n in range(SYNTHETIC_FEEDS)]]
    taken = holder.take(names, ["enliveningedge", *PARTNERS])
    assert len(taken.feeds) == 6
    try:
        run = start_sync(config)
        out, err = run.communicate(timeout=120)
    finally:
        holder.close()
    assert run.returncode == 0, (out, err)
    assert "held by another run: 6 feeds, 4 partners" in out
    assert not sites.exists() or not any(sites.rglob("*.html"))


def test_a_restart_of_postgresql_mid_run_fails_with_one_line_and_the_next_run_completes(
        tmp_path: Path, postgres: PostgresDatabase) -> None:
    sites = tmp_path / "sites"
    config = host_folder(tmp_path, "host", postgres, sites)
    run = start_sync(config)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(sites.rglob("*.html")):
        time.sleep(0.01)  # the run is pushing: restart the server under it
    postgres.cluster.pg_ctl("restart", "-m", "immediate", "-w", "-l", str(postgres.cluster.log))
    out, err = run.communicate(timeout=120)
    if run.returncode == 0:  # it finished before the restart reached it: nothing to see here
        return
    assert run.returncode == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "went away" in lines[0] and "Traceback" not in err, err
    again = start_sync(config)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, (out, err)
    found = copies(sites)
    for pid in PARTNERS:
        assert len(found[pid]) == SYNTHETIC_FEEDS * PER_FEED


def test_kill_9_mid_push_leaves_the_partner_to_the_next_run_at_once(tmp_path: Path, postgres: PostgresDatabase) -> None:
    sites = tmp_path / "sites"
    config = host_folder(tmp_path, "host", postgres, sites)
    run = start_sync(config)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(sites.rglob("*.html")):
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)
    again = start_sync(config)  # no lease to wait out: the killed run's claims died with its session
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, (out, err)
    assert "held by another run" not in out
    found = copies(sites)
    for pid in PARTNERS:
        assert len(found[pid]) == SYNTHETIC_FEEDS * PER_FEED, found[pid]
    assert len(found["enliveningedge"]) == 3


def test_a_run_holds_a_batch_of_feeds_at_a_time(postgres: PostgresDatabase, monkeypatch: Any) -> None:
    """Each feed is an advisory lock, and the server's lock table is shared by every session: a run
    takes FEED_BATCH feeds, and the free ones past them are left for later, not reported held."""
    from syndicate import pg_store

    monkeypatch.setattr(pg_store, "FEED_BATCH", 2)
    one = pg_store.PostgresStore(postgres.url, password=postgres.password, lease_seconds=10)
    other = pg_store.PostgresStore(postgres.url, password=postgres.password, lease_seconds=10)
    one.lock()
    other.lock()
    try:
        assert other.take(["b"], []).feeds == ["b"]
        first = one.take(["a", "b", "c", "d", "e"], ["mag"])
        assert (first.feeds, first.held_feeds, first.later, first.partners) == (["a", "c"], ["b"], ["d", "e"], ["mag"])
        one.feeds_recorded(wait=False)  # gives a and c back
        assert other.take(["a"], []).feeds == ["a"]
        second = one.take(first.later, [])
        assert (second.feeds, second.later) == (["d", "e"], [])
    finally:
        one.close()
        other.close()


def test_a_sync_of_more_feeds_than_a_batch_reads_every_feed(tmp_path: Path, postgres: PostgresDatabase,
                                                            monkeypatch: Any) -> None:
    from click.testing import CliRunner

    from syndicate import pg_store
    from syndicate.cli import cli

    monkeypatch.setattr(pg_store, "FEED_BATCH", 2)
    sites = tmp_path / "sites"
    config = host_folder(tmp_path, "host", postgres, sites)
    monkeypatch.chdir(config.parent)
    result = CliRunner().invoke(cli, ["--config", str(config), "sync"], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    found = copies(sites)
    for pid in PARTNERS:
        assert len(found[pid]) == SYNTHETIC_FEEDS * PER_FEED
    assert len(found["enliveningedge"]) == 3


def test_a_run_whose_connection_goes_silent_stops_instead_of_hanging(postgres: PostgresDatabase) -> None:
    """libpq waits for ever on a connection that went silent; the store cuts the wait (the claims
    are lost within a third of a lease, and no statement waits longer than a lease) and fails with
    one line (StoreUnavailable, exit 1)."""
    import pytest

    from syndicate.errors import StoreUnavailable
    from syndicate.pg_store import PostgresStore
    from syndicate.records import Delivery

    from .tcp_proxy import SilentProxy

    with SilentProxy(("127.0.0.1", postgres.cluster.port)) as proxy:
        store = PostgresStore(postgres.cluster.url(postgres.name, port=proxy.port), password=postgres.password,
                              lease_seconds=6)
        store.lock()
        try:
            assert store.take(["blog"], ["mag"]).partners == ["mag"]
            assert store.unsettled("mag") == 0  # its connection is open, in the pool
            proxy.go_silent()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="went away: no answer from PostgreSQL"):
                store.put(Delivery(partner="mag", source="blog", guid="a", state="ok"))
            assert time.monotonic() - started <= 6 + 2
        finally:
            store.close()


def test_every_commit_is_durable_whatever_the_server_says(postgres: PostgresDatabase) -> None:
    """The test cluster runs with synchronous_commit = off (as a server tuned for speed might): a crash
    then loses commits it had acknowledged, an intent among them, and the copy created after it would be
    created again by the next run (the restart test against WordPress found that duplicate). The store's
    sessions turn it back on."""
    from sqlalchemy import text

    from syndicate.pg_store import PostgresStore

    assert postgres.cluster.admin_sql("SHOW synchronous_commit")[0][0] == "off"
    store = PostgresStore(postgres.url, password=postgres.password, lease_seconds=10)
    store.lock()
    try:
        with store.transaction() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"  # type: ignore[attr-defined]
    finally:
        store.close()
