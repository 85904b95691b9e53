"""The founding example end to end into the files partner, as a user runs it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from syndicate import pipeline
from syndicate.publishers.base import PublisherDefaults, RemoteCopy

from .conftest import CLI, REPO, sqlite_only
from .safety import problems

GOLDEN = Path(__file__).parent / "golden" / "easierinc"
PART1 = "https://www.easierinc.com/radical-models-of-organising/"
PART2 = "https://www.easierinc.com/radical-models-of-public-service/"
PART3 = "https://www.easierinc.com/radical-models-of-commissioning-and-regulation/"
PART4 = "https://www.easierinc.com/radical-models-of-leadership/"
EE = "https://enliveningedge.org"


def out_dir(config: Path) -> Path:
    return config.parent / "out" / "enliveningedge"


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


class RecordingStore:
    """A real SQLite store that notes, in one shared log, every write and whether it was committed."""

    def __init__(self, inner: Any, log: list[tuple[str, ...]]) -> None:
        self.inner, self.log = inner, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, delivery: Any, *, durable: bool = True) -> None:
        self.inner.put(delivery, durable=durable)
        self.log.append(("put", delivery.guid, delivery.state, str(durable)))

    def save_feeds(self, states: Any) -> None:
        self.inner.save_feeds(states)
        self.log.append(("record feeds",))


class FakeCMS(PublisherDefaults):
    """A CMS kind that notes each call, and what the state file on disk says at that moment."""

    def __init__(self, config: Any, log: list[tuple[str, ...]], database: Path) -> None:
        self.config, self.log, self.database = config, log, database
        self.made: dict[str, RemoteCopy] = {}

    def _on_disk(self, guid: str) -> str:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            row = db.execute("SELECT state, intent FROM deliveries WHERE guid = ?", (guid,)).fetchone()
        return f"{row[0]}/{row[1]}" if row else "no row"

    def prepare_html(self, html: str) -> str:
        return html

    def refresh(self, remote_ids: list[str]) -> dict[str, RemoteCopy | None]:
        return {rid: self.made.get(rid) for rid in remote_ids}

    def find(self, article: Any, marker: str) -> RemoteCopy | None:
        return None

    def create(self, article: Any, marker: str) -> RemoteCopy:
        self.log.append(("create", article.guid, self._on_disk(article.guid)))
        copy = RemoteCopy(remote_id=article.slug, url=f"https://cms.example/{article.slug}/", slug=article.slug)
        self.made[copy.remote_id] = copy
        return copy

    def update(self, remote_id: str, article: Any, marker: str, expected_hash: str | None,
               force: bool = False) -> RemoteCopy:
        self.log.append(("update", article.guid, self._on_disk(article.guid)))
        return self.made[remote_id]

    def withdraw(self, remote_id: str, delete: bool = False) -> RemoteCopy | None:
        return None

    def test(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def test_stages_run_in_order_and_each_intent_is_committed_before_its_write(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recording store and a fake CMS: the feeds are recorded before anything is pushed, and every
    create reaches the CMS only once its intent is on disk (read by another connection)."""
    sqlite_only('the intents are read from its file')
    from syndicate.config import load_config
    from syndicate.sqlite_store import SQLiteStore

    assert pipeline.STAGES == ("fetch", "parse", "decide", "rewrite", "render", "push", "record")
    config = load_config(example)
    database = config.state_file
    assert database is not None
    events: list[tuple[str, ...]] = []
    monkeypatch.setattr(pipeline, "make_publisher", lambda partner, context: FakeCMS(partner, events, database))
    store = SQLiteStore(config.state_url)
    store.lock()
    try:
        report = pipeline.Pipeline(config, RecordingStore(store, events)).sync()  # type: ignore[arg-type]
    finally:
        store.close()
    assert report.exit_code == 0, report
    creates = [e for e in events if e[0] == "create"]
    assert len(creates) == 3
    assert events.index(("record feeds",)) < events.index(creates[0])
    for _, guid, on_disk in creates:
        assert on_disk == "intent/create", (guid, events)
        intent = events.index(("put", guid, "intent", "True"))
        assert intent < events.index(("create", guid, on_disk)) < events.index(("put", guid, "ok", "False"))


