"""How results are shown: rich tables and progress bars on a terminal, short plain lines off one (cron);
``-q`` prints only errors.

Everything that comes from a feed, a partner or the ledger (a title, a guid, a URL, an error text)
is made printable first (``text.printable``: control characters escaped) and reaches rich as plain
``Text``, never as markup: a title ``Fixing [/etc/hosts] parsing`` is shown as it is written and a
``[video]`` does not vanish. Our own styling is applied to ``Text`` objects, not spelled in markup.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .models import Decision, iso
from .records import Delivery, FeedState
from .report import RunReport
from .text import printable, printable_document

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from .auditor import CopyAudit

COUNT_NAMES = ("created", "updated", "unchanged", "skipped", "waiting", "held", "withdrawn", "failed")
_ACTION_STYLE = {"create": "green", "update": "green", "unchanged": "dim", "skip": "red", "wait": "yellow",
                 "held": "yellow", "withdraw": "magenta", "withdrawn": "dim"}
_COUNT_STYLE = {"failed": "red", "held": "yellow", "created": "green", "updated": "green"}


def is_terminal() -> bool:
    """Is standard output a terminal (rich tables) rather than a pipe or a file (plain lines)?"""
    return sys.stdout.isatty()


def console() -> Console:
    """A rich console that never reads markup or highlights what it prints."""
    from rich.console import Console

    return Console(highlight=False, markup=False, emoji=False)


def text(value: object, style: str = "") -> Text:
    """A printable rich ``Text`` of ``value`` (never markup)."""
    from rich.text import Text

    return Text(printable(value), style=style)


class RichProgress:
    """Progress bars over feeds and deliveries (terminal only)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskID,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(TextColumn("{task.description:<24}", markup=False), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), transient=True, console=console())
        self.tasks: dict[str, TaskID] = {}

    def start(self, what: str, total: int) -> None:
        """A phase begins (a partner's id is made printable)."""
        if what in self.tasks:
            self.progress.update(self.tasks[what], total=total, completed=0)
        else:
            self.tasks[what] = self.progress.add_task(printable(what), total=total)

    def advance(self, what: str, step: int = 1) -> None:
        """Steps of a phase are done."""
        if what in self.tasks:
            self.progress.advance(self.tasks[what], step)

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def show_sync(report: RunReport, verbosity: int) -> None:
    """The summary of a sync."""
    if verbosity < 0:  # -q: errors only (the log has printed them to stderr already)
        return
    prefix = "dry run: " if report.dry_run else ""
    failed = report.failed_feeds
    notes: list[tuple[str, str]] = [(f"feed {f.source}: {f.error}", "red") for f in failed]
    notes += [(f"warning: {w}", "yellow") for w in report.warnings]
    if report.identity_changes:  # never silent: the same copies, under the names the feeds give now
        changes = report.identity_changes
        notes.append((f"identity: {len(changes)} known {'post is' if len(changes) == 1 else 'posts are'} named by "
                      f"another guid now (their copies kept, nothing created)"
                      + ("" if verbosity > 0 else "; -v lists them"), "cyan"))
        if verbosity > 0:
            notes += [(f"identity: {c.line()}", "cyan") for c in changes]
    notes += [(f"error: {e}", "red") for e in report.errors + report.config_errors]
    notes += [(report.held, "yellow")] if report.held else []
    notes += [(f"{pid}: the copies are in {where} (open the .html files in a browser)", "")
              for pid, where in report.locations.items()]
    if not is_terminal():
        for pid, counts in report.partners.items():
            print(printable(f"{prefix}{pid}: " + ", ".join(f"{getattr(counts, n)} {n}" for n in COUNT_NAMES)))
        print(f"{prefix}feeds: {len(report.feeds) - len(failed)} ok, {len(failed)} failed")
        for line, _ in notes:
            print(printable(line))
        return
    from rich.table import Table

    table = Table(title=f"{prefix}syndicate sync", title_justify="left")
    table.add_column("partner")
    for name in COUNT_NAMES:
        table.add_column(name, justify="right")
    for pid, counts in report.partners.items():
        table.add_row(text(pid), *[_count_cell(getattr(counts, n), n) for n in COUNT_NAMES])
    out = console()
    out.print(table)
    ok = sum(f.status == "ok" for f in report.feeds)
    same = sum(f.status == "not-modified" for f in report.feeds)
    out.print(f"feeds: {ok} read, {same} not modified, {len(failed)} failed")
    for line, style in notes:
        out.print(text(line, style))


