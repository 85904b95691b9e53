"""The command line as a user meets it: help, exit codes, quiet and JSON logs, documentation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from syndicate.cli import cli

from .conftest import CLI, REPO

COMMANDS = ["init", "sync", "check", "preview", "status", "withdraw", "partners test", "audit"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CLI()(*command.split(), "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output and len(result.output.splitlines()) > 3


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for command in COMMANDS:
        assert f"syndicate {command}" in readme, command
    for name, command in cli.commands.items():
        if isinstance(command, click.Group):
            continue
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in readme, f"{name} {opt} is not in the README"


def test_group_options() -> None:
    result = CLI()("--help")
    for option in ("--config", "-v", "-q", "--log-format"):
        assert option in result.output


def test_quiet_prints_only_errors(example: Path) -> None:
    result = CLI(example)("-q", "sync")
    assert result.exit_code == 0 and result.output == ""


def test_off_a_terminal_a_short_plain_summary(example: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(example), "sync"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # no colours, no bars
    assert result.stdout.splitlines()[0] == ("enliveningedge: 3 created, 0 updated, 0 unchanged, 1 skipped, "
                                             "0 waiting, 0 held, 0 withdrawn, 0 failed")


def test_json_logs(example: Path) -> None:
    example.parent.joinpath("easierinc-feed.xml").write_text("<html><body>not a feed</body></html>")
    result = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(example), "--log-format", "json",
                             "sync"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(l["level"] == "error" and "feed easierinc" in l["message"] for l in lines)


def test_a_bad_feed_is_reported_and_the_exit_code_says_so(example: Path, tmp_path: Path) -> None:
    text = example.read_text() + ('\n[sources.broken]\nname = "b"\nsite_url = "https://b.example"\n'
                                  'feed = "missing.xml"\nlicense = "CC-BY-4.0"\n')
    example.write_text(text)
    result = CLI(example)("sync")
    assert result.exit_code == 1
    assert "feed broken: cannot read" in result.output
    assert "3 created" in result.output  # the good feed went on
    status = CLI(example)("status")
    assert "feed broken: cannot read" in status.output and "1 failures in a row" in status.output


def test_unknown_source_or_partner_is_a_usage_error(example: Path) -> None:
    assert CLI(example)("sync", "--source", "nope").exit_code == 2
    result = CLI(example)("check", "--partner", "nope")
    assert result.exit_code == 2 and "unknown partner 'nope'" in result.output


def test_preview_of_an_unknown_entry(example: Path) -> None:
    result = CLI(example)("preview", "https://www.easierinc.com/no-such-post/")
    assert result.exit_code == 2 and "no entry matches" in result.output


def test_python_dash_m_works() -> None:
    result = subprocess.run([sys.executable, "-m", "syndicate", "--version"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0 and "syndicate" in result.stdout


def test_a_command_runs_with_the_collector_on_and_the_loaded_libraries_frozen(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `main` turns the collector off while a command's libraries load and `_run` freezes what they made;
    # the command itself must run with the collector on (its cycles are collected), or a long sync grows.
    import gc

    import syndicate.commands as commands
    from syndicate.cli import main

    seen: dict[str, object] = {}
    real = commands.run_sync

    def observed(*args: object, **kwargs: object) -> int:
        seen["enabled"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(commands, "run_sync", observed)
    monkeypatch.setattr(sys, "argv", ["syndicate", "--config", str(example), "-q", "sync"])
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:
        gc.unfreeze()
        gc.enable()
    assert stopped.value.code == 0
    assert seen["enabled"] is True
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 1000