def test_founding_example(example: Path, run: CLI, regen_golden: bool) -> None:
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "3 created" in result.output and "1 skipped" in result.output
    folder = out_dir(example)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"radical-models-of-{s}.{ext}" for s in ("leadership", "organising", "public-service")
                     for ext in ("html", "json")]

    part1 = json.loads((folder / "radical-models-of-organising.json").read_text())
    html = part1["html"]
    # byline
    assert (f'By Andy Brogan and originally published on <a href="{PART1}">easierinc.com</a>') in html
    # series note: Parts 2 and 4, not 3
    assert (f"Enlivening Edge's republication of <a href=\"{EE}/radical-models-of-public-service/\">"
            "Part 2: Radical Models of Public Service</a> is here.") in html
    assert (f"Enlivening Edge's republication of <a href=\"{EE}/radical-models-of-leadership/\">"
            "Part 4: Radical Models of Leadership</a> is here.") in html
    assert "Part 3" not in re.sub(r"<a [^>]*>Part 3 on Commissioning and Regulation</a>", "", html)
    # the "Update:" paragraph: Parts 2 and 4 to the copies (Part 4 had another host and utm), Part 3 to its original
    assert f'<a href="{EE}/radical-models-of-public-service/">Part 2 on Public Service</a>' in html
    assert f'<a href="{EE}/radical-models-of-leadership/">Part 4 on Leadership</a>' in html
    assert f'<a href="{PART3}">Part 3 on Commissioning and Regulation</a>' in html
    assert 'href="https://www.easierinc.com/self-management-in-action/"' in html
    assert "<script" not in html and "onclick" not in html and "utm_" not in html
    assert html.count('<iframe src="https://www.youtube.com/embed/') == 2
    assert problems(html) == []
    # featured image and its credit
    assert part1["featured_image"] == {
        "url": "https://cdn.pixabay.com/photo/2016/11/29/05/45/network-1867761_1280.jpg",
        "alt": "A network of connected points", "caption": None,
        "credit": "Image by Gerd Altmann from Pixabay", "credit_url": "https://pixabay.com/users/geralt-9301/"}
    assert ('Featured Image/graphic link added by Enlivening Edge Magazine. '
            '<a href="https://pixabay.com/users/geralt-9301/">Image by Gerd Altmann from Pixabay</a>') in html
    assert "Republished with permission of the author." in html
    assert part1["canonical_url"] == PART1
    assert part1["source_url"] == PART1
    assert part1["slug"] == "radical-models-of-organising"
    assert part1["tags"] == ["Next Stage Radicals", "Self-management"]
    assert part1["status"] == "publish"
    page = (folder / "radical-models-of-organising.html").read_text()
    assert html in page and f'<link rel="canonical" href="{PART1}">' in page

    part2 = json.loads((folder / "radical-models-of-public-service.json").read_text())["html"]
    assert f'<a href="{EE}/radical-models-of-organising/">Part 1 on Organising</a>' in part2
    assert 'src="https://www.easierinc.com/wp-content/uploads/2019/04/front-line.jpg"' in part2
    assert ('srcset="https://www.easierinc.com/wp-content/uploads/2019/04/front-line-300x200.jpg 300w, '
            'https://www.easierinc.com/wp-content/uploads/2019/04/front-line.jpg 1024w"') in part2
    assert "Part 1: Radical Models of Organising</a> is here." in part2
    assert "Part 4: Radical Models of Leadership</a> is here." in part2

    part4 = json.loads((folder / "radical-models-of-leadership.json").read_text())
    assert f'<a href="{EE}/radical-models-of-organising/">series</a>' in part4["html"]
    assert f'<a href="{EE}/radical-models-of-public-service/">Part 2 on Public Service</a>' in part4["html"]
    assert part4["featured_image"]["credit"] == "Photo: Easier Inc."

    # golden files: regenerated only with --regen-golden
    if regen_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            (GOLDEN / path.name).write_bytes(path.read_bytes())
    for path in sorted(GOLDEN.iterdir()):
        assert (folder / path.name).read_text() == path.read_text(), f"{path.name} differs from the golden file"

    # a second sync changes nothing: no file, no ledger row
    before = snapshot(folder)
    ledger_before = run("status", "--json").output
    time.sleep(0.01)
    again = run("sync")
    assert again.exit_code == 0
    assert "0 created, 0 updated, 3 unchanged" in again.output
    assert snapshot(folder) == before
    assert run("status", "--json").output == ledger_before


