"""What one bad entry, one bad delivery, a second store spelling, a crash or a broken store file may do:
never more than fail itself (issue 14's pipeline, store and CLI cases).

* an exception in any stage of one entry (decide, render, push) is recorded against that entry ×
  partner (its reason in ``status`` and ``check``), every other entry goes on, exit 1;
* the lock is the database file's, whatever spelling of its URL a second config uses;
* a files partner killed mid-pass never writes an entry's copy twice, whatever the feed does next;
* the commands that change nothing leave an old-schema store byte for byte as it was;
* a store file that is garbage, truncated or a folder, a full disk, an unwritable ``-o``: one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .conftest import CLI, REPO, sqlite_only

PART1 = "https://www.easierinc.com/radical-models-of-organising/"
#: The example's three entries its partner may have (the fourth, ?p=2098, is for members only).
GUIDS = ["https://www.easierinc.com/?p=2104", "https://www.easierinc.com/?p=2091", "https://www.easierinc.com/?p=2087"]
SYNDICATE = Path(sys.executable).with_name("syndicate")


def fresh_example(tmp: Path) -> Path:
    folder = tmp / "example"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(REPO / "config", folder, ignore=shutil.ignore_patterns("out", ".syndicate"))
    return folder / "syndicate.toml"


def status_rows(run: CLI) -> dict[str, dict[str, Any]]:
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    return {d["guid"]: d for d in json.loads(result.stdout)}


# ------------------------------------------------------------------------------------------------
# one entry's exception, in any stage, is that entry's


def _stage_patches() -> dict[str, Callable[[pytest.MonkeyPatch, str, Exception], None]]:
    """Ways to make one stage raise for one entry (by guid) and work for every other."""
    from syndicate import compose, decide, plan, render
    from syndicate.publishers import files

    def verdict(mp: pytest.MonkeyPatch, guid: str, exc: Exception) -> None:
        real = decide.Rules.verdict

        def fake(self: Any, entry: Any, *args: Any, **kw: Any) -> Any:
            if entry.guid == guid:
                raise exc
            return real(self, entry, *args, **kw)
        mp.setattr(decide.Rules, "verdict", fake)

    def action(mp: pytest.MonkeyPatch, guid: str, exc: Exception) -> None:
        real = plan.ledger_action
        target = {"guid": guid}

        def fake(delivery: Any, verdict: Any, **kw: Any) -> Any:
            if target.pop("entry", None) == guid:
                raise exc
            return real(delivery, verdict, **kw)
        real_decide = plan.Planner._decide

        def marking(self: Any, entry: Any, *args: Any) -> Any:
            if entry.guid == guid:
                target["entry"] = guid
            return real_decide(self, entry, *args)
        mp.setattr(plan, "ledger_action", fake)
        mp.setattr(plan.Planner, "_decide", marking)

    def composing(mp: pytest.MonkeyPatch, guid: str, exc: Exception) -> None:
        real = compose.Composer.compose

        def fake(self: Any, entry: Any, *args: Any, **kwargs: Any) -> Any:
            if entry.guid == guid:
                raise exc
            return real(self, entry, *args, **kwargs)
        mp.setattr(compose.Composer, "compose", fake)

    def rendering(mp: pytest.MonkeyPatch, guid: str, exc: Exception) -> None:
        real = render.Renderer.article

        def fake(self: Any, **kw: Any) -> Any:
            if kw["entry"].guid == guid:
                raise exc
            return real(self, **kw)
        mp.setattr(render.Renderer, "article", fake)

    def pushing(mp: pytest.MonkeyPatch, guid: str, exc: Exception) -> None:
        real = files.Publisher.create

        def fake(self: Any, article: Any, marker: str) -> Any:
            if article.guid == guid:
                raise exc
            return real(self, article, marker)
        mp.setattr(files.Publisher, "create", fake)

    return {"verdict": verdict, "ledger action": action, "compose": composing, "render": rendering,
            "push": pushing}


EXCEPTIONS = st.sampled_from([ValueError, KeyError, TypeError, OverflowError, RuntimeError, AttributeError,
                              ZeroDivisionError, IndexError])


# Each example is two real runs of the CLI: a few of them, and no shrinking (the failing case is printed).
@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stage=st.sampled_from(sorted(_stage_patches())), victim=st.sampled_from(GUIDS), kind=EXCEPTIONS,
       message=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30))
def test_an_exception_in_any_stage_of_one_entry_is_recorded_against_it(
        tmp_path: Path, stage: str, victim: str, kind: type[Exception], message: str) -> None:
    example = fresh_example(tmp_path)
    run = CLI(example)
    with pytest.MonkeyPatch.context() as mp:
        _stage_patches()[stage](mp, victim, kind(message))
        checked = run("check", "--json")
        synced = run("sync")
    assert synced.exit_code == 1, synced.output
    assert "Traceback" not in synced.output
    assert "2 created" in synced.output and "1 failed" in synced.output, synced.output
    rows = status_rows(run)
    # due again; a push that raised may have landed, so its intent stays until the next run looks
    assert rows[victim]["state"] == ("intent" if stage == "push" else "pending"), rows[victim]
    assert kind.__name__ in rows[victim]["last_error"], rows[victim]
    assert rows[victim]["remote_id"] is None
    assert all(rows[g]["state"] == "ok" for g in GUIDS if g != victim), rows
    if stage != "push":  # check decides and renders; it pushes nothing
        assert checked.exit_code == 1, checked.output
        reasons = {d["guid"]: d["reason"] for d in json.loads(checked.stdout)}
        assert kind.__name__ in reasons[victim], reasons
    # once the stage works again, the entry is delivered and the run is clean
    again = run("sync")
    assert again.exit_code == 0 and "1 created" in again.output, again.output


# ------------------------------------------------------------------------------------------------
# the lock is the database file's


@contextlib.contextmanager
def _holder(url: str) -> Iterator[subprocess.Popen[bytes]]:
    code = ("import time; from syndicate.sqlite_store import SQLiteStore; "
            f"s = SQLiteStore({url!r}); s.lock(); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("spelling", ["query", "absolute", "symlink", "hardlink"])
def test_a_second_config_naming_the_same_database_any_way_exits_75(example: Path, spelling: str) -> None:
    sqlite_only("the single-run lock of a SQLite file")
    assert CLI(example)("sync").exit_code == 0  # the database exists
    database = example.parent / ".syndicate" / "state.db"
    other = example.parent / "other"
    other.mkdir()
    if spelling == "query":
        url = "sqlite:///../.syndicate/state.db?timeout=30"
    elif spelling == "absolute":
        url = f"sqlite:///{database}"
    else:
        (other / "db").mkdir()
        (os.symlink if spelling == "symlink" else os.link)(database, other / "db" / "state.db")
        url = "sqlite:///db/state.db"
    text = example.read_text(encoding="utf-8").replace("easierinc-feed.xml", "../easierinc-feed.xml")
    text = text.replace('path = "out/enliveningedge"', 'path = "../out/enliveningedge"')
    second = other / "syndicate.toml"
    second.write_text(f'[state]\nurl = "{url}"\n\n' + text, encoding="utf-8")
    with _holder(f"sqlite:///{database}"):
        refused = subprocess.run([str(SYNDICATE), "--config", str(second), "sync"], capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode == 75, (refused.stdout, refused.stderr)
        assert "another syndicate sync is running" in refused.stderr
    if spelling in ("symlink", "hardlink"):
        return  # (a second name of a SQLite file is a second WAL: not a way to run it, only to lock it)
    ran = subprocess.run([str(SYNDICATE), "--config", str(second), "sync"], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, (ran.stdout, ran.stderr)


# ------------------------------------------------------------------------------------------------
# a files partner's crash, then a newer post with the same slug ahead of it


SAME_SLUG_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>
<link>https://www.easierinc.com/</link>{items}</channel></rss>"""
ITEM = """<item><title>{title}</title><link>https://www.easierinc.com/{path}/</link><guid>{guid}</guid>
<pubDate>{date}</pubDate><category>Next Stage Radicals</category><description>{title} body</description></item>"""


