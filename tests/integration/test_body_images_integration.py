"""Body images (``images = "upload"``) into a REAL WordPress and a REAL Ghost, through the CLI.

The images come from a small HTTP server on 127.0.0.1 started here (``[network] allow_private``). What
is asserted is what the CMS itself holds: its media library (WordPress: the media endpoint's total;
Ghost, which lists no images, the files in its content folder), and the post's HTML as the CMS
returns it, every image in it pointing at the CMS's own copy — but one that answers 404, which keeps
its URL, with a warning in the summary and in ``status``. A second sync uploads nothing and changes
nothing; once the missing image appears, the next sync copies it and updates the post.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selectolax.lexbor import LexborHTMLParser

from syndicate.bodyimages import parse_srcset

from ..fakes import FileServer, png, pngs
from . import ghost_server
from .wordpress_server import WordPressSite

pytestmark = pytest.mark.integration

SYNDICATE = Path(sys.executable).with_name("syndicate")
SECRET_ENV = "SYNDICATE_IT_IMAGES_SECRET"
ORIGINAL = "https://author.example/a-post-with-images/"



@pytest.fixture()
def image_server() -> Iterator[FileServer]:
    server = FileServer(pngs(small=png(30, 20, (30, 90, 200)), full=png(120, 80, (30, 90, 200)),
                             **{"same-bytes": png(30, 20, (30, 90, 200))}))
    try:
        yield server
    finally:
        server.close()


BODY = ('<figure><a href="{img}/full.png"><img src="{img}/small.png" srcset="{img}/small.png 300w, '
        '{img}/full.png 1200w" alt="A field" width="300" height="200"></a><figcaption>The field at dawn</figcaption>'
        '</figure><p>Between the pictures.</p><p><img src="{img}/same-bytes.png" alt="The same picture">'
        '<img src="{img}/later.png" alt="Not there yet"></p>')


def write_config(folder: Path, server: FileServer, partner: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feed.xml").write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Author</title><link>https://author.example/</link><description>d</description>
<item><title>A post with images</title><link>{ORIGINAL}</link><guid>{ORIGINAL}</guid>
<pubDate>Mon, 06 May 2024 08:00:00 +0000</pubDate>
<content:encoded><![CDATA[{BODY.replace("{img}", server.url)}]]></content:encoded></item>
</channel></rss>
""", encoding="utf-8")
    config = folder / "syndicate.toml"
    config.write_text(f"""
[network]
allow_private = true        # the images come from 127.0.0.1 in this test

[sources.author]
name = "author.example"
site_url = "https://author.example"
feed = "feed.xml"
author = "An Author"
license = "CC-BY-ND-4.0"    # ND: the copies are the same images, so they are pointed at too

[partners.mag]
name = "The Magazine"
status = "publish"
images = "upload"
{partner}
""", encoding="utf-8")
    return config


class Syndicate:
    """The installed ``syndicate`` command, run as cron would run it."""

    def __init__(self, config: Path, secret: str) -> None:
        self.config, self.secret = config, secret

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE")}
        env[SECRET_ENV] = self.secret
        command = [str(SYNDICATE)] if SYNDICATE.exists() else [sys.executable, "-m", "syndicate"]
        return subprocess.run([*command, "--config", str(self.config), *args], capture_output=True, text=True,
                              env=env, timeout=300, cwd=self.config.parent)

    def status_note(self) -> str | None:
        result = self("status", "--json")
        assert result.returncode == 0, result.stderr
        (row,) = json.loads(result.stdout)
        note: str | None = row["note"]
        return note


def image_values(html: str) -> list[str]:
    """Every URL in an image attribute: img src and srcset, source srcset, the href of a link around an img."""
    tree = LexborHTMLParser("<body>" + html)
    found: list[str] = []
    for node in tree.css("img, picture > source"):
        if node.tag == "img":
            found.append(node.attrs.get("src") or "")
        found += [u for u, _ in parse_srcset(node.attrs.get("srcset") or "")]
    found += [a.attrs.get("href") or "" for a in tree.css("a[href]") if a.css_first("img") is not None]
    return found


def check_copy(html: str, own: str, server: FileServer, *, later_copied: bool) -> None:
    """Every image of the post points at the CMS's own copy (but ``later.png`` until it exists)."""
    values = image_values(html)
    assert values, html
    for value in values:
        if value == f"{server.url}/later.png":
            assert not later_copied, html
            continue
        assert value.startswith(own), (value, html)
    assert (f"{server.url}/later.png" in values) is not later_copied
    tree = LexborHTMLParser("<body>" + html)
    assert {i.attrs.get("alt") for i in tree.css("img")} >= {"A field", "The same picture", "Not there yet"}
    assert "The field at dawn" in (tree.body.text() if tree.body is not None else "")


