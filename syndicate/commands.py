"""What each command does, between the CLI's parsing and the pipeline; and how results are shown.

On a terminal: rich progress bars and tables. Off a terminal (cron): no bars, a short plain summary;
``-q`` prints only errors.
"""

from __future__ import annotations

import json
import sys
import webbrowser
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import Config
from .errors import UsageError
from .models import iso

STARTER = Path(__file__).with_name("starter.toml")


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _open_store(config: Config, readonly: bool) -> Any:
    from .store import Store, open_readonly

    if readonly:
        return open_readonly(config.state_url)
    return Store(config.state_url)


# --- init -----------------------------------------------------------------------------------------


def init_config(directory: Path) -> Path:
    """Write the starter config into ``directory``; never overwrite a file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "syndicate.toml"
    if path.exists():
        raise UsageError(f"{path} already exists; not overwriting it")
    path.write_text(STARTER.read_text(encoding="utf-8"), encoding="utf-8")
    return path


# --- sync -----------------------------------------------------------------------------------------


class RichProgress:
    """Progress bars over feeds and deliveries (terminal only)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=True, console=_console())
        self.tasks: dict[str, Any] = {}

    def start(self, what: str, total: int) -> None:
        if what in self.tasks:
            self.progress.update(self.tasks[what], total=total, completed=0)
        else:
            self.tasks[what] = self.progress.add_task(what, total=total)

    def advance(self, what: str, step: int = 1) -> None:
        if what in self.tasks:
            self.progress.advance(self.tasks[what], step)

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def run_sync(config: Config, *, sources: Iterable[str], partners: Iterable[str], dry_run: bool,
             overwrite: Iterable[str], wait: bool, verbosity: int) -> int:
    """``syndicate sync``: returns the exit code."""
    import contextlib

    from .locking import StoreLock, lock_path_for
    from .pipeline import Pipeline

    state_file = config.state_file
    # The lock first: the schema is created or migrated under it.
    lock = StoreLock.acquire(lock_path_for(state_file), wait=wait) if state_file and not dry_run else None
    store = pipeline = None
    try:
        store = _open_store(config, readonly=dry_run)
        if store is not None and not dry_run and lock is None:
            store.lock(wait=wait)  # a store that is not a file says here that it has no lock
        show_bars = _is_terminal() and verbosity >= 0 and sys.stderr.isatty()
        progress = RichProgress() if show_bars else None
        pipeline = Pipeline(config, store, sources=sources, partners=partners, dry_run=dry_run,
                            overwrite=overwrite, progress=progress)
        with progress if progress is not None else contextlib.nullcontext():
            report = pipeline.sync()
    finally:
        if pipeline is not None:
            pipeline.close()
        if store is not None:
            store.close()
        if lock is not None:
            lock.release()
    _show_sync(report, config, verbosity)
    return report.exit_code


def _show_sync(report: Any, config: Config, verbosity: int) -> None:
    if verbosity < 0:  # -q: errors only (the log has printed them to stderr already)
        return
    prefix = "dry run: " if report.dry_run else ""
    names = ("created", "updated", "unchanged", "skipped", "waiting", "held", "withdrawn", "failed")
    if _is_terminal():
        from rich.table import Table

        table = Table(title=f"{prefix}syndicate sync", title_justify="left")
        table.add_column("partner")
        for name in names:
            table.add_column(name, justify="right")
        for pid, counts in report.partners.items():
            table.add_row(pid, *[_cell(getattr(counts, n), n) for n in names])
        console = _console()
        console.print(table)
        ok = sum(f.status == "ok" for f in report.feeds)
        same = sum(f.status == "not-modified" for f in report.feeds)
        console.print(f"feeds: {ok} read, {same} not modified, {len(report.failed_feeds)} failed")
        for feed in report.failed_feeds:
            console.print(f"[red]feed {feed.source}: {feed.error}[/red]")
        for warning in report.warnings:
            console.print(f"[yellow]warning: {warning}[/yellow]")
        for error in report.errors + report.config_errors:
            console.print(f"[red]error: {error}[/red]")
        for line in _where(report, config):
            console.print(line)
    else:
        for pid, counts in report.partners.items():
            print(f"{prefix}{pid}: " + ", ".join(f"{getattr(counts, n)} {n}" for n in names))
        failed = report.failed_feeds
        print(f"{prefix}feeds: {len(report.feeds) - len(failed)} ok, {len(failed)} failed")
        for feed in failed:
            print(f"feed {feed.source}: {feed.error}")
        for warning in report.warnings:
            print(f"warning: {warning}")
        for error in report.errors + report.config_errors:
            print(f"error: {error}")
        for line in _where(report, config):
            print(line)


