"""The founding example against a real WordPress (``wordpress`` fixture), through the real CLI.

The partner is WordPress with its Author-role user (no ``unfiltered_html``), the canonical URL goes
to the ``syndicate_canonical`` meta key the harness registers, and the featured images come from a
small HTTP server on 127.0.0.1 started here. Every CLI run's output is kept, and none may contain
the application password.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from syndicate.cli import cli
from syndicate.models import Article
from syndicate.publishers.base import FetchedImage, PublishContext
from syndicate.publishers.wordpress import Config, Publisher

from ..fakes import FileServer, png
from .wordpress_server import WordPressSite

pytestmark = pytest.mark.integration

FEED = Path(__file__).resolve().parents[2] / "config" / "easierinc-feed.xml"
PASSWORD_ENV = "SYNDICATE_IT_WP_PASSWORD"
ORIGINAL = "https://www.easierinc.com/{}/"
PART1, PART2, PART4 = "radical-models-of-organising", "radical-models-of-public-service", "radical-models-of-leadership"
SHORTCODES = '<p>Shortcodes in a feed: [gallery] and [caption width="300"]A caption shortcode[/caption]</p>'


@pytest.fixture
def images() -> Iterator[FileServer]:
    """The featured images of the example (an override's and Part 4's own), served from 127.0.0.1."""
    picture = ("image/png", png(1, 1, (32, 96, 160)))
    server = FileServer({"/photo/network-1867761_1280.png": picture, "/uploads/leadership.png": picture})
    try:
        yield server
    finally:
        server.close()


@dataclass
class Project:
    """A config folder driving the real CLI against the test WordPress."""

    root: Path
    site: WordPressSite
    images: FileServer
    outputs: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "syndicate.toml"

    @property
    def feed(self) -> Path:
        return self.root / "easierinc-feed.xml"

    def run(self, *args: str, password: str | None = None) -> Result:
        """``syndicate --config … ARGS`` in this process; its output is kept for the secret check."""
        root = logging.getLogger()
        saved = (list(root.handlers), root.level)
        try:
            result = CliRunner().invoke(cli, ["--config", str(self.config), *args],
                                        env={PASSWORD_ENV: password or self.site.author_app_password})
        finally:  # the CLI sets up logging on a stream that is gone once invoke returns
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])
        text = result.output + (result.stderr if result.stderr_bytes is not None else "")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            text += "".join(traceback.format_exception(result.exception))
        self.outputs.append(text)
        return result

    def json(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def edit_feed(self, old: str, new: str) -> None:
        text = self.feed.read_text(encoding="utf-8")
        assert old in text
        self.feed.write_text(text.replace(old, new, 1), encoding="utf-8")

    # --- WordPress as its administrator sees it --------------------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, f"{self.site.url}/wp-json/wp/v2{path}",
                                    auth=(self.site.username, self.site.app_password), timeout=30, **kwargs)
        assert response.status_code < 400, response.text
        return response

    def posts(self) -> dict[str, dict[str, Any]]:
        """Every post but trashed ones, by slug, with raw fields."""
        listing = self.admin("GET", "/posts", params={"status": "publish,future,draft,pending,private",
                                                      "context": "edit", "per_page": 100}).json()
        return {p["slug"]: p for p in listing}

    def assert_no_secret(self) -> None:
        password = self.site.author_app_password
        token = base64.b64encode(f"{self.site.author_username}:{password}".encode()).decode()
        for text in self.outputs:
            for secret in (password, password.replace(" ", ""), token):
                assert secret not in text


@pytest.fixture
def project(tmp_path: Path, wordpress: WordPressSite, images: FileServer) -> Project:
    shutil.copyfile(FEED, tmp_path / "easierinc-feed.xml")  # not its read-only mode
    project = Project(tmp_path, wordpress, images)
    # Part 4's own image, and shortcodes in Part 2's text, as an author's feed could have them.
    project.edit_feed("https://www.easierinc.com/wp-content/uploads/2019/04/leadership.jpg",
                      f"{images.url}/uploads/leadership.png")
    project.edit_feed("<p>What changes when a public service starts with the person rather than the process?</p>",
                      "<p>What changes when a public service starts with the person rather than the process?</p>\n"
                      + SHORTCODES)
    project.config.write_text(f"""
[network]
allow_private = true        # the images come from 127.0.0.1 in this test

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
url = "{wordpress.url}"
username = "{wordpress.author_username}"
password = {{ env = "{PASSWORD_ENV}" }}
status = "publish"
updates = "push"
canonical_meta_key = "syndicate_canonical"

