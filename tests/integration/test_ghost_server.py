"""Smoke test of the real-Ghost harness: start, Admin API key, create/read post, reset."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jwt
import pytest
import requests

try:
    from . import ghost_server
except ImportError:  # collected outside the tests.integration package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ghost_server

pytestmark = pytest.mark.integration


@pytest.fixture()
def smoke_site(ghost: ghost_server.GhostSite) -> ghost_server.GhostSite:
    """The session's Ghost (one per version under test), clean."""
    return ghost


def auth(site: ghost_server.GhostSite) -> dict:
    kid, secret = site.admin_api_key.split(":")
    iat = int(time.time())
    token = jwt.encode({"iat": iat, "exp": iat + 300, "aud": "/admin/"}, bytes.fromhex(secret),
                       algorithm="HS256", headers={"kid": kid})
    return {"Authorization": f"Ghost {token}"}


def test_site_and_post_roundtrip(smoke_site):
    ghost = smoke_site
    api = ghost.url + "/ghost/api/admin"
    assert ghost.url.startswith("http://127.0.0.1:")

    r = requests.get(api + "/site/", headers=auth(ghost), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["site"]["title"] == "Partner Mag (test)"
    # the running Ghost is the release asked for (Ghost reports major.minor here)
    assert ghost_server.release(ghost.version).package.startswith(r.json()["site"]["version"] + ".")

    ghost.reset()
    body = {"posts": [{
        "title": "Hello from syndicate",
        "html": "<p>Body <strong>text</strong>.</p>",
        "tags": ["Foo", "#syndicated"],
        "canonical_url": "https://origin.example/p/hello/",
        "feature_image": "https://origin.example/img/hello.jpg",
        "status": "draft",
    }]}
    r = requests.post(api + "/posts/?source=html", json=body, headers=auth(ghost), timeout=30)
    assert r.status_code == 201, r.text
    post_id = r.json()["posts"][0]["id"]

    r = requests.get(f"{api}/posts/{post_id}/?formats=html&include=tags", headers=auth(ghost), timeout=30)
    assert r.status_code == 200, r.text
    post = r.json()["posts"][0]
    assert post["title"] == "Hello from syndicate"
    assert post["canonical_url"] == "https://origin.example/p/hello/"
    assert post["feature_image"] == "https://origin.example/img/hello.jpg"
    assert "<strong>text</strong>" in post["html"]
    assert [(t["name"], t["slug"], t["visibility"]) for t in post["tags"]] == [
        ("Foo", "foo", "public"), ("#syndicated", "hash-syndicated", "internal")]

    r = requests.get(api + "/posts/?filter=tag:hash-syndicated&fields=id", headers=auth(ghost), timeout=30)
    assert [p["id"] for p in r.json()["posts"]] == [post_id]

    ghost.reset()
    r = requests.get(api + "/posts/?limit=all&filter=status:[draft,published,scheduled]",
                     headers=auth(ghost), timeout=30)
    assert r.status_code == 200 and r.json()["posts"] == []
    r = requests.get(api + "/tags/?limit=all&filter=visibility:[public,internal]", headers=auth(ghost),
                     timeout=30)
    assert r.json()["tags"] == []


def test_browse_pages_past_ghost_6s_cap_of_100_items(smoke_site):
    """Ghost 6 answers at most 100 items even for limit=all: the harness's browse (and so reset, and the
    tests' view of the site) must page, or it would silently see only the first 100."""
    ghost = smoke_site
    api = ghost.url + "/ghost/api/admin"
    names = [f"cap-{i:03d}" for i in range(105)]
    for name in names:
        r = requests.post(api + "/tags/", json={"tags": [{"name": name}]}, headers=auth(ghost), timeout=30)
        assert r.status_code == 201, r.text
    assert sorted(t["name"] for t in ghost.browse("tags", "fields=name")) == names
    ghost.reset()
    assert ghost.browse("tags", "filter=visibility:[public,internal]") == []
