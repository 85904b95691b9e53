"""The founding example into a REAL Ghost 5.x through the real CLI, and the Ghost publisher's edge paths.

Ghost runs on 127.0.0.1 (tests/integration/ghost_server.py, session-wide, reset per test); the
featured images come from a small HTTP server on 127.0.0.1 started here (``[network] allow_private``).
What Ghost's HTML→Lexical conversion keeps is asserted on the HTML Ghost itself returns.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syndicate.models import Article, Image
from syndicate.publishers import ghost as ghost_kind
from syndicate.publishers.base import FetchedImage, PartnerEdited, PublishContext

from ..fakes import FileServer, png, pngs
from ..safety import problems
from . import ghost_server
from .fault_proxy import FaultProxy

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SYNDICATE = Path(sys.executable).with_name("syndicate")
KEY_ENV = "SYNDICATE_IT_GHOST_KEY"
PART1 = "https://www.easierinc.com/radical-models-of-organising/"
PART2 = "https://www.easierinc.com/radical-models-of-public-service/"
PART3 = "https://www.easierinc.com/radical-models-of-commissioning-and-regulation/"
PART4 = "https://www.easierinc.com/radical-models-of-leadership/"
PART4_IMAGE = "https://www.easierinc.com/wp-content/uploads/2019/04/leadership.jpg"
CAPTION = ('Featured Image/graphic link added by Enlivening Edge Magazine. '
           '<a href="https://pixabay.com/users/geralt-9301/">Image by Gerd Altmann from Pixabay</a>')


@pytest.fixture(autouse=True, scope="module")
def _syndicate_installed() -> None:
    if not SYNDICATE.exists():
        pytest.skip("the syndicate command is not installed in this environment")



@pytest.fixture()
def image_server() -> Iterator[FileServer]:
    server = FileServer(pngs(network=png(64, 40, (30, 90, 200)), leadership=png(48, 32, (200, 60, 30))))
    try:
        yield server
    finally:
        server.close()


def write_config(folder: Path, site: ghost_server.GhostSite, images: FileServer, url: str | None = None) -> Path:
    """The founding example (config/syndicate.toml) with Enlivening Edge on Ghost, images served locally."""
    folder.mkdir(parents=True, exist_ok=True)
    feed = (REPO / "config" / "easierinc-feed.xml").read_text(encoding="utf-8")
    assert PART4_IMAGE in feed
    (folder / "easierinc-feed.xml").write_text(feed.replace(PART4_IMAGE, images.url + "/leadership.png"),
                                               encoding="utf-8")
    config = folder / "syndicate.toml"
    config.write_text(f"""
[network]
allow_private = true        # the featured images come from 127.0.0.1 in this test

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
name = "Enlivening Edge"
kind = "ghost"
url = "{url or site.url}"
admin_api_key = {{ env = "{KEY_ENV}" }}
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
entry = "{PART1}"
partner = "enliveningedge"
featured_image = "{images.url}/network.png"
featured_image_alt = "A network of connected points"
featured_image_credit = "Image by Gerd Altmann from Pixabay"
featured_image_credit_url = "https://pixabay.com/users/geralt-9301/"
featured_image_note = "Featured Image/graphic link added by Enlivening Edge Magazine."
""", encoding="utf-8")
    return config


class Syndicate:
    """The installed ``syndicate`` command, run as cron would run it; every output is kept for the leak check."""

    def __init__(self, config: Path, key: str) -> None:
        self.config, self.key = config, key
        self.outputs: list[str] = []

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
        env[KEY_ENV] = self.key
        result = subprocess.run([str(SYNDICATE), "--config", str(self.config), *args], capture_output=True,
                                text=True, env=env, timeout=300, cwd=self.config.parent)
        self.outputs += [result.stdout, result.stderr]
        return result

    def json(self, *args: str) -> Any:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def ghost_posts(site: ghost_server.GhostSite) -> dict[str, dict[str, Any]]:
    """Every post on the site (any status), with Ghost's HTML, by canonical URL."""
    posts = site.browse("posts", "formats=html&filter=status:[draft,published,scheduled,sent]")
    return {p["canonical_url"] or p["id"]: p for p in posts}


def text_of(html: str) -> str:
    """Ghost's HTML with the inline emphasis it moves around removed (it wraps link text in its own <em>)."""
    return re.sub(r"</?em>", "", html)