def _count_cell(value: int, name: str) -> Text:
    return text(value, "dim" if not value else _COUNT_STYLE.get(name, ""))


def show_check(decisions: list[Decision]) -> None:
    """``check``'s decisions: one line each off a terminal, a table grouped by entry on one."""
    if not is_terminal():
        for d in decisions:
            extra = f" ({d.reason})" if d.reason else ""
            when = f" not before {iso(d.not_before)}" if d.not_before else ""
            print(printable(f"{d.action:<9} {d.partner}  {d.entry.url or d.entry.guid}{extra}{when}"))
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
        label = text("") if key == last else text(d.entry.title, "bold").append("\n").append(
            text(d.entry.url or d.entry.guid, "dim"))
        if key != last and last is not None:
            table.add_section()
        last = key
        reason = d.reason or (f"not before {iso(d.not_before)}" if d.not_before else "")
        table.add_row(label, text(d.partner), text(d.action, _ACTION_STYLE.get(d.action, "")), text(reason))
    console().print(table)


def show_status(rows: list[Delivery], feeds: dict[str, FeedState]) -> None:
    """The ledger and the failing feeds."""
    failing = {sid: f for sid, f in feeds.items() if f.last_error}
    feed_lines = [f"feed {sid}: {f.last_error} ({f.failures} failures in a row)" for sid, f in failing.items()]
    if not is_terminal():
        for d in rows:
            extra = f" ({d.last_error})" if d.last_error else (f" ({d.note})" if d.note else "")
            print(printable(f"{d.state:<9} {d.partner}  {d.remote_url or '-'}  {d.entry_url or d.guid}  "
                            f"[{d.permission or '-'}]{extra}"))
        for line in feed_lines:
            print(printable(line))
        return
    from rich.table import Table

    table = Table()
    for column in ("partner", "state", "copy", "original", "permission", "pushed", "note"):
        table.add_column(column, overflow="fold")
    for d in rows:
        note = d.last_error or d.note or ""
        if d.attempts and d.last_error:
            note = f"{note} (attempts: {d.attempts})"
        table.add_row(*[text(v) for v in (d.partner, d.state, d.remote_url or "-", d.entry_url or d.guid,
                                          d.permission or "-", d.pushed_at or "-", note)])
    out = console()
    out.print(table if rows else "Nothing republished yet.")
    for line in feed_lines:
        out.print(text(line, "red"))


def show_audit(results: list[CopyAudit], verbosity: int) -> None:
    """``audit``'s results: one line per copy off a terminal, a table on one; ``-q``: only the copies
    that fail."""
    shown = [r for r in results if verbosity >= 0 or not r.credits_author]

    def outcome(r: CopyAudit) -> str:
        if r.status == "not public":
            return f"not public ({r.remote_status or 'unknown status'})"
        return "ok" if r.status == "ok" else f"{r.status}: " + "; ".join(r.problems)

    if not is_terminal():
        for r in shown:
            print(printable(f"{r.partner}  {r.url or '-'}  {r.entry or '-'}  {outcome(r)}"))
        return
    from rich.table import Table

    table = Table()
    for column in ("partner", "copy", "original", "audit"):
        table.add_column(column, overflow="fold")
    for r in shown:
        style = {"ok": "green", "not public": "dim"}.get(r.status, "red")
        table.add_row(text(r.partner), text(r.url or "-"), text(r.entry or "-"), text(outcome(r), style))
    out = console()
    out.print(table if results else "No live copies to audit.")


def show_lines(lines: Iterable[str], err: bool = False) -> None:
    """Plain lines (a command's results), made printable."""
    for line in lines:
        print(printable(line), file=sys.stderr if err else sys.stdout)


def show_document(document: str) -> None:
    """A document (an article as HTML or JSON): unchanged into a pipe or a file, where its bytes
    are what is asked for; on a terminal, with its control characters shown as escapes (``printable``)."""
    print(printable_document(document) if is_terminal() else document)


def show_json(value: Any) -> None:
    """JSON output (machine-readable: escaped by JSON itself, never changed)."""
    import json

    print(json.dumps(value, indent=2, ensure_ascii=False))