def _where(report: Any, config: Config) -> list[str]:
    """Where to open what a files partner wrote."""
    lines = []
    for pid, counts in report.partners.items():
        partner = config.partners[pid]
        if partner.kind == "files" and not report.dry_run and (counts.created or counts.updated):
            folder = (config.base_dir / partner.path).resolve()  # type: ignore[attr-defined]
            if folder.is_dir():
                lines.append(f"{pid}: the copies are in {folder}/ (open the .html files in a browser)")
    return lines


def _cell(value: int, name: str) -> str:
    if not value:
        return "[dim]0[/dim]"
    colour = {"failed": "red", "held": "yellow", "created": "green", "updated": "green"}.get(name)
    return f"[{colour}]{value}[/{colour}]" if colour else str(value)


# --- check ----------------------------------------------------------------------------------------


def run_check(config: Config, *, sources: Iterable[str], partners: Iterable[str], as_json: bool) -> int:
    """``syndicate check``: decisions with reasons; exit 1 when a feed failed."""
    from .pipeline import Pipeline

    store = _open_store(config, readonly=True)
    try:
        pipeline = Pipeline(config, store, sources=sources, partners=partners, dry_run=True)
        pipeline.fetch()
        decisions = pipeline.check()
    finally:
        if store is not None:
            store.close()
    if as_json:
        print(json.dumps([d.as_json() for d in decisions], indent=2, ensure_ascii=False))
    else:
        _show_check(decisions)
    for feed in pipeline.report.failed_feeds:
        print(f"feed {feed.source}: {feed.error}", file=sys.stderr)
    return 1 if pipeline.report.failed_feeds else 0


_ACTION_STYLE = {"create": "green", "update": "green", "unchanged": "dim", "skip": "red", "wait": "yellow",
                 "held": "yellow", "withdraw": "magenta", "withdrawn": "dim"}


def _show_check(decisions: list[Any]) -> None:
    if not _is_terminal():
        for d in decisions:
            extra = f" ({d.reason})" if d.reason else ""
            when = f" not before {iso(d.not_before)}" if d.not_before else ""
            print(f"{d.action:<9} {d.partner}  {d.entry.url or d.entry.guid}{extra}{when}")
        return
    from rich.table import Table

    table = Table(show_lines=False)
    table.add_column("entry", overflow="fold")
    table.add_column("partner")
    table.add_column("action")
    table.add_column("reason", overflow="fold")
    last = None
    for d in decisions:
        key = (d.entry.source, d.entry.guid)
        label = "" if key == last else f"[bold]{d.entry.title}[/bold]\n[dim]{d.entry.url or d.entry.guid}[/dim]"
        if key != last and last is not None:
            table.add_section()
        last = key
        reason = d.reason or ""
        if d.not_before:
            reason = f"{reason}" if reason else f"not before {iso(d.not_before)}"
        style = _ACTION_STYLE.get(d.action, "")
        table.add_row(label, d.partner, f"[{style}]{d.action}[/{style}]" if style else d.action, reason)
    # Grouped by entry: sort keeps each entry's partners together.
    _console().print(table)


# --- preview --------------------------------------------------------------------------------------


def run_preview(config: Config, spelling: str, *, partners: Iterable[str], fmt: str | None,
                output: Path | None, open_browser: bool) -> int:
    """``syndicate preview ENTRY``."""
    from .pipeline import Pipeline
    from .preview import preview_html, preview_json, preview_text

    store = _open_store(config, readonly=True)
    try:
        pipeline = Pipeline(config, store, partners=partners, dry_run=True)
        pipeline.fetch()
        entry = pipeline.find_entry(spelling)
        results = pipeline.preview(entry)
    finally:
        if store is not None:
            store.close()
    fmt = fmt or ("html" if open_browser or (output and output.suffix in (".html", ".htm")) else "text")
    if fmt == "json":
        text = json.dumps(preview_json(entry, results), indent=2, ensure_ascii=False)
    elif fmt == "html":
        text = preview_html(entry, results, config)
    else:
        text = preview_text(entry, results, config)
    if output is None and open_browser:
        import tempfile

        handle = tempfile.NamedTemporaryFile("w", suffix=".html", prefix="syndicate-preview-", delete=False)
        output = Path(handle.name)
        handle.close()
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        print(f"Wrote {output}", file=sys.stderr)
        if open_browser:
            webbrowser.open(output.resolve().as_uri())
    else:
        print(text)
    return 1 if pipeline.report.failed_feeds else 0