def test_a_crashed_files_pass_then_a_namesake_ahead_never_makes_a_second_copy(example: Path) -> None:
    sqlite_only("it edits the ledger in its SQLite file")
    feed = example.parent / "easierinc-feed.xml"
    original = ITEM.format(title="Same slug", path="same-slug", guid="post-1", date="Mon, 01 Jun 2026 08:00:00 GMT")
    feed.write_text(SAME_SLUG_FEED.format(items=original), encoding="utf-8")
    run = CLI(example)
    assert run("sync").exit_code == 0
    folder = example.parent / "out" / "enliveningedge"
    assert sorted(p.name for p in folder.iterdir()) == ["same-slug.html", "same-slug.json"]
    # a kill -9 before the pass's commit: the copy is on disk, the ledger never heard of it
    shutil.rmtree(example.parent / ".syndicate")
    newer = ITEM.format(title="Same slug", path="2026/same-slug", guid="post-2", date="Tue, 02 Jun 2026 08:00:00 GMT")
    feed.write_text(SAME_SLUG_FEED.format(items=newer + original), encoding="utf-8")
    result = run("sync")
    assert result.exit_code == 0, result.output
    pages = sorted(p.name for p in folder.glob("*.html"))
    assert pages == ["same-slug-2.html", "same-slug.html"], pages
    guid_of = {"https://www.easierinc.com/same-slug/": "post-1", "https://www.easierinc.com/2026/same-slug/": "post-2"}
    by_marker = {guid_of[json.loads(p.read_text())["source_url"]]: p.stem for p in folder.glob("*.json")}
    assert sorted(by_marker) == ["post-1", "post-2"]
    rows = status_rows(run)
    assert {g: r["slug"] for g, r in rows.items()} == by_marker  # the ledger knows every copy
    assert run("withdraw", "post-1").output.strip() == "enliveningedge: withdrawn"
    assert not (folder / f"{by_marker['post-1']}.html").exists()