def test_check_explains_part_3(example: Path, run: CLI) -> None:
    result = run("check", "--json")
    assert result.exit_code == 0, result.output
    decisions = json.loads(result.output)
    assert [set(d) for d in decisions] == [{"source", "entry", "guid", "title", "partner", "action", "reason",
                                            "not_before"}] * 4
    by_url = {d["entry"]: d for d in decisions}
    assert by_url[PART3]["action"] == "skip"
    assert by_url[PART3]["reason"] == "category excluded: Members only"
    assert {by_url[u]["action"] for u in (PART1, PART2, PART4)} == {"create"}
    assert not (example.parent / ".syndicate").exists(), "check must change no state"
    run("sync")
    assert {d["action"] for d in json.loads(run("check", "--json").output) if d["entry"] != PART3} == {"unchanged"}


def test_status_lists_every_copy_with_its_permission(example: Path, run: CLI) -> None:
    run("sync")
    rows = json.loads(run("status", "--json").output)
    assert sorted(r["url"] for r in rows) == [f"{EE}/radical-models-of-{s}/" for s in
                                              ("leadership", "organising", "public-service")]
    assert {r["state"] for r in rows} == {"ok"}
    assert {r["permission"] for r in rows} == {"grant: Republished with permission of the author (email, March 2019)"}
    assert all(r["pushed_at"] and r["remote_id"] for r in rows)


