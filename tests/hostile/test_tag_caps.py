"""One entry cannot make a partner create hundreds of tags: at most MAX_TAGS_PER_ENTRY, with a warning."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.publishers.base import MAX_TAGS_PER_ENTRY
from tests import test_ghost, test_wordpress

categories = st.lists(st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12), max_size=60)
many = st.integers(0, 450).map(lambda n: [f"Tag {i}" for i in range(n)])


def _distinct(names: list[str]) -> int:
    return len({" ".join(n.split()).casefold() for n in names if n.strip()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=many | categories)
def test_wordpress_creates_at_most_the_cap(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
    monkeypatch.setenv(test_wordpress.ENV, test_wordpress.CANARY)
    created: list[str] = []

    def create_tag(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        created.append(json.loads(request.body or b"{}")["name"])
        return 201, {}, json.dumps({"id": 100 + len(created), "name": created[-1]})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add(responses.GET, f"{test_wordpress.API}/tags", json=[])
        mocked.add_callback(responses.POST, f"{test_wordpress.API}/tags", callback=create_tag)
        mocked.add_callback(responses.POST, f"{test_wordpress.API}/posts", callback=test_wordpress.echo_post(7))
        copy = test_wordpress.make_publisher().create(test_wordpress.make_article(tags=tuple(names)),
                                                      test_wordpress.MARKER)
        sent = json.loads([c for c in mocked.calls if c.request.method == "POST"
                           and c.request.url.endswith("/posts")][0].request.body)
        requests_made = len(mocked.calls)
    assert len(created) <= MAX_TAGS_PER_ENTRY and len(sent["tags"]) <= MAX_TAGS_PER_ENTRY
    assert requests_made <= 2 * MAX_TAGS_PER_ENTRY + 1
    warned = [w for w in copy.warnings if "tags" in w]
    assert bool(warned) == (_distinct(names) > MAX_TAGS_PER_ENTRY), copy.warnings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=many | categories)
def test_ghost_sends_at_most_the_cap_plus_its_own_two(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
    monkeypatch.setenv(test_ghost.KEY_ENV, f"{test_ghost.KEY_ID}:{test_ghost.SECRET}")
    harness = test_ghost.Harness()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post(f"{test_ghost.API}/images/upload/", status=201,
                    json={"images": [{"url": test_ghost.UPLOADED, "ref": test_ghost.IMAGE_URL}]})
        mocked.post(f"{test_ghost.API}/posts/", status=201, json={"posts": [test_ghost.post()]})
        copy = harness.publisher.create(test_ghost.article(tags=tuple(names)), test_ghost.MARKER)
        sent: Any = json.loads(mocked.calls[-1].request.body)["posts"][0]["tags"]
    ours = [t for t in sent if not t["name"].startswith("#syn") and t["name"] != "#syndicated"]
    assert len(ours) <= MAX_TAGS_PER_ENTRY
    assert {"name": "#syndicated"} in sent and {"name": f"#{test_ghost.MARKER}"} in sent
    assert bool(copy.warnings) == (_distinct(names) > MAX_TAGS_PER_ENTRY), copy.warnings
