"""Session-wide real CMS servers for the integration tests, started on 127.0.0.1 and stopped at the end.

Each is started at most once per test session, on first use; tests call ``site.reset()`` to start clean.
A server that cannot be installed here skips its tests with the reason (the test command installs
them, so in CI they run).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import ghost_server, wordpress_server


@pytest.fixture(scope="session")
def wordpress_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[wordpress_server.WordPressSite]:
    try:
        wordpress_server.ensure_installed()
    except RuntimeError as exc:
        pytest.skip(f"WordPress cannot be installed here: {exc}")
    site = wordpress_server.start(tmp_path_factory.mktemp("wordpress"))
    try:
        yield site
    finally:
        wordpress_server.stop(site)


@pytest.fixture()
def wordpress(wordpress_site: wordpress_server.WordPressSite) -> wordpress_server.WordPressSite:
    """A clean WordPress for one test."""
    wordpress_site.reset()
    return wordpress_site


@pytest.fixture(scope="session")
def ghost_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ghost_server.GhostSite]:
    try:
        ghost_server.ensure_installed()
    except RuntimeError as exc:
        pytest.skip(f"Ghost cannot be installed here: {exc}")
    site = ghost_server.start(tmp_path_factory.mktemp("ghost"))
    try:
        yield site
    finally:
        ghost_server.stop(site)


@pytest.fixture()
def ghost(ghost_site: ghost_server.GhostSite) -> ghost_server.GhostSite:
    """A clean Ghost for one test."""
    ghost_site.reset()
    return ghost_site