def test_founding_example_on_real_ghost(ghost: ghost_server.GhostSite, image_server: FileServer,
                                        tmp_path: Path) -> None:
    secret = ghost.admin_api_key.split(":")[1]
    run = Syndicate(write_config(tmp_path / "example", ghost, image_server), ghost.admin_api_key)

    # --- one sync: three copies, consistent with each other (-vv: the debug output is checked for leaks)
    result = run("-vv", "sync")
    assert result.returncode == 0, result.stderr
    assert "enliveningedge: 3 created, 0 updated, 0 unchanged, 1 skipped" in result.stdout
    posts = ghost_posts(ghost)
    assert sorted(posts) == sorted([PART1, PART2, PART4])  # Part 3 is for members: never sent
    p1, p2, p4 = posts[PART1], posts[PART2], posts[PART4]
    for p in (p1, p2, p4):
        assert p["status"] == "published"
        assert p["url"].startswith(ghost.url + "/radical-models-of-")
        assert {"#syndicated", "Next Stage Radicals"} <= {t["name"] for t in p["tags"]}
        assert sum(t["name"].startswith("#syn-") for t in p["tags"]) == 1   # the per-copy marker
        assert problems(p["html"]) == [], p["html"]
        assert "kg-card-begin: html" not in p["html"]
        html = text_of(p["html"])
        assert (f'By Andy Brogan and originally published on <a href="{p["canonical_url"]}">easierinc.com</a>'
                in html)
        assert html.rstrip().endswith("<p>Republished with permission of the author.</p>")
    assert p1["title"] == "Radical Models of Organising" and p1["slug"] == "radical-models-of-organising"
    assert p1["canonical_url"] == PART1
    assert p1["custom_excerpt"].startswith("This blog is the first of a short series")
    assert {t["name"] for t in p1["tags"]} >= {"Self-management"}

    # the credited featured image, uploaded to Ghost
    assert p1["feature_image"].startswith(ghost.url + "/content/images/")
    assert p1["feature_image"].endswith(".png")
    assert p1["feature_image_alt"] == "A network of connected points"
    assert p1["feature_image_caption"] == CAPTION
    assert p4["feature_image"].startswith(ghost.url + "/content/images/")
    assert p4["feature_image_caption"] == "Photo: Easier Inc."
    assert p2["feature_image"] is None
    assert set(image_server.hits) == {"/network.png", "/leadership.png"}

    # convergence in ONE sync: Part 1 links Ghost's own copies of Parts 2 and 4, Part 3 stays the original
    html1 = text_of(p1["html"])
    assert (f"Enlivening Edge's republication of <a href=\"{p2['url']}\">Part 2: Radical Models of Public Service"
            "</a> is here.") in html1
    assert (f"Enlivening Edge's republication of <a href=\"{p4['url']}\">Part 4: Radical Models of Leadership"
            "</a> is here.") in html1
    assert f'<a href="{p2["url"]}">Part 2 on Public Service</a>' in html1
    assert f'<a href="{p4["url"]}">Part 4 on Leadership</a>' in html1
    assert f'<a href="{PART3}">Part 3 on Commissioning and Regulation</a>' in html1
    assert CAPTION in html1  # the credit line in the body too
    assert html1.count('<iframe src="https://www.youtube.com/embed/') == 2   # kept as Ghost embed cards
    assert 'alt="Conway Hall"' in html1
    html2 = text_of(p2["html"])
    assert f'<a href="{p1["url"]}">Part 1 on Organising</a> set the scene.' in html2
    assert "<figcaption>A front-line team at work</figcaption>" in html2
    assert f'<a href="{p1["url"]}">Part 1: Radical Models of Organising</a>' in html2
    assert f'<a href="{p4["url"]}">Part 4: Radical Models of Leadership</a>' in html2

    # the ledger holds Ghost's URLs
    ledger = {d["entry"]: d for d in run.json("status", "--json")}
    assert {u: (d["state"], d["url"], d["remote_status"]) for u, d in ledger.items()} == {
        PART1: ("ok", p1["url"], "published"), PART2: ("ok", p2["url"], "published"),
        PART4: ("ok", p4["url"], "published")}

    # --- a second sync changes nothing remote
    result = run("sync")
    assert result.returncode == 0, result.stderr
    assert "enliveningedge: 0 created, 0 updated, 3 unchanged, 1 skipped" in result.stdout
    again = ghost_posts(ghost)
    assert {u: p["updated_at"] for u, p in again.items()} == {u: p["updated_at"] for u, p in posts.items()}

    # --- the magazine edits Part 2's title; then the author changes Part 2: our update is held
    api = ghost.api()
    api.request("PUT", f"/posts/{p2['id']}/", {"posts": [{"title": "Public Service, radically",
                                                         "updated_at": p2["updated_at"]}]})
    feed = run.config.parent / "easierinc-feed.xml"
    feed.write_text(feed.read_text(encoding="utf-8").replace(
        "rather than the process?", "rather than the process? (updated)"), encoding="utf-8")
    result = run("sync")
    assert result.returncode == 0, result.stderr
    assert "0 created, 0 updated, 2 unchanged, 1 skipped, 0 waiting, 1 held" in result.stdout
    assert re.search(r"(?i)warning\W+(syndicate: )?enliveningedge: update of .*radical-models-of-public-service/ held",
                     result.stdout + result.stderr)
    held = {d["entry"]: d for d in run.json("check", "--json")}
    assert held[PART2]["action"] == "held" and held[PART1]["action"] == "unchanged"
    kept = ghost_posts(ghost)[PART2]
    assert kept["title"] == "Public Service, radically" and "(updated)" not in kept["html"]
    result = run("sync")  # still held, still exit 0
    assert result.returncode == 0 and "1 held" in result.stdout

    # --- an editor decides: ours goes over theirs
    result = run("sync", "--overwrite", PART2)
    assert result.returncode == 0, result.stderr
    assert "0 created, 1 updated" in result.stdout
    pushed = ghost_posts(ghost)[PART2]
    assert pushed["title"] == "Radical Models of Public Service" and "(updated)" in pushed["html"]
    assert pushed["url"] == p2["url"] and pushed["status"] == "published"
    assert {d["entry"]: d["action"] for d in run.json("check", "--json")}[PART2] == "unchanged"

    # --- withdraw Part 4: a draft on Ghost, recorded, no longer linked, never recreated
    result = run("withdraw", PART4)
    assert result.returncode == 0, result.stderr
    p4_after = ghost_posts(ghost)[PART4]
    assert p4_after["status"] == "draft" and p4_after["id"] == p4["id"]
    ledger = {d["entry"]: d for d in run.json("status", "--json")}
    assert ledger[PART4]["state"] == "withdrawn" and ledger[PART4]["remote_status"] == "draft"
    result = run("sync")
    assert result.returncode == 0, result.stderr
    assert "0 created, 2 updated" in result.stdout
    final = ghost_posts(ghost)
    assert sorted(final) == sorted([PART1, PART2, PART4])  # not recreated
    assert final[PART4]["status"] == "draft" and final[PART4]["updated_at"] == p4_after["updated_at"]
    for url in (PART1, PART2):
        html = text_of(final[url]["html"])
        assert "republication of" in html  # Parts 1 and 2 still point at each other
        assert "Part 4: Radical Models of Leadership" not in html
        assert p4["url"] not in html
    # the cross-link goes back to the original, as the author wrote it (tracking parameters removed)
    assert re.search(r'<a href="https://(www\.)?easierinc\.com/radical-models-of-leadership/">Part 4 on Leadership</a>',
                     text_of(final[PART1]["html"]))
    assert {d["entry"]: d["action"] for d in run.json("check", "--json")} == {
        PART1: "unchanged", PART2: "unchanged", PART3: "skip", PART4: "withdrawn"}
    result = run("sync")
    assert result.returncode == 0 and "0 created, 0 updated, 2 unchanged" in result.stdout

    # --- the key's secret never appeared, not even at -vv
    everything = "\n".join(run.outputs)
    assert "DEBUG" in everything  # the -vv run did log at debug level
    assert secret not in everything and ghost.admin_api_key not in everything
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", everything)  # no JWT either


