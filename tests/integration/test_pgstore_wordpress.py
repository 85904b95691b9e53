"""Several hosts sharing one PostgreSQL ledger, against the REAL WordPress of the test suite (issue 17).

Each "host" is a folder of its own with its own copy of the config (the founding example, its
partner Enlivening Edge on the harness's WordPress through ``FaultProxy``) and ``[state] url``
naming one database of the test cluster (``postgres`` fixture); the runs are real processes of the
installed ``syndicate`` command, as cron on each host would start them. They share nothing but
PostgreSQL and the partners.

What is proven, counted on WordPress itself (its REST API with ``context=edit``, trash included):
* kill -9 of a run mid-create and mid-update: another host's run takes the partner over at once (no
  lease to wait out: the claims died with the killed run's connection) and reconciles — one post per
  entry, each at its latest text;
* a run whose connection to PostgreSQL goes silent (``SilentProxy``: it stops forwarding and closes
  nothing) loses its hold within ``lease_seconds``, another run takes the partner, and the silent run
  itself stops with one line (exit 1) rather than hang;
* PostgreSQL restarted mid-run: the run fails its remaining work with one clear line and exit 1, the
  ledger holds nothing half-recorded, and the next run completes;
* three runs started together on the founding example plus 50 synthetic entries (and two files
  partners): every entry exactly once on every partner, every run did some of the work, and
  ``status`` from a fourth folder lists every copy.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ..conftest import PostgresDatabase
from ..fakes import FileServer
from ..tcp_proxy import SilentProxy
from ..test_pgstore import PER_FEED, SYNTHETIC_FEEDS, synthetic_feed
from .fault_proxy import FaultProxy
from .test_faults import CREATE, PARTS, SYNDICATE, UPDATE, Project, Started, images, proxy  # noqa: F401
from .wordpress_server import WordPressSite

pytestmark = pytest.mark.integration

LEASE = 10  # seconds: [state] lease_seconds of every host here
FILES_PARTNERS = ("north", "south")


@pytest.fixture(autouse=True, scope="module")
def _syndicate_installed() -> None:
    if not SYNDICATE.exists():
        pytest.skip("the syndicate command is not installed in this environment")



@dataclass
class Host(Project):
    """One host's folder: the founding example on WordPress, its ledger on the shared PostgreSQL."""

    db: PostgresDatabase | None = None
    state_url: str | None = None      # another way to the same database (a proxy), else the db's own URL
    synthetic: bool = False           # the 50 synthetic entries and two files partners too
    sites: Path | None = None         # where the files partners' "sites" are (shared by every host)

    def write(self) -> None:
        super().write()
        assert self.db is not None
        (self.root / "pgpass").write_text(self.db.password)
        (self.root / "pgpass").chmod(0o600)
        state = (f'[state]\nurl = "{self.state_url or self.db.url}"\npassword = {{ file = "pgpass" }}\n'
                 f"lease_seconds = {LEASE}\n")
        extra = []
        if self.synthetic:
            assert self.sites is not None
            for n in range(SYNTHETIC_FEEDS):
                (self.root / f"synthetic{n}.xml").write_text(synthetic_feed(n))
                extra.append(f'\n[sources.synthetic{n}]\nname = "Synthetic {n}"\nsite_url = "https://synthetic{n}.example"\n'
                             f'feed = "synthetic{n}.xml"\nauthor = "A. Writer"\nlicense = "permission"\n')
            for pid in FILES_PARTNERS:
                extra.append(f'\n[partners.{pid}]\nname = "{pid}"\nkind = "files"\npath = "{self.sites / pid}"\n'
                             f'base_url = "https://{pid}.example"\nstatus = "publish"\nupdates = "push"\n')
            for n in range(SYNTHETIC_FEEDS):
                for pid in ("enliveningedge", *FILES_PARTNERS):
                    extra.append(f'\n[[grants]]\nsource = "synthetic{n}"\npartner = "{pid}"\nevidence = "e"\n'
                                 "embargo_days = 0\n")
        # [state] before the config's first table, the rest after it.
        self.config.write_text(state + self.config.read_text(encoding="utf-8") + "".join(extra), encoding="utf-8")

    def wordpress_posts(self) -> list[dict[str, Any]]:
        """Every post on WordPress, any status (trash included), through its REST API, every page."""
        posts: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(f"{self.site.url}/wp-json/wp/v2/posts",
                                    params={"status": "publish,future,draft,pending,private,trash", "context": "edit",
                                            "per_page": 100, "page": page},
                                    auth=(self.site.username, self.site.app_password), timeout=30)
            assert response.status_code == 200, response.text
            posts += response.json()
            if page >= int(response.headers.get("X-WP-TotalPages", "1")):
                return posts
            page += 1