# ------------------------------------------------------------------------------------------------
# the commands that change nothing do not migrate an old store


def _old_schema(database: Path) -> None:
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE feeds DROP COLUMN body_hash")
        db.execute("ALTER TABLE feeds DROP COLUMN parse_key")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db = sqlite3.connect(database)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _files(folder: Path) -> dict[str, str]:
    """The store's files (not -shm: SQLite's shared-memory index of the WAL, which every reader updates)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.endswith("-shm")}


def test_check_status_preview_and_dry_run_read_an_old_store_without_changing_it(example: Path) -> None:
    sqlite_only("an old schema written into a SQLite file")
    run = CLI(example)
    assert run("sync").exit_code == 0
    database = example.parent / ".syndicate" / "state.db"
    _old_schema(database)
    before = _files(database.parent)
    for args in (["check", "--json"], ["status", "--json"], ["status"], ["preview", PART1, "--format", "json"],
                 ["sync", "--dry-run"], ["check"]):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        assert _files(database.parent) == before, args
    assert len(status_rows(run)) == 3
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    assert run("sync").exit_code == 0  # a real run migrates it, under its lock
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() != ("1",)


# ------------------------------------------------------------------------------------------------
# broken store files, a full disk, an unwritable output: one line, no traceback


def _one_line_failure(completed: subprocess.CompletedProcess[str], *names: str) -> None:
    assert completed.returncode in (1, 2), (completed.returncode, completed.stderr)
    assert "Traceback" not in completed.stderr + completed.stdout, completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, completed.stderr
    for name in names:
        assert name in errors[0], errors


def _syndicate(config: Path, *args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([str(SYNDICATE), "-q", "--config", str(config), *args], capture_output=True, text=True,
                          timeout=120, preexec_fn=cap)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "folder"])
def test_a_broken_store_file_is_one_line(example: Path, damage: str) -> None:
    sqlite_only("a broken SQLite file")
    database = example.parent / ".syndicate" / "state.db"
    if damage == "truncated":
        assert CLI(example)("sync").exit_code == 0
        db = sqlite3.connect(database)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        data = database.read_bytes()
        database.write_bytes(data[: len(data) // 3])
    else:
        database.parent.mkdir()
        if damage == "folder":
            database.mkdir()
        else:
            database.write_bytes(os.urandom(3000))
    for command in (["sync"], ["check"], ["status"], ["sync", "--dry-run"]):
        completed = _syndicate(example, *command)
        _one_line_failure(completed, "state")
        assert str(database) in completed.stderr or "state.url" in completed.stderr


def test_a_full_disk_is_one_line(example: Path) -> None:
    sqlite_only("a full disk under the SQLite file")
    # RLIMIT_FSIZE: no write may make a file larger than the limit, as on a full disk (EFBIG instead of
    # ENOSPC; Python ignores SIGXFSZ). The feeds' entries alone are larger than the limit.
    completed = _syndicate(example, "sync", limit=40_000)
    _one_line_failure(completed)


def test_preview_to_a_folder_that_does_not_exist_is_one_line(example: Path) -> None:
    completed = _syndicate(example, "preview", PART1, "-o", str(example.parent / "missing" / "dir" / "x.html"))
    assert completed.returncode == 2
    _one_line_failure(completed, "x.html")


def test_a_bug_in_one_partners_bookkeeping_is_that_partners_failure(example: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate import record

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("[red]a bug[/red]")
    monkeypatch.setattr(record.Steady, "remember", broken)
    result = CLI(example)("sync")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "enliveningedge: stopped on an unexpected error (RuntimeError: [red]a bug[/red])" in result.output
    assert {r["state"] for r in status_rows(CLI(example)).values()} == {"ok"}  # its pushes were recorded


def test_a_grant_that_never_expires_runs_and_reaches_the_steady_state(example: Path) -> None:
    text = example.read_text(encoding="utf-8").replace("embargo_days = 0", "embargo_days = 0\nexpires = 9999-12-31")
    example.write_text(text, encoding="utf-8")
    run = CLI(example)
    first = run("sync")
    assert first.exit_code == 0 and "3 created" in first.output, first.output
    again = run("sync")
    assert again.exit_code == 0 and "3 unchanged" in again.output, again.output