[[grants]]
source = "easierinc"
partner = "enliveningedge"
evidence = "Republished with permission of the author (email, March 2019)"
exclude_categories = ["Members only"]

[[overrides]]
source = "easierinc"
entry = "https://www.easierinc.com/radical-models-of-organising/"
partner = "enliveningedge"
featured_image = "{images.url}/photo/network-1867761_1280.png"
featured_image_alt = "A network of connected points"
featured_image_credit = "Image by Gerd Altmann from Pixabay"
featured_image_credit_url = "https://pixabay.com/users/geralt-9301/"
featured_image_note = "Featured Image/graphic link added by Enlivening Edge Magazine."
""", encoding="utf-8")
    return project


def sync_counts(result: Result) -> str:
    line = next(line for line in result.stdout.splitlines() if line.startswith("enliveningedge:"))
    return line.split(": ", 1)[1]


def series_note(post: dict[str, Any], part: str) -> bool:
    """Does the post's series note list this part?"""
    return "Enlivening Edge Magazine's republication of <a href=" in post["content"]["raw"] and re.search(
        r"republication of <a href=\"[^\"]*\">" + re.escape(part), post["content"]["raw"]) is not None


def test_one_sync_creates_three_converged_posts_and_a_second_changes_nothing(project: Project) -> None:
    result = project.run("-vv", "sync")
    assert result.exit_code == 0, result.output
    assert sync_counts(result).startswith("3 created, 0 updated, 0 unchanged, 1 skipped")

    posts = project.posts()
    assert sorted(posts) == sorted([PART1, PART2, PART4])  # exactly three: Part 3 is for members only
    count = project.site.sql("SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post'").strip()
    assert count == "3"
    author_id = project.admin("GET", "/users", params={"search": project.site.author_username,
                                                        "context": "edit"}).json()[0]["id"]
    for slug, post in posts.items():
        raw = post["content"]["raw"]
        assert post["status"] == "publish" and post["author"] == author_id
        assert raw.startswith(f'<p><em>By Andy Brogan and originally published on <a href="{ORIGINAL.format(slug)}">'
                              "easierinc.com</a></em></p>")
        assert "<p><em>Republished with permission of the author.</em></p>" in raw
        assert re.search(r"<!-- syndicate:syn-[0-9a-f]{16} -->\s*$", raw)
        assert post["meta"]["syndicate_canonical"] == ORIGINAL.format(slug)  # read back from WordPress
        assert "<script" not in raw and "onclick" not in raw

    # Convergence within the one sync: Part 1 links WordPress's own permalinks of Parts 2 and 4.
    part1, part2, part4 = posts[PART1], posts[PART2], posts[PART4]
    assert part2["link"] == f"{project.site.url}/{PART2}/" and part4["link"] == f"{project.site.url}/{PART4}/"
    for other in (part2, part4):
        assert f'href="{other["link"]}"' in part1["content"]["raw"]
        assert f'href="{part1["link"]}"' in other["content"]["raw"]
    assert series_note(part1, "Part 2: Radical Models of Public Service")
    assert series_note(part1, "Part 4: Radical Models of Leadership")
    assert f'<a href="{part2["link"]}">Part 2 on Public Service</a>' in part4["content"]["raw"]

    # Featured images: uploaded once each, alt text and credit in the caption.
    media = project.admin("GET", f"/media/{part1['featured_media']}", params={"context": "edit"}).json()
    assert media["alt_text"] == "A network of connected points"
    assert media["caption"]["raw"] == ("Featured Image/graphic link added by Enlivening Edge Magazine. "
                                       '<a href="https://pixabay.com/users/geralt-9301/">Image by Gerd Altmann from '
                                       "Pixabay</a>")
    assert media["mime_type"] == "image/png"
    leadership = project.admin("GET", f"/media/{part4['featured_media']}", params={"context": "edit"}).json()
    assert leadership["caption"]["raw"] == "Photo: Easier Inc."
    assert part2["featured_media"] == 0
    assert sorted(project.images.hits) == ["/photo/network-1867761_1280.png", "/uploads/leadership.png"]

    # Tags by name, created once and shared.
    tags = {t["id"]: t["name"] for t in project.admin("GET", "/tags", params={"per_page": 100}).json()}
    assert sorted(tags[t] for t in part1["tags"]) == ["Next Stage Radicals", "Self-management"]
    assert set(part1["tags"]) & set(part2["tags"]) == {next(i for i, n in tags.items() if n == "Next Stage Radicals")}

    # No shortcode runs: stored encoded, rendered as text by WordPress and by the theme.
    assert re.search(r"&#0*91;gallery&#0*93;", part2["content"]["raw"])
    assert "[gallery]" not in part2["content"]["raw"] and "[caption" not in part2["content"]["raw"]
    rendered = part2["content"]["rendered"]
    assert "wp-caption" not in rendered and 'class="gallery' not in rendered
    page = requests.get(part2["link"], timeout=30)
    assert page.status_code == 200
    assert "Shortcodes in a feed" in page.text
    assert "wp-caption" not in page.text and 'class="gallery' not in page.text
    assert re.search(r"&#0*91;gallery&#0*93;", page.text)

    # A second sync changes nothing on WordPress.
    before = {slug: p["modified_gmt"] for slug, p in posts.items()}
    media_count = len(project.admin("GET", "/media", params={"per_page": 100}).json())
    again = project.run("sync")
    assert again.exit_code == 0, again.output
    assert sync_counts(again).startswith("0 created, 0 updated, 3 unchanged")
    assert {slug: p["modified_gmt"] for slug, p in project.posts().items()} == before
    assert len(project.admin("GET", "/media", params={"per_page": 100}).json()) == media_count

    status = project.json("status", "--json")
    assert sorted(d["url"] for d in status) == sorted(p["link"] for p in posts.values())
    assert {d["state"] for d in status} == {"ok"}

    test = project.run("partners", "test")
    assert test.exit_code == 0, test.output
    assert "ok   credentials: logged in as author" in test.output
    assert f"ok   WordPress version: {project.site.version}\n" in test.output  # the one running, e.g. 7.1.4
    assert "ok   no unfiltered_html" in test.output
    assert "ok   canonical meta key: syndicate_canonical is registered" in test.output

    assert any("DEBUG" in text for text in project.outputs)  # the -vv run did log HTTP
    project.assert_no_secret()


