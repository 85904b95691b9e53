"""Entry identity end to end with the files partner: a feed that renames its posts gets no second copy."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CLI, REPO, sqlite_only

OLD_GUID = "https://www.easierinc.com/?p=2087"
NEW_GUID = "http://easierinc.com/?p=2087"


def copies(example: Path) -> dict[str, str]:
    folder = example.parent / "out" / "enliveningedge"
    return {p.name: p.read_text() for p in sorted(folder.glob("*.html"))}


def rename_guids(example: Path, old: str = "https://www.easierinc.com/?p=", new: str = "http://easierinc.com/?p=") -> None:
    feed = example.parent / "easierinc-feed.xml"
    text = feed.read_text()
    assert old in text
    feed.write_text(text.replace(f">{old}", f">{new}"))


def status(run: CLI) -> list[dict[str, object]]:
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_a_guid_migration_keeps_every_copy(run: CLI, example: Path) -> None:
    assert run("sync").exit_code == 0
    before = copies(example)
    assert len(before) == 3
    rename_guids(example)
    # the site moved to http:// without www.: the links move too, so every copy is updated in place
    feed = example.parent / "easierinc-feed.xml"
    feed.write_text(feed.read_text().replace("<link>https://www.easierinc.com/", "<link>http://easierinc.com/"))
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "enliveningedge: 0 created, 3 updated" in result.output
    assert "identity: 4 known posts are named by another guid now" in result.output
    after = copies(example)
    assert sorted(after) == sorted(before)  # no radical-models-of-organising-2
    assert 'href="http://easierinc.com/radical-models-of-organising/"' in after["radical-models-of-organising.html"]
    rows = status(run)
    assert len(rows) == 3
    part1 = next(r for r in rows if r["slug"] == "radical-models-of-organising")
    assert part1["guids"] == [OLD_GUID, NEW_GUID] and part1["guid"] == NEW_GUID
    # a third sync: nothing to do, nothing renamed again
    again = run("sync")
    assert "0 created, 0 updated" in again.output and "identity:" not in again.output


def test_identity_changes_are_listed_with_v_and_check_shows_the_current_guid(run: CLI, example: Path) -> None:
    assert run("sync").exit_code == 0
    rename_guids(example)
    result = run("-v", "sync")
    assert f"identity: easierinc: {OLD_GUID} is now {NEW_GUID} (same URL)" in result.output
    checked = json.loads(run("check", "--json").output)
    assert {c["guid"] for c in checked} == {g.replace("https://www.easierinc.com", "http://easierinc.com")
                                            for g in {c["guid"] for c in checked}}
    assert NEW_GUID in {c["guid"] for c in checked}
    assert "create" not in {c["action"] for c in checked}


@pytest.mark.parametrize("name", [OLD_GUID, NEW_GUID])
def test_preview_and_withdraw_find_an_entry_by_any_guid_it_had(run: CLI, example: Path, name: str) -> None:
    assert run("sync").exit_code == 0
    rename_guids(example)
    assert run("sync").exit_code == 0
    preview = run("preview", name, "--format", "json")
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.output)["entry"]["guid"] == NEW_GUID
    withdrawn = run("withdraw", name)
    assert withdrawn.exit_code == 0, withdrawn.output
    assert "radical-models-of-organising.html" not in copies(example)
    assert len(copies(example)) == 2


def test_an_item_without_guid_or_link_stays_one_copy_when_edited(run: CLI, example: Path) -> None:
    feed = example.parent / "easierinc-feed.xml"
    text = feed.read_text()
    item_start = text.rindex("<item>", 0, text.index("<link>https://www.easierinc.com/radical-models-of-organising/"))
    item_end = text.index("</item>", item_start)
    item = text[item_start:item_end]
    bare = re.sub(r"\s*<(link|guid|comments|wfw:commentRss)[^>]*>[^<]*</\1>", "", item)
    assert "<guid" not in bare and "<link>" not in bare
    feed.write_text(text[:item_start] + bare + text[item_end:])
    assert run("sync").exit_code == 0
    before = copies(example)
    edited = feed.read_text().replace("organising", "organizing", 3)
    feed.write_text(edited)
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "0 created" in result.output
    assert sorted(copies(example)) == sorted(before)


def _downgrade_to_schema_2(db: Path) -> None:
    """What a store written by the landed main looks like: no entry_guids table, schema version 2."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE entry_guids")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


