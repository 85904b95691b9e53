"""What each command does, between the CLI's parsing and the pipeline (``display`` shows the results)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import display
from .config import Config
from .errors import UsageError
from .store import Store, open_store

STARTER = Path(__file__).with_name("starter.toml")


# --- init -----------------------------------------------------------------------------------------


def init_config(directory: Path) -> Path:
    """Write the starter config into ``directory``; never overwrite a file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "syndicate.toml"
    if path.exists():
        raise UsageError(f"{path} already exists; not overwriting it")
    path.write_text(STARTER.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def _server(config: Config) -> dict[str, Any]:
    """What a PostgreSQL store needs from ``[state]`` beyond its URL (nothing for SQLite)."""
    if not config.state.is_postgres:
        return {}
    password = config.state.password.reveal() if config.state.password is not None else None
    return {"password": password, "lease_seconds": config.state.lease_seconds}


# --- sync -----------------------------------------------------------------------------------------


def run_sync(config: Config, *, sources: Iterable[str], partners: Iterable[str], dry_run: bool,
             overwrite: Iterable[str], wait: bool, verbosity: int,
             clock: Callable[[], dt.datetime] | None = None) -> int:
    """``syndicate sync``: returns the exit code. ``clock``: the run's time (tests)."""
    import contextlib

    from .pipeline import Pipeline

    store = open_store(config.state_url, readonly=dry_run, clock=clock, **_server(config))
    try:
        store.lock(wait=wait)  # the schema is created or migrated under the lock (a dry run takes none)
        show_bars = display.is_terminal() and verbosity >= 0 and sys.stderr.isatty()
        progress = display.RichProgress() if show_bars else None
        pipeline = Pipeline(config, store, sources=sources, partners=partners, overwrite=overwrite,
                            progress=progress, clock=clock)
        try:
            with progress if progress is not None else contextlib.nullcontext():
                report = pipeline.sync()
        finally:
            pipeline.close()
    finally:
        store.close()
    display.show_sync(report, verbosity)
    return report.exit_code


# --- check ----------------------------------------------------------------------------------------


def run_check(config: Config, *, sources: Iterable[str], partners: Iterable[str], as_json: bool) -> int:
    """``syndicate check``: decisions with reasons; exit 1 when a feed or an entry failed."""
    from .pipeline import Pipeline

    store = open_store(config.state_url, readonly=True, **_server(config))
    try:
        pipeline = Pipeline(config, store, sources=sources, partners=partners)
        pipeline.fetch()
        decisions = pipeline.check()
    finally:
        store.close()
    if as_json:
        display.show_json([d.as_json() for d in decisions])
    else:
        display.show_check(decisions)
    display.show_lines((f"feed {f.source}: {f.error}" for f in pipeline.report.failed_feeds), err=True)
    return 1 if pipeline.report.failed_feeds or pipeline.report.errors else 0


# --- preview --------------------------------------------------------------------------------------


def run_preview(config: Config, spelling: str, *, partners: Iterable[str], fmt: str | None,
                output: Path | None, open_browser: bool) -> int:
    """``syndicate preview ENTRY``."""
    import json

    from .pipeline import Pipeline
    from .preview import preview_html, preview_json, preview_text

    store = open_store(config.state_url, readonly=True, **_server(config))
    try:
        pipeline = Pipeline(config, store, partners=partners)
        pipeline.fetch()
        entry = pipeline.find_entry(spelling)
        results = pipeline.preview(entry)
    finally:
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
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"-o {output}: cannot write it: {exc.strerror or exc}") from None
        display.show_lines([f"Wrote {output}"], err=True)
        if open_browser:
            import webbrowser  # only for --open

            webbrowser.open(output.resolve().as_uri())
    elif fmt == "text":
        display.show_lines(text.split("\n"))  # what a feed put in it, made printable line by line
    else:
        display.show_document(text)
    return 1 if pipeline.report.failed_feeds else 0