def test_a_partner_edit_is_held_until_overwrite(project: Project) -> None:
    assert project.run("sync").exit_code == 0
    part2 = project.posts()[PART2]
    project.admin("POST", f"/posts/{part2['id']}", json={"title": "Public Service, as our editor titles it"})
    project.edit_feed("rather than the process?</p>", "rather than the process? Everything else follows.</p>")

    held = project.run("sync")
    assert held.exit_code == 0, held.output
    assert "1 held" in sync_counts(held)
    assert re.search(r"warning: enliveningedge: update of .*radical-models-of-public-service/ held", held.output)
    kept = project.posts()[PART2]
    assert kept["title"]["raw"] == "Public Service, as our editor titles it"
    assert "Everything else follows." not in kept["content"]["raw"]
    decisions = {d["entry"]: d for d in project.json("check", "--json")}
    assert decisions[ORIGINAL.format(PART2)]["action"] == "held"
    assert decisions[ORIGINAL.format(PART1)]["action"] == "unchanged"

    still = project.run("sync")  # reported on every run, still exit 0, still not pushed
    assert still.exit_code == 0 and "1 held" in sync_counts(still)
    assert project.posts()[PART2]["title"]["raw"] == "Public Service, as our editor titles it"

    overwrite = project.run("sync", "--overwrite", "https://easierinc.com/radical-models-of-public-service")
    assert overwrite.exit_code == 0, overwrite.output
    assert "1 updated" in sync_counts(overwrite) and "0 held" in sync_counts(overwrite)
    ours = project.posts()[PART2]
    assert ours["title"]["raw"] == "Radical Models of Public Service"
    assert "Everything else follows." in ours["content"]["raw"]
    assert ours["id"] == part2["id"]
    states = {d["entry"]: d["state"] for d in project.json("status", "--json")}
    assert states[ORIGINAL.format(PART2)] == "ok"
    assert sync_counts(project.run("sync")).startswith("0 created, 0 updated, 3 unchanged")
    project.assert_no_secret()