#: The last main that landed before entry identity (schema 2): a store it wrote must upgrade in place.
#: A commit, not the ``main`` branch, which in CI's clone is this very code.
LANDED_BEFORE_IDENTITY = "8d2479e065bee10fd578ae8a1f508eddea2a48ae"


def _sync_with_landed_main(example: Path, tmp_path: Path) -> None:
    """``syndicate sync`` run by the code of LANDED_BEFORE_IDENTITY (skips where there is no git history)."""
    code = tmp_path / "main-code"
    code.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", LANDED_BEFORE_IDENTITY, "syndicate",
                                  "templates"], check=True,
                                 capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history with the landed main here")
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    env = os.environ | {"PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(example), "sync"], env=env,
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("made_by", ["landed main", "schema 2 by hand"])
def test_a_store_of_the_landed_main_is_upgraded_in_place(run: CLI, example: Path, tmp_path: Path,
                                                         made_by: str) -> None:
    sqlite_only("a SQLite file written by an older syndicate")
    db = example.parent / ".syndicate" / "state.db"
    if made_by == "landed main":
        _sync_with_landed_main(example, tmp_path)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    else:
        assert run("sync").exit_code == 0
        _downgrade_to_schema_2(db)
    before = copies(example)
    with sqlite3.connect(db) as conn:
        ledger = sorted(conn.execute("SELECT partner, source, guid, remote_id FROM deliveries"))
    # read-only commands read the old schema as it is
    assert {tuple(r["guids"]) for r in status(run)} == {(g,) for _, _, g, _ in ledger}  # type: ignore[arg-type]
    rename_guids(example)
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "0 created" in result.output
    assert sorted(copies(example)) == sorted(before)
    with sqlite3.connect(db) as conn:
        assert sorted(conn.execute("SELECT partner, source, guid, remote_id FROM deliveries")) == ledger
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)
        # schema 4: one number per part of a series; schema 5: uploads found by their bytes
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'series_parts_number'").fetchone() == (1,)
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'media_by_sha256'").fetchone() == (1,)
    assert all(len(r["guids"]) == 2 for r in status(run))  # type: ignore[arg-type]


CATEGORY_SOURCE = """
[sources.easierinc_radicals]
name = "easierinc.com"
site_url = "https://easierinc.com"
feed = "radicals-feed.xml"
aliases = ["www.easierinc.com"]
author = "Andy Brogan"
license = "permission"

[[grants]]
source = "easierinc_radicals"
partner = "enliveningedge"
evidence = "the same email"
exclude_categories = ["Members only"]
"""


def add_category_feed(example: Path) -> None:
    """A second feed of the same site (the author's category feed: the same posts, other guids)."""
    feed = (example.parent / "easierinc-feed.xml").read_text()
    (example.parent / "radicals-feed.xml").write_text(feed.replace("?p=", "?cat=radicals&p="))
    example.write_text(example.read_text() + CATEGORY_SOURCE)


def test_one_post_in_two_feeds_of_one_site_is_one_copy(run: CLI, example: Path) -> None:
    add_category_feed(example)
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert len(copies(example)) == 3
    checked = json.loads(run("check", "--json").output)
    second = [c for c in checked if c["source"] == "easierinc_radicals"]
    assert {(c["action"], c["reason"]) for c in second} == {("skip", "already republished from easierinc"),
                                                            ("skip", "category excluded: Members only")}
    assert {c["action"] for c in checked if c["source"] == "easierinc"} == {"unchanged", "skip"}
    assert {r["source"] for r in status(run)} == {"easierinc"}


def test_a_copy_stays_with_the_source_that_made_it(run: CLI, example: Path) -> None:
    add_category_feed(example)
    assert run("sync", "--source", "easierinc_radicals").exit_code == 0
    assert len(copies(example)) == 3
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "0 created" in result.output
    assert len(copies(example)) == 3
    checked = json.loads(run("check", "--json").output)
    first = [c for c in checked if c["source"] == "easierinc" and c["action"] == "skip"]
    assert {c["reason"] for c in first} >= {"already republished from easierinc_radicals"}
    assert {r["source"] for r in status(run)} == {"easierinc_radicals"}