# --- status ---------------------------------------------------------------------------------------


def run_status(config: Config, *, partners: Iterable[str], as_json: bool) -> int:
    """``syndicate status``: the ledger and the feeds' health."""
    wanted = list(partners)
    for pid in wanted:
        if pid not in config.partners:
            raise UsageError(f"unknown partner {pid!r} (known: {', '.join(config.partners) or 'none'})")
    store = open_store(config.state_url, readonly=True, **_server(config))
    try:
        rows = store.deliveries(wanted or None)
        feeds = store.feed_states()
        known = {source: store.entry_guids(source) for source in {d.source for d in rows}}
    finally:
        store.close()
    if as_json:
        objects = []
        for d in rows:
            # The guids the copy's entry has been known by, oldest first; "guid" is the one it has now.
            guids = known[d.source].get(d.guid) or [d.guid]
            objects.append(d.as_json() | {"guid": guids[-1], "guids": guids})
        display.show_json(objects)
    else:
        display.show_status(rows, feeds)
    return 0


# --- withdraw ---------------------------------------------------------------------------------------


def run_withdraw(config: Config, spelling: str, *, partners: Iterable[str], delete: bool) -> int:
    """``syndicate withdraw ENTRY``."""
    from .pipeline import Pipeline

    store: Store = open_store(config.state_url, readonly=False, **_server(config))
    try:
        store.lock()
        pipeline = Pipeline(config, store, partners=partners)
        results = pipeline.withdraw(spelling, delete=delete)
    finally:
        store.close()
    display.show_lines(f"{pid}: {outcome}" for pid, outcome in results)
    return 1 if any(outcome.startswith("failed") for _, outcome in results) else 0


# --- audit ------------------------------------------------------------------------------------------


def run_audit(config: Config, *, partners: Iterable[str], as_json: bool, verbosity: int) -> int:
    """``syndicate audit``: exit 1 when a public copy fails to credit the author (or cannot be read)."""
    import contextlib

    from .auditor import Auditor

    wanted = list(partners)
    for pid in wanted:
        if pid not in config.partners:
            raise UsageError(f"unknown partner {pid!r} (known: {', '.join(config.partners) or 'none'})")
    store = open_store(config.state_url, readonly=True, **_server(config))  # changes no state, takes no lock
    try:
        show_bars = display.is_terminal() and verbosity >= 0 and sys.stderr.isatty() and not as_json
        progress = display.RichProgress() if show_bars else None
        with progress if progress is not None else contextlib.nullcontext():
            results = Auditor(config, store, wanted or list(config.partners), progress).audit()
    finally:
        store.close()
    if as_json:
        display.show_json([r.as_json() for r in results])
    else:
        display.show_audit(results, verbosity)
    return 0 if all(r.credits_author for r in results) else 1


# --- partners test -----------------------------------------------------------------------------------


def run_partners_test(config: Config, ids: Iterable[str]) -> int:
    """``syndicate partners test``: exit 1 when a check failed."""
    from .pipeline import Pipeline
    from .publishers.base import Check
    from .redact import redact

    pipeline = Pipeline(config, None, partners=ids)
    all_ok = True
    lines = []
    for pid in pipeline.partner_ids:
        publisher = pipeline.publisher(pid)
        try:
            checks = publisher.test()
        except Exception as exc:  # noqa: BLE001 - shown as a failed check, with secrets masked
            checks = [Check(False, "reachable", redact(str(exc)))]
        finally:
            publisher.close()
        lines.append(f"{pid} ({config.partners[pid].kind}):")
        for c in checks:
            mark = "ok  " if c.ok and not c.warning else ("warn" if c.ok else "FAIL")
            lines.append(f"  {mark} {c.what}" + (f": {c.detail}" if c.detail else ""))
            all_ok = all_ok and c.ok
    display.show_lines(lines)
    return 0 if all_ok else 1
