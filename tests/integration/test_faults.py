"""Delivery reliability, proven by fault injection against a REAL WordPress: never a duplicate, never a lost post.

The founding example (Parts 1, 2 and 4 of "Next Stage Radicals"; Part 3 is for members only) goes
to the harness's WordPress (``wordpress`` fixture, its Author-role user) through ``FaultProxy``, a
reverse proxy of ours on 127.0.0.1 that loses the answers of writes WordPress did carry out, answers
503 and 429 with ``Retry-After``, resets connections and slows requests down. The installed
``syndicate`` command is driven as cron would drive it, as a subprocess with a timeout, and is also
``kill -9``-ed at random moments, and started twice at once.

After the faults, one clean sync, then the invariant is checked on WordPress itself (its database
and its REST API with ``context=edit``): exactly one post per entry, none with a ``-2`` slug of ours
or left in the trash, each complete (byline, series notes linking WordPress's own permalinks of
the other parts, featured image, footer, the latest version of the text), and ``syndicate status
--json`` agrees with WordPress (same ids, same URLs, state ``ok``). No run's output, at ``-vv``
included, carries the application password.

The kill test's random moments come from a seed printed in the test's output; set
``SYNDICATE_FAULT_SEED`` to replay one.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from ..fakes import FileServer, png, pngs
from .fault_proxy import FaultProxy
from .wordpress_server import WordPressSite

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SYNDICATE = Path(sys.executable).with_name("syndicate")
PASSWORD_ENV = "SYNDICATE_FAULTS_WP_PASSWORD"
RUN_TIMEOUT = 90  # seconds, for every syndicate subprocess

#: Request targets (path and query) as the proxy sees them.
CREATE = r"^/wp-json/wp/v2/posts/?(\?|$)"          # POST: a new post
UPDATE = r"^/wp-json/wp/v2/posts/\d+/?(\?|$)"      # POST: an existing post
LIST = r"^/wp-json/wp/v2/posts/?\?"               # GET: refresh and find
MEDIA = r"^/wp-json/wp/v2/media/?(\?|$)"           # POST: an upload
TAGS = r"^/wp-json/wp/v2/tags"

PART4_IMAGE = "https://www.easierinc.com/wp-content/uploads/2019/04/leadership.jpg"
CREDIT = ('Featured Image/graphic link added by Enlivening Edge Magazine. '
          '<a href="https://pixabay.com/users/geralt-9301/">Image by Gerd Altmann from Pixabay</a>')


@dataclass(frozen=True)
class Part:
    number: int
    slug: str
    title: str

    @property
    def original(self) -> str:
        return f"https://www.easierinc.com/{self.slug}/"

    @property
    def label(self) -> str:
        return f"Part {self.number}: {self.title}"


PARTS = (Part(1, "radical-models-of-organising", "Radical Models of Organising"),
         Part(2, "radical-models-of-public-service", "Radical Models of Public Service"),
         Part(4, "radical-models-of-leadership", "Radical Models of Leadership"))
PART3 = Part(3, "radical-models-of-commissioning-and-regulation", "Radical Models of Commissioning and Regulation")


@pytest.fixture(autouse=True, scope="module")
def _syndicate_installed() -> None:
    if not SYNDICATE.exists():
        pytest.skip("the syndicate command is not installed in this environment")


# ------------------------------------------------------------------------------------------------
# servers: the featured images on 127.0.0.1, and the proxy in front of WordPress


@pytest.fixture()
def images() -> Iterator[FileServer]:
    """The override's image and Part 4's own, served from 127.0.0.1."""
    server = FileServer(pngs(network=png(16, 10, (30, 90, 200)), leadership=png(12, 8, (200, 60, 30))))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def proxy(wordpress: WordPressSite) -> Iterator[FaultProxy]:
    with FaultProxy(wordpress.url) as running:
        yield running


# ------------------------------------------------------------------------------------------------
# the project: a config folder, the CLI as a subprocess, and WordPress as its administrator sees it


@dataclass
class Project:
    root: Path
    site: WordPressSite
    proxy: FaultProxy
    images: FileServer
    outputs: list[str] = field(default_factory=list)
    revision: int = 0
    with_part4: bool = True
    timeout: float = 20

    @property
    def config(self) -> Path:
        return self.root / "syndicate.toml"

    def write(self) -> None:
        """The founding example's config (config/syndicate.toml) with Enlivening Edge on WordPress."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_feed()
        self.config.write_text(f"""
[network]
allow_private = true        # the featured images come from 127.0.0.1 in this test
timeout = {self.timeout:g}

[delivery]
max_retry_seconds = 30

[sources.easierinc]
name = "easierinc.com"
site_url = "https://www.easierinc.com"
feed = "easierinc-feed.xml"
aliases = ["easierinc.com"]
author = "Andy Brogan"
license = "permission"

[[sources.easierinc.series]]
name = "Next Stage Radicals"
category = "Next Stage Radicals"

[partners.enliveningedge]
name = "Enlivening Edge Magazine"
kind = "wordpress"
url = "{self.proxy.url}"
username = "{self.site.author_username}"
password = {{ env = "{PASSWORD_ENV}" }}
status = "publish"
updates = "push"

[[grants]]
source = "easierinc"
partner = "enliveningedge"
evidence = "Republished with permission of the author (email, March 2019)"
embargo_days = 0
exclude_categories = ["Members only"]

[[overrides]]
source = "easierinc"
entry = "https://www.easierinc.com/radical-models-of-organising/"
partner = "enliveningedge"
featured_image = "{self.images.url}/network.png"
featured_image_alt = "A network of connected points"
featured_image_credit = "Image by Gerd Altmann from Pixabay"
featured_image_credit_url = "https://pixabay.com/users/geralt-9301/"
featured_image_note = "Featured Image/graphic link added by Enlivening Edge Magazine."
""", encoding="utf-8")

    def write_feed(self) -> None:
        """config/easierinc-feed.xml, Part 4's image served locally; each entry's text carries the revision."""
        feed = (REPO / "config" / "easierinc-feed.xml").read_text(encoding="utf-8")
        assert PART4_IMAGE in feed
        feed = feed.replace(PART4_IMAGE, self.images.url + "/leadership.png")
        if self.revision:
            feed = feed.replace("<content:encoded><![CDATA[",
                                f"<content:encoded><![CDATA[<p>Revision {self.revision} of this text.</p>\n")
        if not self.with_part4:
            feed, n = re.subn(r"\s*<item>\s*<title>Radical Models of Leadership</title>.*?</item>", "", feed,
                              flags=re.S)
            assert n == 1
        (self.root / "easierinc-feed.xml").write_text(feed, encoding="utf-8")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE")}
        env[PASSWORD_ENV] = self.site.author_app_password
        return env

    def run(self, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(SYNDICATE), "--config", str(self.config), *args], capture_output=True,
                                text=True, env=self.env(), timeout=timeout, cwd=self.root)
        self.outputs += [result.stdout, result.stderr]
        return result

    def sync(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(*args, "sync")

    def start(self, *args: str) -> Started:
        """``syndicate ARGS`` in the background, its output going to files (no pipe can fill up)."""
        n = len(list(self.root.glob("run-*.out")))
        out, err = self.root / f"run-{n}.out", self.root / f"run-{n}.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen([str(SYNDICATE), "--config", str(self.config), *args], stdout=stdout,
                                       stderr=stderr, env=self.env(), cwd=self.root)
        return Started(self, process, out, err)

    def status(self) -> list[dict[str, Any]]:
        result = self.run("status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    # --- WordPress itself, not through the proxy -------------------------------------------------

    def rows(self) -> list[tuple[int, str, str]]:
        """Every post in WordPress's database, whatever its status (trash included): (id, slug, status)."""
        out = self.site.sql("SELECT ID, post_name, post_status FROM wp_posts WHERE post_type = 'post' ORDER BY ID")
        return [(int(i), name, status) for i, name, status in (line.split("\t") for line in out.splitlines())]

    def posts(self) -> dict[str, dict[str, Any]]:
        """Every post, any status, as the administrator reads it with context=edit; by slug."""
        response = requests.get(f"{self.site.url}/wp-json/wp/v2/posts",
                                params={"status": "publish,future,draft,pending,private,trash", "context": "edit",
                                        "per_page": 100}, auth=(self.site.username, self.site.app_password),
                                timeout=30)
        assert response.status_code == 200, response.text
        return {p["slug"]: p for p in response.json()}

    def media_exists(self, media_id: int) -> bool:
        response = requests.get(f"{self.site.url}/wp-json/wp/v2/media/{media_id}", params={"context": "edit"},
                                auth=(self.site.username, self.site.app_password), timeout=30)
        return response.status_code == 200

    # --- the invariants -------------------------------------------------------------------------------

    def assert_never_a_duplicate(self, when: str) -> None:
        """At any moment: at most one post per entry, under its own slug, never in the trash."""
        rows = self.rows()
        slugs = [name for _, name, _ in rows]
        assert len(rows) <= len(PARTS) and len(set(slugs)) == len(slugs), f"{when}: {rows}"
        assert set(slugs) <= {p.slug for p in PARTS if self.with_part4 or p.number != 4}, f"{when}: {rows}"
        assert {status for _, _, status in rows} <= {"publish"}, f"{when}: {rows}"

    def assert_converged(self) -> dict[str, dict[str, Any]]:
        """Exactly one complete post per entry, and the ledger says exactly what WordPress holds."""
        rows = self.rows()
        assert sorted(name for _, name, _ in rows) == sorted(p.slug for p in PARTS), rows
        assert {status for _, _, status in rows} == {"publish"}, rows
        posts = self.posts()
        assert sorted(posts) == sorted(p.slug for p in PARTS)
        for part in PARTS:
            post = posts[part.slug]
            raw = post["content"]["raw"]
            assert post["link"] == f"{self.site.url}/{part.slug}/"
            assert post["title"]["raw"] == part.title
            assert raw.startswith(f'<p><em>By Andy Brogan and originally published on <a href="{part.original}">'
                                  "easierinc.com</a></em></p>"), raw[:300]
            assert "<p><em>Republished with permission of the author.</em></p>" in raw
            assert len(re.findall(r"<!-- syndicate:syn-[0-9a-f]{16} -->", raw)) == 1
            if self.revision:
                assert f"<p>Revision {self.revision} of this text.</p>" in raw, (part.slug, self.revision)
                assert raw.count("of this text.</p>") == 1
            notes = re.findall(r"Enlivening Edge Magazine's republication of <a href=\"([^\"]*)\">([^<]*)</a> is here.",
                               raw)
            assert sorted(notes) == sorted((posts[o.slug]["link"], o.label) for o in PARTS if o != part), notes
            assert PART3.title not in " ".join(label for _, label in notes)
        p1, p2, p4 = (posts[p.slug] for p in PARTS)
        assert f'<a href="{p2["link"]}">Part 2 on Public Service</a>' in p1["content"]["raw"]
        assert f'<a href="{p4["link"]}">Part 4 on Leadership</a>' in p1["content"]["raw"]
        assert f'<a href="{p1["link"]}">Part 1 on Organising</a> set the scene.' in p2["content"]["raw"]
        assert CREDIT in p1["content"]["raw"]
        assert p1["featured_media"] and self.media_exists(p1["featured_media"])
        assert p4["featured_media"] and self.media_exists(p4["featured_media"])
        assert p2["featured_media"] == 0

        ledger = [d for d in self.status() if d["partner"] == "enliveningedge"]
        assert sorted(d["entry"] for d in ledger) == sorted(p.original for p in PARTS), ledger
        for d in ledger:
            post = posts[next(p.slug for p in PARTS if p.original == d["entry"])]
            assert (d["state"], d["remote_id"], d["url"], d["slug"], d["remote_status"]) == (
                "ok", str(post["id"]), post["link"], post["slug"], "publish"), d
            assert d["last_error"] is None and d["attempts"] == 0 and d["pushed_at"], d
            assert "Republished with permission of the author (email, March 2019)" in (d["permission"] or ""), d
        return posts

    def assert_no_secret(self) -> None:
        password = self.site.author_app_password
        token = base64.b64encode(f"{self.site.author_username}:{password}".encode()).decode()
        for text in self.outputs:
            for secret in (password, password.replace(" ", ""), token):
                assert secret not in text


@dataclass
class Started:
    project: Project
    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            self.project.outputs += [self.stdout, self.stderr]
        return code

    def kill(self) -> bool:
        """kill -9; True if it was still running."""
        alive = self.process.poll() is None
        if alive:
            os.kill(self.process.pid, signal.SIGKILL)
        self.wait(30)
        return alive

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")


@pytest.fixture()
def project(tmp_path: Path, wordpress: WordPressSite, proxy: FaultProxy, images: FileServer) -> Project:
    project = Project(tmp_path / "example", wordpress, proxy, images)
    project.write()
    return project


def counts(result: subprocess.CompletedProcess[str] | str) -> str:
    """The partner's line of a sync's summary: "3 created, 0 updated, …"."""
    text = result if isinstance(result, str) else result.stdout
    line = next((line for line in text.splitlines() if line.startswith("enliveningedge:")), "")
    return line.split(": ", 1)[-1]


def reports(result: subprocess.CompletedProcess[str] | Started, partner: str = "enliveningedge") -> list[str]:
    """How a run reported a partner's failure as a whole: at most once in its summary (stdout), at most
    once in its log (stderr); the first of them."""
    summary_lines = [line for line in result.stdout.splitlines() if line.startswith(f"error: {partner}: ")]
    log_lines = [line for line in result.stderr.splitlines() if re.match(rf"ERROR \S+: {partner}: ", line)]
    assert len(summary_lines) <= 1 and len(log_lines) <= 1, (result.stdout, result.stderr)
    return (summary_lines or log_lines)[:1]


def write_name(seen: Any) -> str:
    """create / update / upload, for a POST the proxy saw."""
    target = seen.target
    return "create" if re.search(CREATE, target) else "upload" if re.search(MEDIA, target) else (
        "update" if re.search(UPDATE, target) else target)


def tally(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The same as {"created": 3, "updated": 0, …}."""
    return {name: int(n) for n, name in (item.split(" ", 1) for item in counts(result).split(", ") if item)}


# ------------------------------------------------------------------------------------------------
# the tests


def test_lost_answers_503_and_429_never_make_a_duplicate(project: Project) -> None:
    proxy = project.proxy
    # Run 1: every create reaches WordPress but its answer is lost (after a 429 on the first try); the
    # first update's answer is lost too; an upload and two tag lookups are answered 503 first.
    too_many = proxy.answer(429, "POST", CREATE, retry_after=1)
    lost_creates = proxy.drop_after_forward("POST", CREATE, times=None)
    lost_update = proxy.drop_after_forward("POST", UPDATE, rst=True)
    busy_upload = proxy.answer(503, "POST", MEDIA, retry_after=1)
    busy_tags = proxy.answer(503, "GET", TAGS, times=2, retry_after="1")
    first = project.sync("-vv")
    assert first.returncode in (0, 1), first.stderr
    assert (too_many.hits, lost_creates.hits, lost_update.hits, busy_upload.hits, busy_tags.hits) == (1, 3, 1, 1, 2)
    assert "looking for the copy before anything is sent again" in first.stderr
    assert len(re.findall(r"(?m)^enliveningedge: \d+ created", first.stdout)) == 1
    done = tally(first)  # a copy created, then its update's answer lost, counts as failed: it is due again
    assert done["created"] + done["failed"] == 3 and done["failed"] <= 1, first.stdout
    project.assert_never_a_duplicate("after run 1")
    assert len(project.rows()) == 3  # every lost create was found and adopted, none sent twice
    assert proxy.count("POST", CREATE, outcome="dropped") == 3 and proxy.count("POST", CREATE, "forwarded") == 0

    # Run 2: the list reads are answered 503 (then waited out), a tag lookup is reset, the next
    # update's answer is lost again.
    proxy.clear()
    busy_list = proxy.answer(503, "GET", LIST, times=2, retry_after=1)
    proxy.reset("GET", TAGS)
    again_lost = proxy.drop_after_forward("POST", UPDATE)
    second = project.sync("-vv")
    assert second.returncode in (0, 1), second.stderr
    assert busy_list.hits == 2
    project.assert_never_a_duplicate("after run 2")
    assert tally(second)["held"] == 0, second.stdout  # our own unanswered write is not a partner's edit
    assert again_lost.hits <= 1

    # The author revises the text; run 3 has every create and update answer lost. Run 4 is clean.
    project.revision = 1
    project.write_feed()
    proxy.clear()
    proxy.drop_after_forward("POST", CREATE, times=None)
    proxy.drop_after_forward("POST", UPDATE, times=None)
    third = project.sync("-vv")
    assert third.returncode == 1, third.stdout + third.stderr  # the updates' outcomes are unknown: retried next run
    project.assert_never_a_duplicate("after run 3")

    proxy.clear()
    clean = project.sync()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert tally(clean)["held"] == 0, clean.stdout
    project.assert_converged()
    assert proxy.count("POST", CREATE) == 4  # 3 creates + the one answered 429: nothing was ever sent twice

    # A further sync changes nothing on WordPress.
    before = {slug: p["modified_gmt"] for slug, p in project.posts().items()}
    writes = proxy.count("POST")
    final = project.sync()
    assert final.returncode == 0, final.stderr
    assert counts(final).startswith("0 created, 0 updated, 3 unchanged, 1 skipped"), final.stdout
    assert proxy.count("POST") == writes
    assert {slug: p["modified_gmt"] for slug, p in project.posts().items()} == before
    assert any("DEBUG" in text for text in project.outputs)
    project.assert_no_secret()


def test_kill_9_at_random_moments_then_two_syncs_at_once(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("SYNDICATE_FAULT_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    with capsys.disabled():
        print(f"\n[test_faults] kill -9 seed: {seed} (SYNDICATE_FAULT_SEED={seed} replays it)")
    proxy = project.proxy
    # Every write takes a while, so that a kill often lands while one is in flight: the proxy
    # then carries it to WordPress although the client is gone.
    proxy.delay(0.6, "POST", CREATE, times=None)
    proxy.delay(0.3, "POST", r"^/wp-json/wp/v2/(posts/\d+|media)", times=None)
    proxy.delay(0.05, "GET", ".", times=None)

    # Part 4 is published later (round 3); the author revises every text in rounds 2, 4 and 5.
    project.with_part4 = False
    project.write_feed()
    kills = []
    for round_no in range(6):
        if round_no == 3:
            project.with_part4 = True
        if round_no in (2, 4, 5):
            project.revision += 1
        if round_no in (2, 3, 4, 5):
            project.write_feed()
        seen_before = len(proxy.seen)
        started = project.start("-v", "sync")
        # The random moment is counted from the start (a kill while it starts up, reads the feed and
        # opens its store), or, mostly, from its first request to WordPress (a kill while it pushes).
        anchor = "start" if rng.random() < 0.25 else "first request"
        if anchor == "first request":
            deadline = time.monotonic() + 30
            while len(proxy.seen) == seen_before and started.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        moment = rng.uniform(0.1, 2.0)
        time.sleep(moment)
        killed_at = time.monotonic()
        alive = started.kill()
        kills.append((round_no, f"{moment:.2f} s after its {anchor}", "killed" if alive else "had ended", killed_at))
        project.assert_never_a_duplicate(f"after kill {round_no} at {moment:.2f} s (seed {seed})")
        if not alive:  # it finished before the kill: it must have finished well
            assert started.process.returncode in (0, 1), started.stderr
    assert sum(k[2] == "killed" for k in kills) >= 3, kills  # most kills hit a running sync

    # Two syncs started at once: one runs, the other exits 75 at once. (The first read of whichever
    # holds the lock is slowed down, so that they overlap however loaded this machine is.)
    project.revision += 1
    project.write_feed()
    proxy.delay(2, "GET", LIST)
    a, b = project.start("sync"), project.start("sync")
    codes = sorted([a.wait(), b.wait()])
    assert codes == [0, 75], (codes, a.stdout, a.stderr, b.stdout, b.stderr)
    loser = a if a.process.returncode == 75 else b
    assert "another syndicate sync is running" in loser.stderr
    project.assert_never_a_duplicate("after two syncs at once")

    # Two at once with --wait: they take turns; the second finds nothing left to do.
    project.revision += 1
    project.write_feed()
    a, b = project.start("sync", "--wait"), project.start("sync", "--wait")
    assert (a.wait(), b.wait()) == (0, 0), (a.stderr, b.stderr)
    summaries = sorted([counts(a.stdout), counts(b.stdout)])
    assert summaries[0].startswith("0 created, 0 updated, 3 unchanged"), summaries
    assert summaries[1].startswith("0 created, 3 updated"), summaries
    project.assert_never_a_duplicate("after two syncs with --wait")

    proxy.clear()
    clean = project.sync()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert counts(clean).startswith("0 created, 0 updated, 3 unchanged, 1 skipped"), clean.stdout
    project.assert_converged()
    project.assert_no_secret()
    with capsys.disabled():
        for round_no, moment, what, killed_at in kills:
            writes = [write_name(s) for s in proxy.in_flight(killed_at, "POST")] if what == "killed" else []
            print(f"[test_faults] kill {round_no}: {moment}: {what}; writes in flight: {', '.join(writes) or 'none'}")


def test_a_partner_refusing_every_call_is_reported_once_and_left_alone(project: Project) -> None:
    proxy = project.proxy
    proxy.answer(401, times=None, body='{"code":"rest_not_logged_in","message":"You are not currently logged in.",'
                                       '"data":{"status":401}}')
    down = project.sync("-vv")
    assert down.returncode == 1, down.stdout + down.stderr
    [report] = reports(down)
    assert "refused the credentials of user 'author'" in report, down.stdout + down.stderr
    assert proxy.count() == 1  # one refusal, and nothing more was tried on that partner this run
    assert project.rows() == []
    ledger = project.status()
    assert {d["state"] for d in ledger} <= {"pending"}  # still due

    proxy.clear()
    back = project.sync()
    assert back.returncode == 0, back.stdout + back.stderr
    assert counts(back).startswith("3 created"), back.stdout
    project.assert_converged()
    project.assert_no_secret()


def test_a_lost_answer_then_a_partner_going_down_is_reconciled_not_repeated(project: Project) -> None:
    proxy = project.proxy
    # Run 1: the first create is carried out but its answer is lost, and from then on every search
    # for it is reset: the partner is down before anyone could tell whether the copy exists.
    proxy.drop_after_forward("POST", CREATE, times=None)
    searches = proxy.reset("GET", LIST, times=None)
    down = project.sync()
    assert down.returncode == 1, down.stdout + down.stderr
    assert searches.hits >= 1 and proxy.count("POST", CREATE) == 1
    [report] = reports(down)  # reported once
    assert "cannot reach" in report, down.stdout + down.stderr
    assert len(project.rows()) == 1  # the copy exists; the ledger does not know it yet
    [pending] = [d for d in project.status() if d["remote_id"] is None and d["state"] != "pending"]
    assert pending["state"] == "intent", pending

    # Run 2: the search still fails (HTTP 500, retried, then given up): nothing may be sent for
    # that entry blindly; the other two parts go out.
    proxy.clear()
    proxy.answer(500, "GET", r"^/wp-json/wp/v2/posts/?\?(?!include)", times=4)
    unsure = project.sync()
    assert unsure.returncode == 1, unsure.stdout + unsure.stderr
    assert "could not find out what became of an unanswered write" in unsure.stdout + unsure.stderr
    project.assert_never_a_duplicate("after a run that could not reconcile")
    assert len(project.rows()) == 3

    # Run 3: all is well again: the copy is found and adopted, and completed.
    proxy.clear()
    clean = project.sync()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    project.assert_converged()
    assert proxy.count("POST", CREATE) == 3
    project.assert_no_secret()


def test_a_create_that_times_out_and_lands_late_is_adopted_not_repeated(project: Project) -> None:
    project.timeout = 3
    project.write()
    proxy = project.proxy
    # The first create is held back by the network longer than syndicate waits for an answer; it
    # reaches WordPress only after syndicate has looked for it (and not found it).
    late = proxy.delay(6, "POST", CREATE)
    first = project.sync("-v")
    assert first.returncode == 1, first.stdout + first.stderr
    assert late.hits == 1 and "no answer within 3 s" in first.stdout + first.stderr
    deadline = time.monotonic() + 15
    while proxy.count("POST", CREATE) < 3 and time.monotonic() < deadline:  # the late create lands
        time.sleep(0.1)
    time.sleep(0.5)
    assert len(project.rows()) == 3  # all three exist on WordPress; the ledger knows two of them
    assert sorted(d["state"] for d in project.status()) == ["intent", "ok", "ok"]

    second = project.sync()
    assert second.returncode == 0, second.stdout + second.stderr
    project.assert_converged()
    assert proxy.count("POST", CREATE) == 3  # the late one was adopted, never sent again
    project.assert_no_secret()
