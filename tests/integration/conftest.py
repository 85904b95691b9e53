"""Session-wide real CMS servers for the integration tests, started on 127.0.0.1 and stopped at the end.

Each CMS runs in every version the session is asked for — ``$SYNDICATE_TEST_WORDPRESS`` (default
``6.1,7.1``) and ``$SYNDICATE_TEST_GHOST`` (default ``6.65``; ``5.130`` when asked) — as a parameter of
its session fixture, so a test that uses ``wordpress`` runs once per WordPress version, named
``[wp7.1]`` in the report. pytest orders the tests by that parameter, so each version is started
once, and stopped before the next one starts (one at a time on a small machine).

Each is started at most once per test session and version, on first use; tests call ``site.reset()``
to start clean. A server that cannot be installed here skips its tests with the reason, unless
``SYNDICATE_TEST_REQUIRE_CMS=1`` (CI sets it: there a CMS that cannot be installed is a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from . import ghost_server, wordpress_server

WORDPRESS_VERSIONS = wordpress_server.versions_under_test()
GHOST_VERSIONS = ghost_server.versions_under_test()


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by CMS version: the order within stays
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-CMS tests run after all the others: unit failures show in seconds, and the CMSs that
    tests/run.sh installs in the background meanwhile are ready by then."""
    items[:] = ([i for i in items if i.get_closest_marker("integration") is None]
                + [i for i in items if i.get_closest_marker("integration") is not None])


def _cannot_install(what: str, exc: Exception) -> None:
    if os.environ.get("SYNDICATE_TEST_REQUIRE_CMS") == "1":
        pytest.fail(f"{what} cannot be installed here (SYNDICATE_TEST_REQUIRE_CMS=1): {exc}", pytrace=False)
    pytest.skip(f"{what} cannot be installed here: {exc}")


@pytest.fixture(scope="session", params=WORDPRESS_VERSIONS, ids=lambda v: f"wp{v}")
def wordpress_site(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[wordpress_server.WordPressSite]:
    version: str = request.param
    try:
        wordpress_server.ensure_installed(version)
    except RuntimeError as exc:
        _cannot_install(f"WordPress {version}", exc)
    site = wordpress_server.start(tmp_path_factory.mktemp(f"wordpress-{version}"), version=version)
    try:
        yield site
    finally:
        wordpress_server.stop(site)


@pytest.fixture()
def wordpress(wordpress_site: wordpress_server.WordPressSite) -> wordpress_server.WordPressSite:
    """A clean WordPress for one test."""
    wordpress_site.reset()
    return wordpress_site


@pytest.fixture(scope="session", params=GHOST_VERSIONS, ids=lambda v: f"ghost{v}")
def ghost_site(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ghost_server.GhostSite]:
    version: str = request.param
    try:
        ghost_server.ensure_installed(version)
    except RuntimeError as exc:
        _cannot_install(f"Ghost {version}", exc)
    site = ghost_server.start(tmp_path_factory.mktemp(f"ghost-{version}"), version=version)
    try:
        yield site
    finally:
        ghost_server.stop(site)


@pytest.fixture()
def ghost(ghost_site: ghost_server.GhostSite) -> ghost_server.GhostSite:
    """A clean Ghost for one test."""
    ghost_site.reset()
    return ghost_site