def test_a_withdrawal_makes_a_draft_sticks_and_unlinks(project: Project) -> None:
    assert project.run("sync").exit_code == 0
    part4 = project.posts()[PART4]
    assert f'href="{part4["link"]}"' in project.posts()[PART1]["content"]["raw"]

    withdrawn = project.run("withdraw", ORIGINAL.format(PART4))
    assert withdrawn.exit_code == 0, withdrawn.output
    assert "enliveningedge: withdrawn" in withdrawn.output
    assert project.posts()[PART4]["status"] == "draft"
    states = {d["entry"]: d for d in project.json("status", "--json")}
    assert states[ORIGINAL.format(PART4)]["state"] == "withdrawn"

    after = project.run("sync")
    assert after.exit_code == 0, after.output
    assert sync_counts(after).startswith("0 created, 2 updated")
    posts = project.posts()
    assert sorted(posts) == sorted([PART1, PART2, PART4])  # not recreated
    assert posts[PART4]["status"] == "draft" and posts[PART4]["id"] == part4["id"]
    for slug in (PART1, PART2):
        raw = posts[slug]["content"]["raw"]
        assert not series_note(posts[slug], "Part 4: Radical Models of Leadership")
        assert part4["link"] not in raw and f"?p={part4['id']}" not in raw
        assert series_note(posts[slug], "Part 2" if slug == PART1 else "Part 1")
    # The body's link to Part 4 points at the original again.
    assert re.search(r'<a href="https://(www\.)?easierinc\.com/radical-models-of-leadership/">Part 4 on Leadership</a>',
                     posts[PART1]["content"]["raw"])
    decisions = {d["entry"]: d["action"] for d in project.json("check", "--json")}
    assert decisions[ORIGINAL.format(PART4)] == "withdrawn"
    assert sync_counts(project.run("sync")).startswith("0 created, 0 updated, 2 unchanged")
    project.assert_no_secret()


def test_refused_credentials_fail_the_run_in_plain_words(project: Project) -> None:
    wrong = "wrong-SECRET-pass word 1234"
    result = project.run("-vv", "sync", password=wrong)
    assert result.exit_code == 1, result.output
    assert "enliveningedge: WordPress refused the credentials of user 'author'" in result.output
    assert "application password" in result.output
    assert wrong not in result.output and wrong.replace(" ", "") not in result.output
    assert project.posts() == {}
    states = {d["entry"]: d["state"] for d in project.json("status", "--json")}
    assert set(states.values()) <= {"pending"}  # still due: the next run tries again
    assert project.run("sync").exit_code == 0
    assert len(project.posts()) == 3
    project.assert_no_secret()


def _publisher(site: WordPressSite, username: str, password_env: str) -> Publisher:
    class Media(dict):  # type: ignore[type-arg]
        def put(self, source_url: str, remote_id: str, remote_url: str) -> None:
            self[source_url] = (remote_id, remote_url)

        def forget(self, source_url: str) -> None:
            self.pop(source_url, None)

    config = Config.model_validate({"id": "mag", "name": "Mag", "url": site.url, "username": username,
                                    "password": {"env": password_env, "key": "partners.mag.password"},
                                    "status": "draft"})
    context = PublishContext(fetch_image=lambda url: FetchedImage(url, png(1, 1, (32, 96, 160)), "image/png", "x.png"),
                             media=Media())
    return Publisher(config, context)