def sync_and_check(run: Syndicate, server: FileServer, media_count: Any, post_html: Any, post_version: Any,
                   own: str) -> None:
    """The whole story on one CMS."""
    before = media_count()
    result = run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 created" in result.stdout
    assert "could not be copied" in result.stdout and "later.png" in result.stdout
    assert media_count() - before == 2  # small.png (and same-bytes.png: the same bytes) and full.png
    check_copy(post_html(), own, server, later_copied=False)
    note = run.status_note()
    assert note is not None and "later.png" in note
    version = post_version()

    hits = len(server.hits)
    result = run("sync")  # nothing new: nothing uploaded, nothing changed; the missing image is tried again
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 created, 0 updated, 1 unchanged" in result.stdout
    assert "later.png" in result.stdout
    assert media_count() - before == 2
    assert post_version() == version
    assert server.hits[hits:] == ["/later.png"]

    server.files.update(pngs(later=png(40, 40, (200, 60, 30))))
    result = run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 created, 1 updated" in result.stdout
    assert "could not be copied" not in result.stdout
    assert media_count() - before == 3
    check_copy(post_html(), own, server, later_copied=True)
    assert run.status_note() is None

    result = run("sync")
    assert "0 created, 0 updated, 1 unchanged" in result.stdout
    assert media_count() - before == 3


def test_body_images_on_real_wordpress(wordpress: WordPressSite, image_server: FileServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", image_server, f"""kind = "wordpress"
url = "{wordpress.url}"
username = "{wordpress.author_username}"
password = {{ env = "{SECRET_ENV}" }}
""")
    run = Syndicate(config, wordpress.author_app_password)

    def admin(path: str, **params: Any) -> requests.Response:
        response = requests.get(f"{wordpress.url}/wp-json/wp/v2{path}", params=params, timeout=30,
                                auth=(wordpress.username, wordpress.app_password))
        assert response.status_code == 200, response.text
        return response

    def post() -> dict[str, Any]:
        (found,) = admin("/posts", status="publish,draft", context="edit").json()
        return dict(found)

    sync_and_check(run, image_server, lambda: int(admin("/media", per_page=1).headers["X-WP-Total"]),
                   lambda: post()["content"]["raw"], lambda: post()["modified_gmt"],
                   f"{wordpress.url}/wp-content/uploads/")


def test_body_images_on_real_ghost(ghost: ghost_server.GhostSite, image_server: FileServer, tmp_path: Path) -> None:
    logging.getLogger("syndicate").debug("ghost %s", ghost.version)
    config = write_config(tmp_path / "site", image_server, f"""kind = "ghost"
url = "{ghost.url}"
admin_api_key = {{ env = "{SECRET_ENV}" }}
""")
    run = Syndicate(config, ghost.admin_api_key)
    images = ghost.root / "content" / "images"

    def media_count() -> int:
        # Ghost lists no images in its API: its uploads are the files in its content folder (it keeps
        # each upload's original beside it as NAME_o.EXT; resized variants, made when first asked for,
        # live under size/: neither is an upload of its own)
        return len([p for p in images.rglob("*") if p.is_file() and not p.stem.endswith("_o")
                    and "size" not in p.relative_to(images).parts])

    def post() -> dict[str, Any]:
        (found,) = ghost.browse("posts", "formats=html&filter=status:[draft,published,scheduled,sent]")
        return dict(found)

    sync_and_check(run, image_server, media_count, lambda: post()["html"], lambda: post()["updated_at"],
                   f"{ghost.url}/content/images/")


def test_a_kill_among_the_uploads_leaves_one_post_on_real_wordpress(wordpress: WordPressSite, image_server: FileServer,
                                                                    tmp_path: Path) -> None:
    """kill -9 while the body's images are being copied (two uploaded, the third being fetched): no post
    was created yet, and the next sync creates exactly one, reusing the two uploads (by URL and by bytes)."""
    config = write_config(tmp_path / "site", image_server, f"""kind = "wordpress"
url = "{wordpress.url}"
username = "{wordpress.author_username}"
password = {{ env = "{SECRET_ENV}" }}
""")
    run = Syndicate(config, wordpress.author_app_password)

    def admin(path: str, **params: Any) -> requests.Response:
        response = requests.get(f"{wordpress.url}/wp-json/wp/v2{path}", params=params, timeout=30,
                                auth=(wordpress.username, wordpress.app_password))
        assert response.status_code == 200, response.text
        return response

    def counts() -> tuple[int, int]:
        posts = admin("/posts", status="publish,draft,pending,private,future", per_page=1).headers["X-WP-Total"]
        return int(posts), int(admin("/media", per_page=1).headers["X-WP-Total"])

    reached, release = threading.Event(), threading.Event()
    image_server.gates["/same-bytes.png"] = (reached, release)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE")} | {
        SECRET_ENV: wordpress.author_app_password}
    command = [str(SYNDICATE)] if SYNDICATE.exists() else [sys.executable, "-m", "syndicate"]
    process = subprocess.Popen([*command, "--config", str(config), "sync"], cwd=config.parent, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert reached.wait(120), "the sync never asked for the third image"
        time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
    del image_server.gates["/same-bytes.png"]
    assert counts() == (0, 2)  # two images in the library, no post
    result = run("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 created" in result.stdout
    assert counts() == (1, 2)  # one post; same-bytes.png reused small.png's upload, nothing uploaded twice