# ------------------------------------------------------------------------------------------------
# the publisher's own paths against the real server


class Media:
    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str]] = {}

    def get(self, url: str) -> tuple[str, str] | None:
        return self.items.get(url)

    def put(self, url: str, remote_id: str, remote_url: str) -> None:
        self.items[url] = (remote_id, remote_url)

    def forget(self, url: str) -> None:
        self.items.pop(url, None)


def make_publisher(site: ghost_server.GhostSite, monkeypatch: pytest.MonkeyPatch,
                   status: str = "draft") -> ghost_kind.Publisher:
    monkeypatch.setenv(KEY_ENV, site.admin_api_key)
    config = ghost_kind.Config.model_validate({
        "id": "mag", "name": "Partner Mag", "kind": "ghost", "url": site.url, "status": status,
        "admin_api_key": {"env": KEY_ENV, "key": "partners.mag.admin_api_key"}})
    image = png(20, 20, (0, 128, 0))
    context = PublishContext(
        fetch_image=lambda url: FetchedImage(url=url, data=image, content_type="image/png", filename="green.png"),
        media=Media(), sleep=lambda s: None)
    return ghost_kind.Publisher(config, context)


def an_article(**changes: Any) -> Article:
    base: dict[str, Any] = dict(
        partner="mag", source="s", guid="g-1", title="A post", slug="a-post",
        html="<p><em>By Jo and originally published on <a href=\"https://origin.example/a-post/\">origin</a></em></p>"
             "\n<p>Body text.</p>\n", excerpt="An excerpt.", canonical_url="https://origin.example/a-post/",
        tags=("Essays",), status="draft",
        featured_image=Image(url="https://origin.example/green.png", alt="Green", caption="A green square",
                             credit="Jo", credit_url="https://origin.example/jo/"),
        source_url="https://origin.example/a-post/")
    base.update(changes)
    return Article(**base)


