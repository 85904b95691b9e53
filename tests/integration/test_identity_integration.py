"""Entry identity against the real WordPress and Ghost: a feed that renames its posts (a site moved from
https://www. to http:// without www.) updates the live copies in place; the remote post count stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..fakes import FileServer
from . import ghost_server
from .test_ghost_integration import PART1, Syndicate, ghost_posts, image_server, write_config  # noqa: F401
from .test_wordpress_integration import Project, images, project, sync_counts  # noqa: F401

pytestmark = pytest.mark.integration

OLD_GUID, NEW_GUID = "https://www.easierinc.com/?p=2087", "http://easierinc.com/?p=2087"


def move_the_site(feed: Path) -> None:
    """Every guid and link of the feed as the moved site spells them."""
    text = feed.read_text(encoding="utf-8")
    assert f">{OLD_GUID}<" in text
    text = text.replace(">https://www.easierinc.com/?p=", ">http://easierinc.com/?p=")
    feed.write_text(text.replace("<link>https://www.easierinc.com/", "<link>http://easierinc.com/"), encoding="utf-8")


def test_a_guid_migration_updates_the_wordpress_copies_in_place(project: Project) -> None:  # noqa: F811 (the imported fixture)
    assert project.run("sync").exit_code == 0
    before = {slug: p["id"] for slug, p in project.posts().items()}
    assert len(before) == 3
    move_the_site(project.feed)
    result = project.run("-v", "sync")
    assert result.exit_code == 0, result.output
    assert sync_counts(result).startswith("0 created, 3 updated")
    assert f"identity: easierinc: {OLD_GUID} is now {NEW_GUID} (same URL)" in result.output
    after = project.posts()
    assert {slug: p["id"] for slug, p in after.items()} == before  # the same posts, no -2
    assert project.site.sql("SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post'").strip() == "3"
    part1 = after["radical-models-of-organising"]
    assert 'href="http://easierinc.com/radical-models-of-organising/"' in part1["content"]["raw"]
    ledger = {d["slug"]: d for d in project.json("status", "--json")}
    assert ledger["radical-models-of-organising"]["guids"] == [OLD_GUID, NEW_GUID]
    again = project.run("sync")
    assert sync_counts(again).startswith("0 created, 0 updated, 3 unchanged")
    project.assert_no_secret()


def test_a_guid_migration_updates_the_ghost_copies_in_place(ghost: ghost_server.GhostSite,
                                                          image_server: FileServer, tmp_path: Path) -> None:  # noqa: F811
    config = write_config(tmp_path / "example", ghost, image_server)
    run = Syndicate(config, ghost.admin_api_key)
    assert run("sync").returncode == 0
    before = {p["slug"]: p["id"] for p in ghost_posts(ghost).values()}
    assert len(before) == 3
    move_the_site(config.parent / "easierinc-feed.xml")
    result = run("sync")
    assert result.returncode == 0, result.stderr
    assert "enliveningedge: 0 created, 3 updated" in result.stdout
    assert "identity: 4 known posts are named by another guid now" in result.stdout
    after = ghost_posts(ghost)
    assert {p["slug"]: p["id"] for p in after.values()} == before  # the same posts, no -2
    assert PART1.replace("https://www.", "http://") in after  # the canonical URL moved with the site
    ledger = {d["slug"]: d for d in run.json("status", "--json")}
    assert ledger["radical-models-of-organising"]["guids"] == [OLD_GUID, NEW_GUID]
    assert "0 created, 0 updated, 3 unchanged" in run("sync").stdout