@pytest.fixture()
def hosts(tmp_path: Path, wordpress: WordPressSite, proxy: FaultProxy, images: FileServer,  # noqa: F811
          postgres: PostgresDatabase) -> Callable[..., list[Host]]:
    """hosts(n, **options): n host folders (host0, host1, …), written, sharing the one database."""
    made: list[Host] = []

    def make(n: int, **options: Any) -> list[Host]:
        out = []
        for _ in range(n):
            host = Host(tmp_path / f"host{len(made)}", wordpress, proxy, images, db=postgres,
                        sites=tmp_path / "sites", **options)
            host.write()
            made.append(host)
            out.append(host)
        return out

    return make


def wait_for(condition: Callable[[], bool], timeout: float, what: str, detail: Callable[[], Any] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what} {detail()}"
        time.sleep(0.02)


def writes(cms: FaultProxy) -> list[tuple[str, str, str]]:
    """What the proxy saw of the writes (method, target, outcome)."""
    return [(s.method, s.target, s.outcome) for s in cms.seen if s.method != "GET"]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def landed(cms: FaultProxy, method: str, path: str) -> int:
    """Writes that reached WordPress (answered to their client or carried out after it was gone)."""
    return cms.count(method, path, outcome="forwarded") + cms.count(method, path, outcome="client-gone")


# ------------------------------------------------------------------------------------------------


def test_kill_9_mid_create_another_host_takes_the_partner_at_once(hosts: Callable[..., list[Host]]) -> None:
    a, b = hosts(2)
    cms = a.proxy
    creates = cms.delay(1.5, "POST", CREATE, times=None)  # every create takes a while: the kill lands mid-create
    run = a.start("sync")
    wait_for(lambda: creates.hits >= 2 or run.process.poll() is not None, 60, "the second create")
    assert run.kill(), run.stderr  # killed while its second create was on its way to WordPress
    killed = time.monotonic()
    # The network carries the create it had sent to WordPress, as a real one would.
    wait_for(lambda: landed(cms, "POST", CREATE) == creates.hits, 30, "the killed run's create")
    assert cms.count("POST", CREATE, outcome="client-gone") >= 1
    cms.clear()
    took_over = b.sync("-v")
    elapsed = time.monotonic() - killed
    assert took_over.returncode == 0, took_over.stdout + took_over.stderr
    assert "held by another run" not in took_over.stdout
    assert elapsed < LEASE, f"{elapsed:.1f} s: the partner was taken at once, not after a lease"
    b.assert_converged()  # one post per entry, complete, and the ledger agrees
    assert landed(cms, "POST", CREATE) == len(PARTS)  # the killed run's create was adopted, not repeated
    assert len(b.wordpress_posts()) == len(PARTS)
    a.assert_no_secret()
    b.assert_no_secret()


def test_kill_9_mid_update_another_host_takes_the_partner_at_once(hosts: Callable[..., list[Host]]) -> None:
    a, b = hosts(2)
    cms = a.proxy
    first = a.sync()
    assert first.returncode == 0, first.stdout + first.stderr
    for host in (a, b):  # the author revises every text; both hosts read the same feed
        host.revision += 1
        host.write_feed()
    before = landed(cms, "POST", UPDATE)  # the first sync's own updates (each copy links the others)
    updates = cms.delay(1.5, "POST", UPDATE, times=None)
    run = a.start("sync")
    wait_for(lambda: updates.hits >= 2 or run.process.poll() is not None, 60, "the second update")
    assert run.kill(), run.stderr
    killed = time.monotonic()
    wait_for(lambda: landed(cms, "POST", UPDATE) - before == updates.hits, 30, "the killed run's update",
             lambda: (updates.hits, writes(cms)))
    assert cms.count("POST", UPDATE, outcome="client-gone") >= 1
    cms.clear()
    took_over = b.sync("-v")
    elapsed = time.monotonic() - killed
    assert took_over.returncode == 0, took_over.stdout + took_over.stderr
    assert "held by another run" not in took_over.stdout
    assert elapsed < LEASE, f"{elapsed:.1f} s"
    b.assert_converged()  # every post at the latest revision, one per entry
    assert landed(cms, "POST", CREATE) == len(PARTS)
    assert len(b.wordpress_posts()) == len(PARTS)


def test_a_run_whose_connection_goes_silent_loses_the_partner_within_the_lease(
        hosts: Callable[..., list[Host]], postgres: PostgresDatabase) -> None:
    with SilentProxy(("127.0.0.1", postgres.cluster.port)) as silent:
        [a] = hosts(1, state_url=postgres.cluster.url(postgres.name, port=silent.port))
        [b] = hosts(1)
        cms = a.proxy
        creates = cms.delay(2, "POST", CREATE, times=None)
        run = a.start("sync")
        wait_for(lambda: creates.hits >= 1 or run.process.poll() is not None, 60, "the first create")
        silent.go_silent()  # the host's network to PostgreSQL stops forwarding; nothing is closed
        quiet = time.monotonic()
        attempts = []
        while True:
            began = time.monotonic() - quiet
            attempt = b.sync()
            attempts.append(attempt)
            assert attempt.returncode == 0, attempt.stdout + attempt.stderr
            if "held by another run" not in attempt.stdout:
                break
            assert time.monotonic() - quiet < 3 * LEASE, [r.stdout for r in attempts]
        # The run that took the partner began within the lease (plus one attempt's length: they follow
        # one another), the one before it found the partner still held.
        print(f"the partner was taken by the run begun {began:.1f} s after the connection went silent "
              f"(attempt {len(attempts)}; each attempt takes about {(time.monotonic() - quiet) / len(attempts):.1f} s)")
        assert began <= LEASE + 5, f"taken by a run begun {began:.1f} s after the connection went silent"
        # The silent run does not hang: it stops within the lease, with one line, exit 1.
        code = run.wait(timeout=3 * LEASE)
        assert code == 1, (run.stdout, run.stderr)
        assert re.search("PostgreSQL|no longer held", one_line(run.stderr)), run.stderr
    cms.clear()
    again = b.sync()
    assert again.returncode == 0, again.stdout + again.stderr
    b.assert_converged()
    assert landed(cms, "POST", CREATE) == len(PARTS)
    assert len(b.wordpress_posts()) == len(PARTS)