def test_dry_run_changes_nothing(example: Path, run: CLI) -> None:
    result = run("sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output
    assert not (example.parent / "out").exists()
    assert not (example.parent / ".syndicate").exists()


def test_a_changed_original_updates_the_copy(example: Path, run: CLI) -> None:
    run("sync")
    feed = example.parent / "easierinc-feed.xml"
    feed.write_text(feed.read_text().replace("Thanks for reading (and watching)!", "Thanks for reading!"))
    result = run("sync")
    assert "0 created, 1 updated, 2 unchanged" in result.output, result.output
    part1 = json.loads((out_dir(example) / "radical-models-of-organising.json").read_text())
    assert "Thanks for reading!" in part1["html"]


def test_a_later_part_converges_in_one_sync(example: Path, run: CLI) -> None:
    feed = example.parent / "easierinc-feed.xml"
    full = feed.read_text()
    start = full.index("\t<item>")
    end = full.index("\t<item>", start + 1)
    feed.write_text(full[:start] + full[end:])  # Part 4 not yet published
    assert run("sync").exit_code == 0
    part1 = json.loads((out_dir(example) / "radical-models-of-organising.json").read_text())["html"]
    assert "Part 4" not in part1.split("<p>This blog")[0]
    # not republished yet: the link stays on the original (tracking parameters gone)
    assert 'href="https://easierinc.com/radical-models-of-leadership/"' in part1
    feed.write_text(full)
    result = run("sync")
    assert "1 created, 2 updated" in result.output, result.output
    part1 = json.loads((out_dir(example) / "radical-models-of-organising.json").read_text())["html"]
    assert "Part 4: Radical Models of Leadership</a> is here." in part1
    assert f'<a href="{EE}/radical-models-of-leadership/">Part 4 on Leadership</a>' in part1
    assert "0 created, 0 updated, 3 unchanged" in run("sync").output


def test_withdraw_removes_the_copy_and_sticks(example: Path, run: CLI) -> None:
    run("sync")
    result = run("withdraw", PART4.replace("https://www.", "http://"))
    assert result.exit_code == 0, result.output
    assert "enliveningedge: withdrawn" in result.output
    assert not (out_dir(example) / "radical-models-of-leadership.html").exists()
    decisions = {d["entry"]: d["action"] for d in json.loads(run("check", "--json").output)}
    assert decisions[PART4] == "withdrawn"
    result = run("sync")
    assert "2 updated" in result.output, result.output  # the others stop linking to it
    assert not (out_dir(example) / "radical-models-of-leadership.html").exists()
    part1 = json.loads((out_dir(example) / "radical-models-of-organising.json").read_text())["html"]
    assert "Part 4: Radical" not in part1 and f'href="{EE}/radical-models-of-leadership/"' not in part1
    assert {r["state"] for r in json.loads(run("status", "--json").output) if r["entry"] == PART4} == {"withdrawn"}


def test_a_partner_edit_is_held_until_overwrite(example: Path, run: CLI) -> None:
    run("sync")
    page = out_dir(example) / "radical-models-of-public-service.html"
    page.write_text(page.read_text().replace("A front-line team at work", "Edited by the magazine"))
    feed = example.parent / "easierinc-feed.xml"
    feed.write_text(feed.read_text().replace("set the scene.", "set the scene well."))
    result = run("sync")
    assert result.exit_code == 0
    assert "1 held" in result.output and "warning:" in result.output
    assert "Edited by the magazine" in page.read_text()
    assert {d["action"] for d in json.loads(run("check", "--json").output) if d["entry"] == PART2} == {"held"}
    assert "1 held" in run("sync").output  # reported on every run
    result = run("sync", "--overwrite", PART2)
    assert "1 updated" in result.output, result.output
    assert "Edited by the magazine" not in page.read_text() and "set the scene well." in page.read_text()


def test_second_sync_is_refused_while_one_runs(example: Path, run: CLI) -> None:
    sqlite_only('its single-run lock (exit 75)')
    from syndicate.config import load_config
    from syndicate.sqlite_store import SQLiteStore as Store

    store = Store(load_config(example).state_url)
    store.lock()
    try:
        result = run("sync")
        assert result.exit_code == 75
        assert "another syndicate sync is running" in result.output
        assert run("check", "--json").exit_code == 0  # check takes no lock
    finally:
        store.close()
    assert run("sync").exit_code == 0


def test_the_lock_dies_with_its_holder(example: Path, tmp_path: Path) -> None:
    sqlite_only('its single-run lock')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = ("import sys, time; from syndicate.config import load_config; from syndicate.sqlite_store import SQLiteStore as Store; "
            f"s = Store(load_config({str(example)!r}).state_url); s.lock(); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        assert CLI(example)("sync").exit_code == 75
        holder.kill()  # kill -9
        holder.wait()
        assert CLI(example)("sync").exit_code == 0
    finally:
        holder.kill()


def test_pushes_at_once_when_the_partner_allows_it(example: Path, run: CLI) -> None:
    example.write_text(example.read_text().replace('updates = "push"', 'updates = "push"\nconcurrency = 4'))
    result = run("sync")
    assert result.exit_code == 0 and "3 created" in result.output, result.output
    for path in sorted(GOLDEN.iterdir()):  # the same copies, converged, as one at a time
        assert (out_dir(example) / path.name).read_text() == path.read_text(), path.name
    assert "0 created, 0 updated, 3 unchanged" in run("sync").output
