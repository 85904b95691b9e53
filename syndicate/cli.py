"""The command line: parse arguments, call the library, map errors to exit codes. No logic here.

Heavy modules (feedparser, requests, SQLAlchemy, rich) are imported inside the commands that need
them, so ``syndicate --help`` starts fast.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from . import __version__
from .errors import SyndicateError

if TYPE_CHECKING:
    from .config import Config

T = TypeVar("T")


class Context:
    """Options of the group, handed to every command."""

    def __init__(self, config_path: str | None, verbosity: int, log_format: str) -> None:
        self.config_path = config_path
        self.verbosity = verbosity
        self.log_format = log_format

    def config(self) -> Config:
        from .config import load_config

        return load_config(self.config_path)


def _fail(exc: SyndicateError) -> NoReturn:
    from .redact import redact

    click.echo(f"Error: {redact(str(exc))}", err=True)
    sys.exit(exc.exit_code)


def _run(fn: Callable[[], T]) -> T:
    """Call a command body, turning our errors into a message and an exit code (no traceback)."""
    # The command's libraries are loaded (see `main`): what they made lives as long as the process, so it is
    # kept out of every collection from here on, and the collector works on what the command makes.
    gc.freeze()
    gc.enable()
    try:
        return fn()
    except SyndicateError as exc:
        _fail(exc)
    except BrokenPipeError:  # `syndicate … | head`: the reader left; not an error of ours
        raise
    except Exception:  # a bug: its traceback is shown, with secrets masked (Python's own would print them)
        import traceback

        from .redact import redact

        click.echo(redact(traceback.format_exc()).rstrip(), err=True)
        click.echo("Error: syndicate stopped on an unexpected error (the traceback above says where)", err=True)
        sys.exit(1)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", envvar="SYNDICATE_CONFIG",
              help="Config file (default: $SYNDICATE_CONFIG, then ./syndicate.toml).")
@click.option("-v", "--verbose", count=True, help="More detail (-vv: debug, HTTP included; secrets stay masked).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How log lines are written to stderr.")
@click.version_option(__version__, prog_name="syndicate")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, log_format: str) -> None:
    """Republish authors' posts in partner magazines, correctly and with their permission.

    fetch → parse → decide → rewrite → render → push → record.
    """
    if verbose and quiet:
        raise click.UsageError("-v and -q cannot be used together")
    verbosity = -1 if quiet else verbose
    from .logs import setup

    setup(verbosity, log_format)
    ctx.obj = Context(config_path, verbosity, log_format)


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Write a commented starter syndicate.toml into DIRECTORY (default: here)."""
    from .commands import init_config

    path = _run(lambda: init_config(directory))
    click.echo(f"Wrote {path}. Edit it, then run: syndicate --config {path} check")


@cli.command()
@click.option("--source", "sources", multiple=True, metavar="ID", help="Only this source (repeatable).")
@click.option("--partner", "partners", multiple=True, metavar="ID", help="Only this partner (repeatable).")
@click.option("--dry-run", is_flag=True, help="Fetch, decide and render; push nothing, change no state.")
@click.option("--overwrite", multiple=True, metavar="ENTRY",
              help="Push our version of a held copy over the partner's edit (original URL or guid; repeatable).")
@click.option("--wait", is_flag=True, help="If another sync holds the lock, wait for it instead of exiting 75.")
@pass_ctx
def sync(ctx: Context, sources: tuple[str, ...], partners: tuple[str, ...], dry_run: bool,
         overwrite: tuple[str, ...], wait: bool) -> None:
    """Run the whole pipeline: fetch, decide, rewrite, render, push, record."""
    from .commands import run_sync

    code = _run(lambda: run_sync(ctx.config(), sources=sources, partners=partners, dry_run=dry_run,
                                 overwrite=overwrite, wait=wait, verbosity=ctx.verbosity))
    sys.exit(code)


@cli.command()
@click.option("--source", "sources", multiple=True, metavar="ID", help="Only this source (repeatable).")
@click.option("--partner", "partners", multiple=True, metavar="ID", help="Only this partner (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per entry × partner.")
@pass_ctx
def check(ctx: Context, sources: tuple[str, ...], partners: tuple[str, ...], as_json: bool) -> None:
    """Show the decision for every current entry × partner, with reasons. Changes nothing."""
    from .commands import run_check

    sys.exit(_run(lambda: run_check(ctx.config(), sources=sources, partners=partners, as_json=as_json)))


@cli.command()
@click.argument("entry")
@click.option("--partner", "partners", multiple=True, metavar="ID", help="Only this partner (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["html", "text", "json"]), default=None,
              help="html: a page for a browser; text: for a terminal (default); json: as SPEC.md.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML preview in a browser.")
@pass_ctx
def preview(ctx: Context, entry: str, partners: tuple[str, ...], fmt: str | None, output: Path | None,
            open_browser: bool) -> None:
    """Show exactly what each partner would receive for ENTRY (its original URL or guid)."""
    from .commands import run_preview

    sys.exit(_run(lambda: run_preview(ctx.config(), entry, partners=partners, fmt=fmt, output=output,
                                      open_browser=open_browser)))


@cli.command()
@click.option("--partner", "partners", multiple=True, metavar="ID", help="Only this partner (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per copy.")
@pass_ctx
def status(ctx: Context, partners: tuple[str, ...], as_json: bool) -> None:
    """The ledger: what was republished where, its URL, state and permission."""
    from .commands import run_status

    sys.exit(_run(lambda: run_status(ctx.config(), partners=partners, as_json=as_json)))


@cli.command()
@click.argument("entry")
@click.option("--partner", "partners", multiple=True, metavar="ID", help="Only this partner (repeatable).")
@click.option("--delete", is_flag=True, help="Delete (WordPress: trash) instead of making the copy a draft.")
@pass_ctx
def withdraw(ctx: Context, entry: str, partners: tuple[str, ...], delete: bool) -> None:
    """Unpublish the partner copies of ENTRY (permission revoked) and record it."""
    from .commands import run_withdraw

    sys.exit(_run(lambda: run_withdraw(ctx.config(), entry, partners=partners, delete=delete)))


@cli.command()
@click.option("--partner", "partners", multiple=True, metavar="ID", help="Only this partner (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per copy.")
@pass_ctx
def audit(ctx: Context, partners: tuple[str, ...], as_json: bool) -> None:
    """Fetch every live copy as the public sees it and check that it still credits the author."""
    from .commands import run_audit

    sys.exit(_run(lambda: run_audit(ctx.config(), partners=partners, as_json=as_json, verbosity=ctx.verbosity)))


@cli.group()
def partners() -> None:
    """Partner tools."""


@partners.command("test")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@pass_ctx
def partners_test(ctx: Context, ids: tuple[str, ...]) -> None:
    """Check each partner's credentials and capabilities; change nothing."""
    from .commands import run_partners_test

    sys.exit(_run(lambda: run_partners_test(ctx.config(), ids)))


def main() -> None:
    """Console-script entry point."""
    # Importing a command's libraries (SQLAlchemy, pydantic, urllib3, ours) makes tens of thousands of
    # objects that all live until the process ends; with the collector on, its collections while they load
    # traverse them again and again. Off until they are loaded, then frozen in `_run` (bench/why.md).
    gc.disable()
    try:
        cli(prog_name="syndicate")
    finally:
        # The command is done and has closed what it opened; the interpreter's teardown that follows
        # collects every object of every imported module (SQLAlchemy, pydantic) once more. Frozen, they
        # are freed without that final traversal (bench/why.md).
        gc.freeze()