def test_find_recognises_only_our_copy_on_the_real_server(wordpress: WordPressSite,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, wordpress.author_app_password)
    publisher = _publisher(wordpress, wordpress.author_username, PASSWORD_ENV)
    article = Article(partner="mag", source="s", guid="g", title="A post & its slug", slug="a-post",
                      html="<p>Body [gallery]</p>\n", excerpt="", canonical_url="https://orig.example/a-post/",
                      tags=("Found",), status="draft", featured_image=None, source_url="https://orig.example/a-post/",
                      published=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    try:
        # Someone else's post already holds the slug: ours becomes a-post-2 (drafts included).
        requests.post(f"{wordpress.url}/wp-json/wp/v2/posts", auth=(wordpress.username, wordpress.app_password),
                      json={"title": "The editor's own", "slug": "a-post", "status": "publish",
                            "content": "<p>Not ours</p>"}, timeout=30).raise_for_status()
        created = publisher.create(article, "syn-1111111111111111")
        assert created.slug == "a-post-2" and created.status == "draft"

        found = publisher.find(article, "syn-1111111111111111")
        assert found is not None and found.remote_id == created.remote_id
        assert found.fields_hash == created.fields_hash
        assert publisher.find(article, "syn-2222222222222222") is None
        renamed = Article(**{**article.__dict__, "slug": "a-slug-we-never-had"})
        assert publisher.find(renamed, "syn-1111111111111111") is not None  # by marker alone

        assert publisher.refresh([created.remote_id])[created.remote_id] == found
        withdrawn = publisher.withdraw(created.remote_id, delete=True)
        assert withdrawn is not None and withdrawn.status == "trash"
        assert publisher.refresh([created.remote_id]) == {created.remote_id: None}
        assert publisher.find(article, "syn-1111111111111111") is None  # a trashed copy is not adopted
    finally:
        publisher.close()


def test_partners_test_warns_when_the_user_has_unfiltered_html(wordpress: WordPressSite,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, wordpress.app_password)
    publisher = _publisher(wordpress, wordpress.username, PASSWORD_ENV)
    try:
        checks = {c.what: c for c in publisher.test()}
    finally:
        publisher.close()
    assert checks["unfiltered_html"].ok and checks["unfiltered_html"].warning
    assert "Author-role user" in checks["unfiltered_html"].detail
    monkeypatch.setenv(PASSWORD_ENV, "wrong wrong wrong wrong wrong wrong")
    refused = _publisher(wordpress, wordpress.author_username, PASSWORD_ENV)
    try:
        [check] = refused.test()
    finally:
        refused.close()
    assert not check.ok and check.what == "credentials" and "application password" in check.detail
    assert "wrong wrong" not in check.detail


# A URL alone on a line inside <pre>/<code>, and one that kses would leave alone on its line once it
# strips the <time> around it: WordPress 6.1's autoembed runs there too. The .mp4/.mp3 handlers need
# no network (an oEmbed provider such as Twitter would need one), so WordPress's own rendering shows
# whether it tried: a [video]/[audio] player in content.rendered.
AUTOEMBED_BAIT = ("<pre>curl\nhttps://media.example/clip.mp4\n</pre>"
                  "<pre><code>x\nHTTPS://MEDIA.EXAMPLE/song.mp3\n</code></pre>"
                  "<div>a\n<time>https://media.example/other.mp4</time>\nb</div>")


def test_nothing_we_send_is_autoembedded_by_the_real_wordpress(project: Project) -> None:
    project.edit_feed("<p>What changes when a public service starts with the person rather than the process?</p>",
                      "<p>What changes when a public service starts with the person rather than the process?</p>\n"
                      + AUTOEMBED_BAIT)
    result = project.run("sync")
    assert result.exit_code == 0, result.output
    post = project.posts()[PART2]
    rendered = project.admin("GET", f"/posts/{post['id']}").json()["content"]["rendered"]
    assert "curl" in rendered and "media.example/clip.mp4" in rendered  # the text is there…
    for player in ("wp-video", "wp-audio", "<video", "<audio"):  # …and WordPress embedded none of it
        assert player not in rendered, rendered
    page = requests.get(post["link"], timeout=30)
    assert page.status_code == 200
    assert "<video" not in page.text and "<audio" not in page.text
    assert "https://media.example/clip.mp4" in page.text.replace("&#104;", "h")
    project.assert_no_secret()


def test_audit_needs_a_plugin_that_prints_the_canonical_and_sees_a_trimmed_byline(project: Project) -> None:
    assert project.run("sync").exit_code == 0
    posts = project.posts()

    # Without a canonical plugin: core prints its own canonical, pointing at the copy.
    result = project.run("audit", "--json")
    assert result.exit_code == 1, result.output
    results = json.loads(result.stdout)
    assert len(results) == 3
    for r in results:
        assert r["status"] == "problems" and r["problems"] == [f"canonical points at {r['url']}, not the original"]
    test = project.run("partners", "test")
    assert "canonical: not honoured: " in test.output and "no plugin prints syndicate_canonical" in test.output

    # With a plugin that prints the meta key (as Yoast does): every copy passes.
    project.site.print_canonical()
    result = project.run("audit", "--json")
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in json.loads(result.stdout)} == {"ok"}
    assert "canonical: honoured: syndicate_canonical is registered and a plugin prints it" in \
        project.run("partners", "test").output

    # An editor removes the byline paragraph through the REST API.
    part1 = posts[PART1]
    raw = part1["content"]["raw"]
    byline = re.match(r"<p><em>By Andy Brogan.*?</p>\n?", raw)
    assert byline is not None
    project.admin("POST", f"/posts/{part1['id']}", json={"content": raw[byline.end():]})
    result = project.run("audit")
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if part1["link"] in line)
    assert line.endswith("problems: byline link missing"), result.stdout
    project.assert_no_secret()