# --- status ---------------------------------------------------------------------------------------


def run_status(config: Config, *, partners: Iterable[str], as_json: bool) -> int:
    """``syndicate status``: the ledger and the feeds' health."""
    wanted = list(partners)
    for pid in wanted:
        if pid not in config.partners:
            raise UsageError(f"unknown partner {pid!r} (known: {', '.join(config.partners) or 'none'})")
    store = _open_store(config, readonly=True)
    rows = []
    feeds: dict[str, Any] = {}
    if store is not None:
        try:
            rows = store.deliveries(wanted or None)
            feeds = store.feed_states()
        finally:
            store.close()
    if as_json:
        print(json.dumps([d.as_json() for d in rows], indent=2, ensure_ascii=False))
        return 0
    failing = {sid: f for sid, f in feeds.items() if f.last_error}
    if not _is_terminal():
        for d in rows:
            extra = f" ({d.last_error})" if d.last_error else (f" ({d.note})" if d.note else "")
            print(f"{d.state:<9} {d.partner}  {d.remote_url or '-'}  {d.entry_url or d.guid}  "
                  f"[{d.permission or '-'}]{extra}")
        for sid, f in failing.items():
            print(f"feed {sid}: {f.last_error} ({f.failures} failures in a row)")
        return 0
    from rich.table import Table

    table = Table()
    for column in ("partner", "state", "copy", "original", "permission", "pushed", "note"):
        table.add_column(column, overflow="fold")
    for d in rows:
        note = d.last_error or d.note or ""
        if d.attempts and d.last_error:
            note = f"{note} (attempts: {d.attempts})"
        table.add_row(d.partner, d.state, d.remote_url or "-", d.entry_url or d.guid, d.permission or "-",
                      d.pushed_at or "-", note)
    console = _console()
    console.print(table if rows else "Nothing republished yet.")
    for sid, f in failing.items():
        console.print(f"[red]feed {sid}: {f.last_error} ({f.failures} failures in a row)[/red]")
    return 0


# --- withdraw ---------------------------------------------------------------------------------------


def run_withdraw(config: Config, spelling: str, *, partners: Iterable[str], delete: bool) -> int:
    """``syndicate withdraw ENTRY``."""
    from .pipeline import Pipeline

    store = _open_store(config, readonly=False)
    store.lock()
    try:
        pipeline = Pipeline(config, store, partners=partners)
        results = pipeline.withdraw(spelling, delete=delete)
    finally:
        store.close()
    failed = False
    for pid, outcome in results:
        print(f"{pid}: {outcome}")
        failed = failed or outcome.startswith("failed")
    return 1 if failed else 0


# --- partners test -----------------------------------------------------------------------------------


def run_partners_test(config: Config, ids: Iterable[str]) -> int:
    """``syndicate partners test``: exit 1 when a check failed."""
    from .pipeline import Pipeline
    from .publishers import make_publisher

    pipeline = Pipeline(config, None, partners=ids, dry_run=True)
    all_ok = True
    for pid in pipeline.partner_ids:
        partner = config.partners[pid]
        publisher = make_publisher(partner, pipeline._publish_context(pid))
        try:
            checks = publisher.test()
        except Exception as exc:  # noqa: BLE001 - shown as a failed check, with secrets masked
            from .publishers.base import Check
            from .redact import redact

            checks = [Check(False, "reachable", redact(str(exc)))]
        finally:
            publisher.close()
        print(f"{pid} ({partner.kind}):")
        for c in checks:
            mark = "ok  " if c.ok and not c.warning else ("warn" if c.ok else "FAIL")
            print(f"  {mark} {c.what}" + (f": {c.detail}" if c.detail else ""))
            all_ok = all_ok and c.ok
    return 0 if all_ok else 1
