"""Fixtures shared by the unit tests: the bundled example in a temporary folder, a CLI runner."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parents[1]
#: ../shared beside the repository (CI lays a copy there); tests that need it skip when it is absent.
SHARED = Path(os.environ.get("SYNDICATE_SHARED", REPO.parent / "shared"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true",
                     help="Rewrite tests/golden/ from the current output instead of comparing with it.")


@pytest.fixture()
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared is absent)")
    return path


@pytest.fixture()
def example(tmp_path: Path) -> Path:
    """A copy of config/ (the founding example) in a temporary folder; returns the config file."""
    folder = tmp_path / "example"
    shutil.copytree(REPO / "config", folder, ignore=shutil.ignore_patterns("out", ".syndicate"))
    return folder / "syndicate.toml"


class CLI:
    """Runs ``syndicate`` in-process with click's CliRunner."""

    def __init__(self, config: Path | None = None) -> None:
        self.config = config

    def __call__(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        from syndicate.cli import cli

        full = (["--config", str(self.config)] if self.config else []) + list(args)
        return CliRunner().invoke(cli, full, env=env, input=input, catch_exceptions=False)


@pytest.fixture()
def run(example: Path) -> CLI:
    return CLI(example)
