"""Smoke test of the real-WordPress harness (tests/integration/wordpress_server.py), once per version."""

from __future__ import annotations

import re

import pytest
import requests

from . import wordpress_server

pytestmark = pytest.mark.integration


@pytest.fixture()
def wp_site(wordpress: wordpress_server.WordPressSite) -> wordpress_server.WordPressSite:
    """The session's WordPress (one per version under test), clean."""
    return wordpress


def test_the_server_runs_the_version_asked_for(wp_site, request):
    asked = request.node.callspec.params["wordpress_site"]
    assert wp_site.series == asked
    # What the running PHP serves, not only what setup.php saw: the feed's generator.
    r = requests.get(wp_site.url + "/?feed=rss2", timeout=30)
    assert r.status_code == 200, r.text
    served = re.search(r"<generator>https://wordpress.org/\?v=([^<]+)</generator>", r.text)
    assert served and served.group(1) == wp_site.version
    assert wordpress_server.release(served.group(1)).series == asked


def _get(site, path, auth):
    return requests.get(site.url + "/wp-json" + path, auth=auth, timeout=30)


def test_admin_app_password_authenticates(wp_site):
    r = _get(wp_site, "/wp/v2/users/me?context=edit", (wp_site.username, wp_site.app_password))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["username"] == wp_site.username
    assert "administrator" in me["roles"]


def test_author_has_no_unfiltered_html(wp_site):
    r = _get(wp_site, "/wp/v2/users/me?context=edit",
             (wp_site.author_username, wp_site.author_app_password))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["roles"] == ["author"]
    assert not me["capabilities"].get("unfiltered_html", False)
    assert me["capabilities"].get("publish_posts") is True


def test_bad_password_is_rejected(wp_site):
    r = _get(wp_site, "/wp/v2/users/me", (wp_site.username, "nope nope nope nope nope nope"))
    assert r.status_code == 401


def test_post_with_registered_canonical_meta_round_trips(wp_site):
    auth = (wp_site.username, wp_site.app_password)
    canonical = "https://origin.example/articles/hello"
    r = requests.post(
        wp_site.url + "/wp-json/wp/v2/posts",
        json={"title": "Hello", "content": "<p>Body</p>", "status": "draft",
              "meta": {"syndicate_canonical": canonical}},
        auth=auth, timeout=30,
    )
    assert r.status_code == 201, r.text
    post_id = r.json()["id"]
    r = _get(wp_site, "/wp/v2/posts/%d?context=edit" % post_id, auth)
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["syndicate_canonical"] == canonical
    stored = wp_site.sql(
        "SELECT meta_value FROM wp_postmeta WHERE post_id=%d AND meta_key='syndicate_canonical'" % post_id)
    assert stored.strip() == canonical


def test_reset_empties_posts(wp_site):
    auth = (wp_site.username, wp_site.app_password)
    for status in ("publish", "draft"):
        r = requests.post(wp_site.url + "/wp-json/wp/v2/posts",
                          json={"title": "To be reset", "status": status}, auth=auth, timeout=30)
        assert r.status_code == 201, r.text
    r = requests.post(wp_site.url + "/wp-json/wp/v2/tags", json={"name": "reset-me"}, auth=auth, timeout=30)
    assert r.status_code == 201, r.text

    wp_site.reset()

    r = _get(wp_site, "/wp/v2/posts?context=edit&status=publish,draft,pending,private,future,trash", auth)
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert r.headers["X-WP-Total"] == "0"
    assert _get(wp_site, "/wp/v2/tags", auth).json() == []
    assert wp_site.sql("SELECT COUNT(*) FROM wp_posts").strip() == "0"
    # users and application passwords survive a reset
    assert _get(wp_site, "/wp/v2/users/me", auth).status_code == 200