def test_publisher_paths_on_real_ghost(ghost: ghost_server.GhostSite, monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = make_publisher(ghost, monkeypatch)
    marker = "syn-00000000000000aa"
    try:
        checks = publisher.test()
        assert all(c.ok for c in checks), checks
        assert [c.what for c in checks] == ["Admin API key", "Ghost reachable", "Ghost version",
                                            "Admin API key accepted"]

        copy = publisher.create(an_article(), marker)
        assert copy.status == "draft" and copy.url and "/p/" in copy.url  # a draft's preview URL
        post = ghost.api().request("GET", f"/posts/{copy.remote_id}/?formats=html")["posts"][0]
        assert post["feature_image_caption"] == 'A green square. <a href="https://origin.example/jo/">Jo</a>'
        assert copy.fields_hash == ghost_kind.fields_hash(post)

        # a lost answer: the copy is found by our marker (drafts included), and only ours
        found = publisher.find(an_article(), marker)
        assert found is not None and found.remote_id == copy.remote_id
        assert publisher.find(an_article(), "syn-00000000000000bb") is None
        # a post of the partner's own with the same slug and canonical URL is never adopted
        ghost.api().request("POST", "/posts/?source=html", {"posts": [{
            "title": "Theirs", "slug": "b-post", "html": "<p>x</p>", "canonical_url": "https://origin.example/b/"}]})
        lookalike = an_article(slug="b-post", canonical_url="https://origin.example/b/")
        assert publisher.find(lookalike, marker + "0") is None

        # the same slug again: Ghost renames it, we keep what Ghost reports
        second = publisher.create(an_article(guid="g-2"), "syn-00000000000000cc")
        assert second.slug == "a-post-2"

        states = publisher.refresh([copy.remote_id, second.remote_id, "0" * 24])
        assert states[copy.remote_id] == copy and states["0" * 24] is None

        # Ghost's 409: our read was stale because an editor published the copy meanwhile (not an edit)
        # (Ghost's updated_at counts whole seconds: a save in the same second as a read is no collision)
        statuses: list[int] = []
        publisher.client.session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
        stale = ghost.api().request("GET", f"/posts/{copy.remote_id}/?formats=html")["posts"][0]
        time.sleep(1.1)
        ghost.api().request("PUT", f"/posts/{copy.remote_id}/", {"posts": [{"status": "published",
                                                                            "updated_at": stale["updated_at"]}]})
        reads = iter([stale])
        real_read = publisher._read
        publisher._read = lambda rid: next(reads, None) or real_read(rid)  # type: ignore[method-assign]
        updated = publisher.update(copy.remote_id, an_article(title="A post, revised"), marker, copy.fields_hash)
        assert statuses == [409, 200, 200]  # collision, fresh read, retried write
        assert updated.status == "published"  # we never touch the status on update
        assert ghost.api().request("GET", f"/posts/{copy.remote_id}/")["posts"][0]["title"] == "A post, revised"

        # … and when the editor changed the title meanwhile, the update is held
        stale = ghost.api().request("GET", f"/posts/{copy.remote_id}/?formats=html")["posts"][0]
        time.sleep(1.1)
        ghost.api().request("PUT", f"/posts/{copy.remote_id}/", {"posts": [{"title": "Their title",
                                                                            "updated_at": stale["updated_at"]}]})
        reads = iter([stale])
        statuses.clear()
        with pytest.raises(PartnerEdited):
            publisher.update(copy.remote_id, an_article(title="Ours again"), marker, updated.fields_hash)
        assert statuses == [409, 200]  # collision, fresh read: held, nothing re-sent
        assert ghost.api().request("GET", f"/posts/{copy.remote_id}/")["posts"][0]["title"] == "Their title"
        del publisher._read

        withdrawn = publisher.withdraw(copy.remote_id)
        assert withdrawn is not None and withdrawn.status == "draft"
        assert publisher.withdraw(second.remote_id, delete=True) is None
        assert publisher.refresh([second.remote_id]) == {second.remote_id: None}
    finally:
        publisher.close()


def test_a_long_alt_text_is_cut_to_what_every_ghost_version_stores(ghost: ghost_server.GhostSite,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Ghost 6 widened posts_meta.feature_image_alt to 2000 characters, but its post_revisions table
    still holds 191 and refuses more (422): 191 (counted in code points) stays the cap on 5.x and 6.x."""
    publisher = make_publisher(ghost, monkeypatch)
    alt = "Ein grüner Würfel 🟩 " * 20  # 400 code points, astral ones among them
    try:
        copy = publisher.create(an_article(featured_image=Image(url="https://origin.example/green.png", alt=alt)),
                                "syn-00000000000000dd")
    finally:
        publisher.close()
    post = ghost.api().request("GET", f"/posts/{copy.remote_id}/")["posts"][0]
    assert post["feature_image_alt"] == alt[:191]


def test_a_refused_key_is_reported_plainly_without_the_secret(ghost: ghost_server.GhostSite, tmp_path: Path,
                                                              image_server: FileServer) -> None:
    key_id = ghost.admin_api_key.split(":")[0]
    wrong = f"{key_id}:{'ab' * 32}"
    run = Syndicate(write_config(tmp_path / "example", ghost, image_server), wrong)
    result = run("partners", "test")
    assert result.returncode == 1
    assert "the Admin API key was refused (INVALID_JWT)" in result.stdout + result.stderr
    result = run("-vv", "sync")
    assert result.returncode == 1
    assert ("enliveningedge: the Admin API key was refused (INVALID_JWT): "
            "check admin_api_key (id:secret of a Custom Integration)") in result.stderr
    assert ghost_posts(ghost) == {}
    everything = "\n".join(run.outputs)
    assert "ab" * 32 not in everything

    run.key = ghost.admin_api_key
    result = run("partners", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   Ghost reachable" in result.stdout and "ok   Admin API key accepted" in result.stdout
    assert f"ok   Ghost version: {ghost.series}\n" in result.stdout  # the one running, e.g. 6.65
    assert ghost_posts(ghost) == {}  # partners test changes nothing
    assert ghost.admin_api_key.split(":")[1] not in "\n".join(run.outputs)


def test_drafts_an_editor_publishes_are_relinked_not_held(ghost: ghost_server.GhostSite, image_server: FileServer,
                                                          tmp_path: Path) -> None:
    config = write_config(tmp_path / "example", ghost, image_server)
    config.write_text(config.read_text(encoding="utf-8").replace('status = "publish"', 'status = "draft"'),
                      encoding="utf-8")
    run = Syndicate(config, ghost.admin_api_key)
    result = run("sync")
    assert result.returncode == 0, result.stderr
    posts = ghost_posts(ghost)
    assert {p["status"] for p in posts.values()} == {"draft"}
    draft_url = posts[PART2]["url"]
    assert "/p/" in draft_url  # Ghost's preview URL of a draft
    assert draft_url in posts[PART1]["html"]

    # an editor publishes Part 2 in Ghost: a status change, not an edit
    api = ghost.api()
    api.request("PUT", f"/posts/{posts[PART2]['id']}/", {"posts": [{"status": "published",
                                                                     "updated_at": posts[PART2]["updated_at"]}]})
    result = run("sync")
    assert result.returncode == 0, result.stderr
    assert "0 held" in result.stdout and "0 failed" in result.stdout
    after = ghost_posts(ghost)
    live_url = after[PART2]["url"]
    assert live_url == ghost.url + "/radical-models-of-public-service/"
    ledger = {d["entry"]: d for d in run.json("status", "--json")}
    assert ledger[PART2]["url"] == live_url and ledger[PART2]["remote_status"] == "published"
    for url in (PART1, PART4):
        assert live_url in after[url]["html"] and draft_url not in after[url]["html"]
        assert after[url]["status"] == "draft"  # we never publish what the partner keeps as a draft
    assert after[PART2]["status"] == "published"
    result = run("sync")
    assert result.returncode == 0 and "0 created, 0 updated, 3 unchanged" in result.stdout


def test_lost_answers_never_duplicate_a_copy(ghost: ghost_server.GhostSite, image_server: FileServer,
                                             tmp_path: Path) -> None:
    with FaultProxy(ghost.url) as proxy:
        run = Syndicate(write_config(tmp_path / "example", ghost, image_server, url=proxy.url), ghost.admin_api_key)
        api = r"^/ghost/api/admin"
        proxy.drop_after_forward("POST", api + r"/images/upload/", times=1)   # Part 4's image: a lost upload
        proxy.drop_after_forward("POST", api + r"/posts/\?", times=2)        # Parts 2 and 1: created, answers lost
        busy = proxy.answer(503, "GET", api + r"/posts/\?", times=1, retry_after=1)  # looking: come back later
        proxy.drop_after_forward("PUT", api + r"/posts/", times=1)            # the first update: answer lost
        result = run("-v", "sync")  # -v: the log says how each lost answer was reconciled
        assert result.returncode == 1, result.stderr  # Part 4 failed (its image), the rest went on
        assert "enliveningedge: 2 created" in result.stdout and "1 failed" in result.stdout
        assert proxy.count("POST", r"/posts/\?", outcome="dropped") == 2
        assert proxy.count("PUT", r"/posts/", outcome="dropped") == 1
        assert busy.hits == 1
        assert "adopting it" in result.stderr or "looking for the copy" in result.stderr
        posts = ghost_posts(ghost)
        assert sorted(posts) == sorted([PART1, PART2])
        assert posts[PART2]["url"] in posts[PART1]["html"] and posts[PART1]["url"] in posts[PART2]["html"]

        proxy.clear()
        result = run("sync")
        assert result.returncode == 0, result.stderr
        assert "enliveningedge: 1 created, 2 updated" in result.stdout
        result = run("sync")
        assert result.returncode == 0 and "0 created, 0 updated, 3 unchanged" in result.stdout

    posts = ghost_posts(ghost)
    assert sorted(posts) == sorted([PART1, PART2, PART4])  # one post per entry: nothing duplicated
    markers = [t["name"] for p in posts.values() for t in p["tags"] if t["name"].startswith("#syn-")]
    assert len(markers) == len(set(markers)) == 3
    for url in (PART1, PART2):
        assert posts[PART4]["url"] in posts[url]["html"]


def test_audit_passes_on_the_copies_as_ghost_renders_them(ghost: ghost_server.GhostSite, image_server: FileServer,
                                                          tmp_path: Path) -> None:
    # Ghost's own theme prints the native canonical_url and tags outbound links (?ref=): the copies pass.
    run = Syndicate(write_config(tmp_path / "audit", ghost, image_server), ghost.admin_api_key)
    assert run("sync").returncode == 0
    with ghost.public():  # the harness's site is private: a private Ghost shows readers only its password page
        result = run("audit", "--json")
    results = json.loads(result.stdout)
    assert result.returncode == 0, json.dumps(results, indent=1)
    assert len(results) == 3 and {r["status"] for r in results} == {"ok"}, results
    assert {r["url"] for r in results} == {p["url"] for p in ghost_posts(ghost).values()}