def test_a_restart_of_postgresql_mid_run_fails_it_cleanly_and_the_next_run_completes(
        hosts: Callable[..., list[Host]], postgres: PostgresDatabase) -> None:
    a, b = hosts(2)
    cms = a.proxy
    creates = cms.delay(1.5, "POST", CREATE, times=None)
    run = a.start("sync")
    wait_for(lambda: creates.hits >= 2 or run.process.poll() is not None, 60, "the second create")
    postgres.cluster.pg_ctl("restart", "-m", "immediate", "-w", "-l", str(postgres.cluster.log))
    code = run.wait(timeout=60)
    assert code == 1, (run.stdout, run.stderr)
    assert "went away" in one_line(run.stderr), run.stderr
    wait_for(lambda: landed(cms, "POST", CREATE) == creates.hits, 30, "the creates in flight")
    # Nothing half-recorded: every row of the ledger is a write's intent or its whole outcome.
    on_wordpress = {str(p["id"]): p for p in b.wordpress_posts()}
    for row in b.status():
        assert row["state"] in ("ok", "intent"), row
        if row["state"] == "ok":
            post = on_wordpress[row["remote_id"]]
            assert (row["url"], row["slug"]) == (post["link"], post["slug"]), row
    cms.clear()
    after = b.sync()
    assert after.returncode == 0, after.stdout + after.stderr
    b.assert_converged()
    assert landed(cms, "POST", CREATE) == len(PARTS)
    assert len(b.wordpress_posts()) == len(PARTS)


def test_three_hosts_started_together_share_the_work_and_every_entry_is_pushed_once(
        hosts: Callable[..., list[Host]]) -> None:
    runs_hosts = hosts(4, synthetic=True)
    cms = runs_hosts[0].proxy
    cms.delay(0.2, "POST", CREATE, times=None)  # WordPress is the slow partner, as it is in life
    started: list[Started] = [host.start("sync") for host in runs_hosts[:3]]
    codes = [run.wait(timeout=600) for run in started]
    assert codes == [0, 0, 0], [(run.stdout, run.stderr) for run in started]
    total = len(PARTS) + SYNTHETIC_FEEDS * PER_FEED
    posts = runs_hosts[0].wordpress_posts()
    slugs = [p["slug"] for p in posts]
    assert len(posts) == total and len(set(slugs)) == total, sorted(slugs)
    assert {p["status"] for p in posts} == {"publish"}
    titles = sorted(p["title"]["raw"] for p in posts)  # every entry, each once
    assert titles == sorted([p.title for p in PARTS] + [f"Synthetic {n}.{i}" for n in range(SYNTHETIC_FEEDS)
                                                        for i in range(PER_FEED)]), titles
    assert landed(cms, "POST", CREATE) == total
    sites = runs_hosts[0].sites
    assert sites is not None
    for pid in FILES_PARTNERS:
        assert len(list((sites / pid).glob("*.html"))) == SYNTHETIC_FEEDS * PER_FEED, pid
    # Every run did some of the work: it created the copies of a partner that no other run pushed to.
    pushed_by: dict[str, int] = {}
    for i, run in enumerate(started):
        mine = [m[1] for m in re.finditer(r"^(\w+): ([1-9][0-9]*) created", run.stdout, re.M)]
        assert mine, run.stdout
        for pid in mine:
            assert pid not in pushed_by, (pid, pushed_by, run.stdout)
            pushed_by[pid] = i
    assert sorted(pushed_by) == sorted(["enliveningedge", *FILES_PARTNERS])
    # A fourth host, which ran nothing, reads every copy from the shared ledger.
    rows = runs_hosts[3].status()
    ok = {(r["partner"], r["source"], r["guid"]) for r in rows if r["state"] == "ok"}
    assert len(ok) == len(rows) == total + 2 * SYNTHETIC_FEEDS * PER_FEED, json.dumps(rows)[:2000]
    wp_rows = {r["remote_id"] for r in rows if r["partner"] == "enliveningedge"}
    assert wp_rows == {str(p["id"]) for p in posts}
    for host in runs_hosts:
        host.assert_no_secret()
