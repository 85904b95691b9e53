"""The WordPress publisher against a mocked REST API (``responses``): request shapes and error handling.

The real server is exercised in ``tests/integration/test_wordpress_integration.py``; here each test
states what WordPress answers and checks what we send and what a person would read.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.config import parse_config
from syndicate.errors import ConfigError
from syndicate.models import Article, Image, sha256
from syndicate.publishers.base import (
    Check,
    FetchedImage,
    ImageError,
    PartnerDown,
    PartnerEdited,
    PublishContext,
    PublishError,
    UnknownOutcome,
)
from syndicate.publishers.wordpress import (
    Config,
    Publisher,
    caption_html,
    encode_brackets,
    fields_hash,
    generator_version,
)

from .fakes import FakeMedia

SITE = "https://mag.example"
API = SITE + "/wp-json/wp/v2"
CANARY = "canary-SECRET-1234 abcd"
ENV = "SYNDICATE_TEST_WP_PASSWORD"
MARKER = "syn-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def canary_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, CANARY)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def make_config(**extra: Any) -> Config:
    raw = {"id": "mag", "name": "The Magazine", "url": SITE, "username": "syndication",
           "password": {"env": ENV, "key": "partners.mag.password"}, "status": "publish", **extra}
    return Config.model_validate(raw)


class Fetches:
    """A fake guarded image fetcher that counts its calls."""

    def __init__(self, error: Exception | None = None) -> None:
        self.urls: list[str] = []
        self.error = error

    def __call__(self, url: str) -> FetchedImage:
        self.urls.append(url)
        if self.error:
            raise self.error
        return FetchedImage(url=url, data=PNG, content_type="image/png", filename="network.png")


def make_publisher(config: Config | None = None, *, media: FakeMedia | None = None, fetch: Fetches | None = None,
                   sleeps: list[float] | None = None) -> Publisher:
    context = PublishContext(fetch_image=fetch or Fetches(), media=media or FakeMedia(),
                             sleep=(sleeps.append if sleeps is not None else (lambda s: None)))
    return Publisher(config or make_config(), context)


IMAGE = Image(url="https://cdn.example/network.jpg", alt="A network of connected points",
              caption="Points & lines", credit="Image by Gerd Altmann from Pixabay",
              credit_url="https://pixabay.com/users/geralt-9301/?a=1&b=2",
              note="Featured Image/graphic link added by Enlivening Edge Magazine.")


def make_article(**extra: Any) -> Article:
    fields: dict[str, Any] = dict(
        partner="mag", source="easierinc", guid="https://www.easierinc.com/?p=2087",
        title="Radical Models of Organising", slug="radical-models-of-organising",
        html="<p>By Andy Brogan</p>\n<p>A [gallery] here and <a href=\"https://x.example/?q[]=1\">x</a></p>\n",
        excerpt="The first part [of five]", canonical_url="https://www.easierinc.com/radical-models-of-organising/",
        tags=("Next Stage Radicals", "Self-management"), status="publish", featured_image=None,
        source_url="https://www.easierinc.com/radical-models-of-organising/")
    fields.update(extra)
    return Article(**fields)


def wp_post(post_id: int = 7, *, title: str = "Radical Models of Organising", content: str = "<p>x</p>",
            excerpt: str = "", status: str = "publish", slug: str = "radical-models-of-organising",
            featured_media: int = 0, tags: list[int] | None = None, meta: Any = None,
            modified: str = "2024-01-01T10:00:00", marker: str | None = MARKER, categories: list[int] | None = None,
            ) -> dict[str, Any]:
    """A post as WordPress answers it with context=edit."""
    if marker:
        content = content + f"\n<!-- syndicate:{marker} -->"
    return {"id": post_id, "slug": slug, "status": status, "link": f"{SITE}/{slug}/" if status == "publish"
            else f"{SITE}/?p={post_id}", "modified_gmt": modified,
            "title": {"raw": title, "rendered": title}, "content": {"raw": content, "rendered": content},
            "excerpt": {"raw": excerpt, "rendered": excerpt}, "featured_media": featured_media,
            "tags": tags or [], "categories": categories or [1], "meta": meta if meta is not None else []}


def echo_post(post_id: int = 7, status: int = 201, **overrides: Any) -> Any:
    """A callback answering a post write with the post as WordPress would store it."""
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sent = json.loads(request.body or b"{}")
        post = wp_post(post_id, title=sent.get("title", "t"), content=sent.get("content", ""),
                       excerpt=sent.get("excerpt", ""), status=sent.get("status", "publish"),
                       slug=sent.get("slug", "radical-models-of-organising"),
                       featured_media=sent.get("featured_media", 0), tags=sent.get("tags"),
                       meta=sent.get("meta", []), marker=None)
        post.update(overrides)
        return status, {"Content-Type": "application/json"}, json.dumps(post)
    return callback


def tags_known(mocked: responses.RequestsMock, known: dict[str, int]) -> None:
    """GET /tags?search=NAME answers the tags whose name contains NAME."""
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        term = query["search"][0].casefold()
        found = [{"id": i, "name": n.replace("&", "&amp;"), "slug": n.lower()} for n, i in known.items()
                 if term in n.casefold()]
        return 200, {"Content-Type": "application/json"}, json.dumps(found)
    mocked.add_callback(responses.GET, f"{API}/tags", callback=callback)


def sent_json(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)  # type: ignore[no-any-return]


def calls_to(mocked: responses.RequestsMock, method: str, path: str) -> list[Any]:
    return [c for c in mocked.calls
            if c.request.method == method and urlsplit(c.request.url).path == "/wp-json/wp/v2" + path]


def assert_no_secret(text: str) -> None:
    token = base64.b64encode(f"syndication:{CANARY}".encode()).decode()
    for secret in (CANARY, CANARY.replace(" ", ""), token, "canary-SECRET"):
        assert secret not in text


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


GONE = _error(404, "rest_post_invalid_id", "Invalid post ID.")


# --- config ---------------------------------------------------------------------------------------


def test_config_validates_url_and_refuses_a_literal_password(tmp_path: Path) -> None:
    base = {"name": "M", "kind": "wordpress", "username": "u"}
    with pytest.raises(ConfigError) as literal:
        parse_config({"partners": {"m": {**base, "url": SITE, "password": CANARY}}}, tmp_path / "s.toml")
    assert "partners.m.password" in str(literal.value)
    assert CANARY not in str(literal.value)
    with pytest.raises(ConfigError) as bad_url:
        parse_config({"partners": {"m": {**base, "url": "ftp://mag.example", "password": {"env": ENV}}}},
                     tmp_path / "s.toml")
    assert "partners.m.url" in str(bad_url.value)
    with pytest.raises(ConfigError) as userinfo:
        parse_config({"partners": {"m": {**base, "url": "https://u:pw@mag.example", "password": {"env": ENV}}}},
                     tmp_path / "s.toml")
    assert "partners.m.url" in str(userinfo.value) and "pw@" not in str(userinfo.value)
    config = parse_config({"partners": {"m": {**base, "url": SITE + "/wp-json/", "password": {"env": ENV},
                                              "categories": ["Republished"],
                                              "canonical_meta_key": "_yoast_wpseo_canonical"}}},
                          tmp_path / "s.toml")
    partner = config.partners["m"]
    assert isinstance(partner, Config)
    assert partner.url == SITE and partner.categories == ("Republished",)
    assert "canary" not in repr(partner)


# --- request shapes -------------------------------------------------------------------------------


def test_requests_carry_basic_auth_with_the_application_password(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/users/me", json={"username": "syndication", "roles": ["author"],
                                                        "capabilities": {"edit_posts": True}})
    make_publisher().test()
    expected = "Basic " + base64.b64encode(f"syndication:{CANARY}".encode()).decode()
    assert mocked.calls[0].request.headers["Authorization"] == expected
    assert parse_qs(urlsplit(mocked.calls[0].request.url).query)["context"] == ["edit"]


def test_secret_is_read_only_when_a_request_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV)
    publisher = make_publisher()  # no request yet: no secret needed
    assert publisher.prepare_html("[x]") == "&#91;x&#93;"


def test_create_sends_every_field_and_returns_what_wordpress_holds(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11})
    mocked.add(responses.POST, f"{API}/tags", json={"id": 12, "name": "Self-management"}, status=201)
    mocked.add(responses.POST, f"{API}/media", json={"id": 55, "source_url": f"{SITE}/up/network.png"}, status=201)
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    config = make_config(canonical_meta_key="syndicate_canonical")
    media = FakeMedia()
    copy = make_publisher(config, media=media).create(
        make_article(featured_image=IMAGE, title="Tom & Jerry <b>"), MARKER)

    sent = sent_json(calls_to(mocked, "POST", "/posts")[0])
    assert sent["title"] == "Tom &amp; Jerry &lt;b&gt;"  # plain text, not markup
    assert "&#91;gallery&#93;" in sent["content"] and "[" not in sent["content"] and "]" not in sent["content"]
    assert 'href="https://x.example/?q&#91;&#93;=1"' in sent["content"]
    assert sent["content"].endswith(f"<!-- syndicate:{MARKER} -->")
    assert sent["excerpt"] == "The first part &#91;of five&#93;"
    assert sent["slug"] == "radical-models-of-organising"
    assert sent["status"] == "publish"
    assert sent["tags"] == [11, 12]
    assert sent["featured_media"] == 55
    assert sent["meta"] == {"syndicate_canonical": "https://www.easierinc.com/radical-models-of-organising/"}
    assert "categories" not in sent
    assert sent_json(calls_to(mocked, "POST", "/tags")[0]) == {"name": "Self-management"}

    assert copy.remote_id == "7"
    assert copy.url == f"{SITE}/radical-models-of-organising/"
    assert copy.slug == "radical-models-of-organising" and copy.status == "publish"
    assert copy.version == "2024-01-01T10:00:00"
    assert copy.fields_hash == sha256(sent["title"], sent["content"], sent["excerpt"], 55, [11, 12])
    assert copy.warnings == ()
    assert media.get(IMAGE.url) == ("55", f"{SITE}/up/network.png")


def test_featured_image_is_uploaded_with_alt_text_and_the_credit_in_its_caption(
        mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/media", json={"id": 55, "source_url": f"{SITE}/up/n.png"}, status=201)
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    fetch = Fetches()
    make_publisher(fetch=fetch).create(make_article(featured_image=IMAGE), MARKER)
    assert fetch.urls == [IMAGE.url]
    upload = calls_to(mocked, "POST", "/media")[0].request
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    body = upload.body.decode("utf-8", "replace")
    assert 'filename="network.png"' in body and "image/png" in body
    assert "A network of connected points" in body
    assert ('Points &amp; lines. Featured Image/graphic link added by Enlivening Edge Magazine. '
            '<a href="https://pixabay.com/users/geralt-9301/?a=1&amp;b=2">Image by Gerd Altmann from Pixabay</a>'
            ) in body


def test_caption_escapes_text_and_encodes_brackets() -> None:
    image = Image(url="u", credit='<script>"x"</script> [gallery]', credit_url='https://e.example/"onmouseover=x')
    caption = caption_html(image)
    assert "<script>" not in caption and "[" not in caption
    assert 'href="https://e.example/%22onmouseover=x"' in caption  # serialised: the quote is percent-encoded
    assert caption_html(Image(url="u", credit="Photo: Easier Inc.")) == "Photo: Easier Inc."
    assert caption_html(Image(url="u")) == ""


def test_brackets_are_encoded_so_no_shortcode_runs() -> None:
    publisher = make_publisher()
    html = '<p>[gallery ids="1,2"] and [caption]x[/caption]</p><a title="[x]" href="https://e.example/a[0]">l</a>'
    out = publisher.prepare_html(html)
    assert "[" not in out and "]" not in out
    assert out == encode_brackets(html)
    assert publisher.prepare_html(out) == out  # idempotent: the pipeline and create may both apply it


def test_an_existing_tag_answered_with_term_exists_is_used(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {})  # search finds nothing (e.g. a name WordPress spells differently)
    mocked.add(responses.POST, f"{API}/tags", status=400, json={
        "code": "term_exists", "message": "A term with the name provided already exists in this taxonomy.",
        "data": {"status": 400, "term_id": 42}})
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    make_publisher().create(make_article(tags=("Leadership",)), MARKER)
    assert sent_json(calls_to(mocked, "POST", "/posts")[0])["tags"] == [42]


def test_tags_are_matched_by_name_whatever_the_case_and_looked_up_once(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Tom & Jerry": 5, "Tom & Jerry Extra": 6})
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    publisher = make_publisher()
    publisher.create(make_article(tags=("tom & jerry",)), MARKER)
    publisher.create(make_article(tags=("Tom & Jerry", "tom  &  jerry")), MARKER)
    assert [sent_json(c)["tags"] for c in calls_to(mocked, "POST", "/posts")] == [[5], [5]]
    assert len(calls_to(mocked, "GET", "/tags")) == 1
    assert not calls_to(mocked, "POST", "/tags")


def test_categories_are_added_and_a_missing_one_needs_manage_categories(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.GET, f"{API}/categories", json=[{"id": 3, "name": "Republished"}])
    mocked.add(responses.POST, f"{API}/categories", status=403, json={
        "code": "rest_cannot_create", "message": "Sorry, you are not allowed to create terms in this taxonomy.",
        "data": {"status": 403}})
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    make_publisher(make_config(categories=("Republished",))).create(make_article(), MARKER)
    assert sent_json(calls_to(mocked, "POST", "/posts")[0])["categories"] == [3]

    with pytest.raises(PublishError) as exc:
        make_publisher(make_config(categories=("Republished", "Guest posts"))).create(make_article(), MARKER)
    assert "manage_categories" in str(exc.value) and "mag" in str(exc.value)
    assert exc.value.transient is False
    assert len(calls_to(mocked, "POST", "/posts")) == 1  # nothing created without its category


def test_an_uploaded_image_is_reused_by_the_next_create(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/media", json={"id": 55, "source_url": f"{SITE}/up/n.png"}, status=201)
    mocked.add(responses.GET, f"{API}/media/55", json={
        "id": 55, "status": "inherit", "alt_text": IMAGE.alt, "caption": {"raw": caption_html(IMAGE)}})
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    media, fetch = FakeMedia(), Fetches()
    make_publisher(media=media, fetch=fetch).create(make_article(featured_image=IMAGE), MARKER)
    make_publisher(media=media, fetch=fetch).create(make_article(featured_image=IMAGE, slug="other"), MARKER)
    assert len(calls_to(mocked, "POST", "/media")) == 1
    assert fetch.urls == [IMAGE.url]
    assert [sent_json(c)["featured_media"] for c in calls_to(mocked, "POST", "/posts")] == [55, 55]
    assert not calls_to(mocked, "POST", "/media/55")  # alt and caption already right: no write


def test_a_reused_image_gets_a_corrected_credit(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    media = FakeMedia()
    media.put(IMAGE.url, "55", f"{SITE}/up/n.png")
    mocked.add(responses.GET, f"{API}/media/55", json={
        "id": 55, "status": "inherit", "alt_text": IMAGE.alt, "caption": {"raw": "Old credit"}})
    mocked.add(responses.POST, f"{API}/media/55", json={"id": 55})
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    make_publisher(media=media).create(make_article(featured_image=IMAGE), MARKER)
    assert sent_json(calls_to(mocked, "POST", "/media/55")[0]) == {"caption": caption_html(IMAGE)}


def test_an_image_deleted_from_the_media_library_is_uploaded_again(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    media = FakeMedia()
    media.put(IMAGE.url, "55", f"{SITE}/up/n.png")
    mocked.add(responses.GET, f"{API}/media/55", status=404, json=GONE)
    mocked.add(responses.POST, f"{API}/media", json={"id": 56, "source_url": f"{SITE}/up/n-1.png"}, status=201)
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    make_publisher(media=media).create(make_article(featured_image=IMAGE), MARKER)
    assert sent_json(calls_to(mocked, "POST", "/posts")[0])["featured_media"] == 56
    assert media.get(IMAGE.url) == ("56", f"{SITE}/up/n-1.png")


def test_an_image_that_cannot_be_fetched_fails_the_delivery_before_any_post(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    fetch = Fetches(ImageError("featured image https://cdn.example/network.jpg is an SVG"))
    with pytest.raises(ImageError, match="SVG"):
        make_publisher(fetch=fetch).create(make_article(featured_image=IMAGE), MARKER)
    assert not calls_to(mocked, "POST", "/posts") and not calls_to(mocked, "POST", "/media")


def test_a_lost_upload_answer_is_an_image_error_not_a_lost_post(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/media", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ImageError) as exc:
        make_publisher().create(make_article(featured_image=IMAGE), MARKER)
    assert not isinstance(exc.value, UnknownOutcome)
    assert "next run" in str(exc.value)
    assert not calls_to(mocked, "POST", "/posts")


def test_a_featured_image_wordpress_ignored_is_repaired_once(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    media = FakeMedia()
    media.put(IMAGE.url, "55", f"{SITE}/up/n.png")
    # The media item is there when we look, gone when the post is saved (deleted meanwhile).
    mocked.add(responses.GET, f"{API}/media/55", json={
        "id": 55, "status": "inherit", "alt_text": IMAGE.alt, "caption": {"raw": caption_html(IMAGE)}})
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7, featured_media=0))
    mocked.add(responses.POST, f"{API}/media", json={"id": 56, "source_url": f"{SITE}/up/n-1.png"}, status=201)
    mocked.add(responses.POST, f"{API}/posts/7", json=wp_post(7, featured_media=56), status=200)
    copy = make_publisher(media=media).create(make_article(featured_image=IMAGE), MARKER)
    assert sent_json(calls_to(mocked, "POST", "/posts/7")[0]) == {"featured_media": 56}
    assert copy.fields_hash == fields_hash(wp_post(7, featured_media=56)) and copy.warnings == ()
    assert len(calls_to(mocked, "POST", "/posts")) == 1


def test_a_dropped_canonical_meta_key_is_a_warning_not_a_failure(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7, meta=[]))
    copy = make_publisher(make_config(canonical_meta_key="_yoast_wpseo_canonical")).create(make_article(), MARKER)
    assert copy.remote_id == "7"
    assert len(copy.warnings) == 1
    assert "WordPress dropped the canonical meta key _yoast_wpseo_canonical" in copy.warnings[0]
    assert "show_in_rest" in copy.warnings[0]


def test_a_create_answered_without_201_and_an_id_is_an_unknown_outcome(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/posts", status=200, json=[])
    with pytest.raises(UnknownOutcome):
        make_publisher().create(make_article(), MARKER)


# --- updates and partner edits ----------------------------------------------------------------------


def test_update_pushes_when_nothing_changed_on_the_partner(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    current = wp_post(7, status="draft", categories=[9])  # an editor may change the status: not an edit
    mocked.add(responses.GET, f"{API}/posts/7", json=current)
    mocked.add_callback(responses.POST, f"{API}/posts/7", callback=echo_post(7, status=200))
    config = make_config(categories=("Republished",))
    mocked.add(responses.GET, f"{API}/categories", json=[{"id": 3, "name": "Republished"}])
    copy = make_publisher(config).update("7", make_article(), MARKER, fields_hash(wp_post(7)))
    sent = sent_json(calls_to(mocked, "POST", "/posts/7")[0])
    assert "status" not in sent and "slug" not in sent  # the partner's to change
    assert sent["categories"] == [9, 3]  # the partner's own categories are kept
    assert sent["featured_media"] == 0 and sent["tags"] == [11, 12]
    assert copy.remote_id == "7"


def test_update_is_held_when_the_partner_edited_a_field_we_push(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/posts/7", json=wp_post(7, title="A better title, says the editor"))
    publisher = make_publisher()
    with pytest.raises(PartnerEdited) as exc:
        publisher.update("7", make_article(), MARKER, fields_hash(wp_post(7)))
    assert "mag" in str(exc.value) and "edited" in str(exc.value)
    assert not calls_to(mocked, "POST", "/posts/7")


def test_update_with_force_overwrites_the_partner_edit(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.GET, f"{API}/posts/7", json=wp_post(7, title="A better title, says the editor"))
    mocked.add_callback(responses.POST, f"{API}/posts/7", callback=echo_post(7, status=200))
    copy = make_publisher().update("7", make_article(), MARKER, fields_hash(wp_post(7)), force=True)
    assert sent_json(calls_to(mocked, "POST", "/posts/7")[0])["title"] == "Radical Models of Organising"
    assert copy.fields_hash != fields_hash(wp_post(7))


def test_update_of_a_post_that_is_gone_says_so(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/posts/7", json=wp_post(7, status="trash"))
    mocked.add(responses.GET, f"{API}/posts/8", status=404, json=GONE)
    for rid in ("7", "8"):
        with pytest.raises(PublishError, match="gone from WordPress"):
            make_publisher().update(rid, make_article(), MARKER, None)


# --- errors in plain words, never a secret -----------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "kind", "words"), [
    (401, _error(401, "rest_not_logged_in", "You are not currently logged in."), PartnerDown,
     ["credentials", "'syndication'", "application password", "WP_ENVIRONMENT_TYPE=local"]),
    (403, _error(403, "rest_cannot_create", "Sorry, you are not allowed to create posts as this user."),
     PublishError, ["may not create posts", "Author role or edit_posts"]),
    (403, _error(403, "rest_cannot_publish", "Sorry, you are not allowed to publish posts in this post type."),
     PublishError, ["publish_posts"]),
    (404, _error(404, "rest_no_route", "No route was found matching the URL and request method."), PartnerDown,
     [f"no WordPress REST API at {SITE}/wp-json/", "check the partner's url"]),
    (400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): status",
           "data": {"status": 400, "params": {"status": "status is not one of publish, draft."}}}, PublishError,
     ["WordPress refused to create the post", "Invalid parameter(s): status", "status is not one of"]),
])
def test_errors_name_the_partner_and_never_the_password(mocked: responses.RequestsMock,
                                                       caplog: pytest.LogCaptureFixture, status: int,
                                                       body: dict[str, Any], kind: type[Exception],
                                                       words: list[str]) -> None:
    caplog.set_level(logging.DEBUG)
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/posts", status=status, json=body)
    with pytest.raises(kind) as exc:
        make_publisher().create(make_article(), MARKER)
    message = str(exc.value)
    assert message.startswith("mag: ")
    for word in words:
        assert word in message
    assert_no_secret(message)
    assert_no_secret(caplog.text)
    assert_no_secret("".join(traceback.format_exception(exc.value)))


def test_a_403_on_upload_names_upload_files(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/media", status=403,
               json=_error(403, "rest_cannot_create", "Sorry, you are not allowed to upload media on this site."))
    with pytest.raises(PublishError) as exc:
        make_publisher().create(make_article(featured_image=IMAGE), MARKER)
    assert "mag" in str(exc.value) and "upload_files" in str(exc.value)
    assert exc.value.transient is False


def test_a_site_that_is_not_wordpress_is_named(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/posts", status=404, body="<html>Not found</html>",
               content_type="text/html")
    with pytest.raises(PartnerDown, match=re.escape(f"no WordPress REST API at {SITE}/wp-json/")):
        make_publisher().refresh(["7"])
    mocked.replace(responses.GET, f"{API}/posts", status=200, body="<html>A shop</html>", content_type="text/html")
    with pytest.raises(PartnerDown, match=re.escape(f"is there a WordPress REST API at {SITE}/wp-json/?")):
        make_publisher().refresh(["7"])


def test_a_redirected_write_is_never_followed(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/posts", status=301,
               headers={"Location": "https://www.mag.example/wp-json/wp/v2/posts"})
    with pytest.raises(PublishError) as exc:
        make_publisher().create(make_article(), MARKER)
    assert "https://www.mag.example/wp-json/wp/v2/posts" in str(exc.value)
    assert "mag" in str(exc.value)
    assert not isinstance(exc.value, UnknownOutcome)
    assert len(calls_to(mocked, "POST", "/posts")) == 1
    assert all(urlsplit(c.request.url).hostname == "mag.example" for c in mocked.calls)


def test_503_with_retry_after_is_waited_out_then_created(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/posts", status=503, headers={"Retry-After": "7"}, body="busy")
    mocked.add_callback(responses.POST, f"{API}/posts", callback=echo_post(7))
    sleeps: list[float] = []
    copy = make_publisher(sleeps=sleeps).create(make_article(), MARKER)
    assert sleeps == [7.0]
    assert copy.remote_id == "7"
    assert len(calls_to(mocked, "POST", "/posts")) == 2


def test_a_timeout_on_create_is_an_unknown_outcome_and_is_not_retried(mocked: responses.RequestsMock) -> None:
    tags_known(mocked, {"Next Stage Radicals": 11, "Self-management": 12})
    mocked.add(responses.POST, f"{API}/posts", body=requests.exceptions.ReadTimeout("read timed out"))
    sleeps: list[float] = []
    with pytest.raises(UnknownOutcome) as exc:
        make_publisher(sleeps=sleeps).create(make_article(), MARKER)
    assert "mag" in str(exc.value)
    assert len(calls_to(mocked, "POST", "/posts")) == 1
    assert sleeps == []


# --- refresh, find, withdraw --------------------------------------------------------------------------


def test_refresh_reads_in_batches_follows_pages_and_confirms_what_is_gone(mocked: responses.RequestsMock) -> None:
    ids = [str(i) for i in range(1, 151)]  # two batches of include=…

    def listing(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        wanted = [int(i) for i in query["include"][0].split(",")]
        assert query["status"] == ["publish,future,draft,pending,private"]
        assert query["context"] == ["edit"] and query["per_page"] == ["100"]
        present = [i for i in wanted if i != 150]  # 150 was deleted
        page = int(query["page"][0])
        pages = [present[:60], present[60:]] if len(present) > 60 else [present]
        body = [wp_post(i, slug=f"p{i}") for i in pages[page - 1]]
        return 200, {"Content-Type": "application/json", "X-WP-Total": str(len(present)),
                     "X-WP-TotalPages": str(len(pages))}, json.dumps(body)

    mocked.add_callback(responses.GET, f"{API}/posts", callback=listing)
    mocked.add(responses.GET, f"{API}/posts/150", status=404, json=GONE)
    states = make_publisher().refresh(ids)
    assert set(states) == set(ids)
    assert states["150"] is None
    copy = states["42"]
    assert copy is not None and copy.url == f"{SITE}/p42/" and copy.fields_hash == fields_hash(wp_post(42, slug="p42"))
    assert len(calls_to(mocked, "GET", "/posts")) == 3  # batch 1 in two pages, batch 2 in one


def test_refresh_does_not_take_a_copy_it_may_no_longer_edit_for_deleted(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/posts", json=[], headers={"X-WP-TotalPages": "1"})
    mocked.add(responses.GET, f"{API}/posts/7", status=403,
               json=_error(403, "rest_forbidden_context", "Sorry, you are not allowed to edit this post."))
    mocked.add(responses.GET, f"{API}/posts/7", json={"id": 7, "link": f"{SITE}/x/", "slug": "x", "status": "publish"})
    states = make_publisher().refresh(["7"])
    assert states["7"] is not None and states["7"].url == f"{SITE}/x/"


def test_refresh_explains_credentials_wordpress_ignored(mocked: responses.RequestsMock) -> None:
    # A wrong application password is not always a 401: WordPress may treat the request as anonymous.
    mocked.add(responses.GET, f"{API}/posts", status=400, json={
        "code": "rest_invalid_param", "message": "Invalid parameter(s): status",
        "data": {"status": 400, "params": {"status": "Status is forbidden."}}})
    with pytest.raises(PartnerDown) as exc:
        make_publisher().refresh(["7"])
    assert "mag: " in str(exc.value) and "credentials were not accepted" in str(exc.value)
    assert_no_secret(str(exc.value))


def test_refresh_failing_stops_the_partner_for_this_run(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/posts", status=500, body="oops")
    with pytest.raises(PartnerDown):
        make_publisher().refresh(["7"])


def test_find_ignores_a_post_with_our_slug_but_without_our_marker(mocked: responses.RequestsMock) -> None:
    theirs = wp_post(3, marker=None, content="<p>The editor's own post</p>")
    ours = wp_post(9, slug="radical-models-of-organising-2")

    def listing(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        assert query["status"] == ["publish,future,draft,pending,private"] and query["context"] == ["edit"]
        if "slug" in query:
            family = query["slug"][0].split(",")
            assert family[:3] == ["radical-models-of-organising", "radical-models-of-organising-2",
                                  "radical-models-of-organising-3"]
            found = [p for p in (theirs, ours) if p["slug"] in family]
        else:
            found = [p for p in (theirs, ours) if query["search"][0] in p["content"]["raw"]]
        return 200, {"Content-Type": "application/json", "X-WP-TotalPages": "1"}, json.dumps(found)

    mocked.add_callback(responses.GET, f"{API}/posts", callback=listing)
    publisher = make_publisher()
    found = publisher.find(make_article(), MARKER)
    assert found is not None and found.remote_id == "9"
    assert publisher.find(make_article(), "syn-ffffffffffffffff") is None


def test_withdraw_makes_a_draft_or_trashes(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/posts/7", json=wp_post(7))
    mocked.add(responses.POST, f"{API}/posts/7", json=wp_post(7, status="draft"))
    mocked.add(responses.DELETE, f"{API}/posts/7", json=wp_post(7, status="trash"))
    mocked.add(responses.GET, f"{API}/posts/8", status=404, json=GONE)
    publisher = make_publisher()
    draft = publisher.withdraw("7")
    assert draft is not None and draft.status == "draft"
    assert sent_json(calls_to(mocked, "POST", "/posts/7")[0]) == {"status": "draft"}
    trashed = publisher.withdraw("7", delete=True)
    assert trashed is not None and trashed.status == "trash"
    assert "force" not in (urlsplit(calls_to(mocked, "DELETE", "/posts/7")[0].request.url).query)
    assert publisher.withdraw("8") is None  # already gone: nothing to do


# --- partners test ---------------------------------------------------------------------------------


def test_partners_test_checks_capabilities_and_warns_about_unfiltered_html(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/users/me", json={
        "username": "syndication", "roles": ["editor"],
        "capabilities": {"edit_posts": True, "publish_posts": True, "upload_files": True, "unfiltered_html": True,
                         "manage_categories": False}})
    mocked.add(responses.GET, f"{API}/categories", json=[])
    mocked.add(responses.OPTIONS, f"{API}/posts", json={"schema": {"properties": {"meta": {"properties": {}}}}})
    config = make_config(categories=("Guest posts",), canonical_meta_key="_yoast_wpseo_canonical")
    checks = make_publisher(config).test()
    by_name = {c.what: c for c in checks}
    assert by_name["credentials"].ok and "syndication" in by_name["credentials"].detail
    assert by_name["edit_posts"].ok and by_name["publish_posts"].ok and by_name["upload_files"].ok
    assert not by_name["manage_categories"].ok and "Guest posts" in by_name["manage_categories"].detail
    assert by_name["unfiltered_html"].warning and "Author-role user" in by_name["unfiltered_html"].detail
    assert by_name["canonical meta key"].warning and "_yoast_wpseo_canonical" in by_name["canonical meta key"].detail
    assert {c.request.method for c in mocked.calls} <= {"GET", "OPTIONS"}  # changes nothing


VERSIONS = st.from_regex(r"\A[0-9]{1,2}(\.[0-9]{1,2}){0,2}(-(alpha|beta|RC)[0-9]?)?\Z")
# What a partner's page or feed holds around the generator: anything but the tag itself.
NOISE = st.text(st.characters(blacklist_characters="<>"), max_size=40)


@given(version=VERSIONS, before=NOISE, after=NOISE, form=st.sampled_from(["rss", "atom", "meta"]))
def test_the_wordpress_version_is_read_from_any_generator_form(version: str, before: str, after: str,
                                                               form: str) -> None:
    tag = {"rss": f"<generator>https://wordpress.org/?v={version}</generator>",
           "atom": f'<generator uri="https://wordpress.org/" version="{version}">WordPress</generator>',
           "meta": f'<meta name="generator" content="WordPress {version}" />'}[form]
    assert generator_version(f"<rss>{before}{tag}{after}</rss>") == version


@given(value=st.text(max_size=30), before=NOISE)
def test_a_generator_value_is_printed_only_when_it_is_a_version(value: str, before: str) -> None:
    found = generator_version(f"{before}<generator>https://wordpress.org/?v={value}</generator>")
    assert found is None or (found == value and re.fullmatch(r"[0-9A-Za-z.\-]+", found))
    assert generator_version(f"{before}<generator>https://ghost.org/?v={value}</generator>") is None


def test_partners_test_reports_the_wordpress_version(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/users/me", json={
        "username": "syndication", "roles": ["author"],
        "capabilities": {"edit_posts": True, "publish_posts": True, "upload_files": True}})
    mocked.add(responses.GET, f"{SITE}/?feed=rss2",
               body="<rss><channel><generator>https://wordpress.org/?v=7.1.4</generator></channel></rss>")
    checks = {c.what: c for c in make_publisher().test()}
    assert checks["WordPress version"].ok and checks["WordPress version"].detail == "7.1.4"
    assert not checks["WordPress version"].warning


def test_partners_test_passes_when_the_site_hides_its_version(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, f"{API}/users/me", json={
        "username": "syndication", "roles": ["author"],
        "capabilities": {"edit_posts": True, "publish_posts": True, "upload_files": True}})
    mocked.add(responses.GET, f"{SITE}/?feed=rss2", body="<rss><channel><title>Mag</title></channel></rss>")
    checks = make_publisher().test()
    assert all(c.ok for c in checks)
    assert {c.what: c.detail for c in checks}["WordPress version"].startswith("not disclosed")
    mocked.replace(responses.GET, f"{SITE}/?feed=rss2", status=404)
    checks = make_publisher().test()
    assert all(c.ok for c in checks)
    assert {c.what: c.detail for c in checks}["WordPress version"].startswith("unknown: could not read")


def test_partners_test_reports_refused_credentials(mocked: responses.RequestsMock,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.add(responses.GET, f"{API}/users/me", status=401, json=_error(401, "incorrect_password", "Bad."))
    checks = make_publisher(make_config(status="draft")).test()
    assert len(checks) == 1 and not checks[0].ok and checks[0].what == "credentials"
    assert "application password" in checks[0].detail
    assert_no_secret(checks[0].detail)
    assert_no_secret(caplog.text)


def test_partners_test_warns_about_plain_http(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, "http://mag.example/wp-json/wp/v2/users/me", json={
        "username": "syndication", "roles": ["author"],
        "capabilities": {"edit_posts": True, "publish_posts": True, "upload_files": True}})
    checks = make_publisher(make_config(url="http://mag.example")).test()
    assert checks[0].what == "https" and checks[0].warning
    assert all(c.ok for c in checks)


# --- embeds the way WordPress makes them --------------------------------------------------------


def test_allowed_iframes_become_urls_wordpress_embeds_itself() -> None:
    from syndicate.publishers.wordpress import wordpress_embeds

    html = ('<p><iframe src="https://www.youtube.com/embed/aBcD3fGh1jk" width="560"></iframe></p>\n'
            '<iframe src="https://player.vimeo.com/video/123"></iframe>'
            '<p>Watch <iframe src="https://www.youtube-nocookie.com/embed/ZyX9wVu8tSr"></iframe> now</p>')
    out = wordpress_embeds(html)
    assert "<iframe" not in out
    assert "<p>https://www.youtube.com/watch?v=aBcD3fGh1jk</p>" in out
    assert "<p>https://vimeo.com/123</p>" in out
    assert ('Watch <a href="https://www.youtube.com/watch?v=ZyX9wVu8tSr">https://www.youtube.com/watch?v=ZyX9wVu8tSr'
            "</a> now") in out
    assert wordpress_embeds(out) == out  # idempotent: preview shows exactly what is pushed


def test_a_bare_url_cannot_become_an_embed_we_did_not_allow() -> None:
    from syndicate.publishers.wordpress import wordpress_embeds

    out = wordpress_embeds("<p>\nhttps://twitter.com/jo/status/1\n</p><p>text<br>\nhttps://example.com/x\nmore</p>"
                           "<pre>keep\nlines</pre>")
    assert '<p><a href="https://twitter.com/jo/status/1">https://twitter.com/jo/status/1</a></p>' in out
    assert "\nhttps://example.com/x\n" not in out  # no URL alone on a line
    assert "<pre>keep\nlines</pre>" in out


# --- partners test: will the canonical URL be honoured? ----------------------------------------------

COPY = f"{SITE}/radical-models/"
OURS = "https://www.easierinc.com/radical-models/"


def published_copy(meta: object = None, marker: bool = True) -> dict[str, Any]:
    raw = "<p>Body.</p>" + (f"\n<!-- syndicate:{MARKER} -->" if marker else "")
    return {"id": 7, "link": COPY, "content": {"raw": raw}, "meta": meta if meta is not None else {"canon": OURS}}


@pytest.mark.parametrize(("head", "verdict"), [
    (f'<link rel="canonical" href="{OURS}" />', "honoured: canon is registered and a plugin prints it"),
    (f'<link rel="canonical" href="{COPY}" />', f"not honoured: {COPY} prints {COPY}, not canon's {OURS}"),
    ("", f"not honoured: {COPY} prints no canonical"),
    (f'<link rel="canonical" href="{OURS}" /><link rel="canonical" href="{COPY}" />',
     f"not honoured: {COPY} prints two canonicals, canon's and {COPY}"),
])
def test_partners_test_says_whether_a_plugin_prints_the_canonical(mocked: responses.RequestsMock, head: str,
                                                                  verdict: str) -> None:
    mocked.add(responses.GET, f"{API}/posts", json=[published_copy(marker=False), published_copy()])
    mocked.add(responses.GET, COPY, body=f"<html><head>{head}</head><body>x</body></html>")
    publisher = make_publisher(make_config(canonical_meta_key="canon"))
    check = publisher._canonical_check(None)
    assert check.detail.startswith(verdict), check.detail
    assert check.warning == verdict.startswith("not")
    page = next(c for c in mocked.calls if c.request.url == COPY)
    assert "Authorization" not in page.request.headers  # read as the public reads it


def test_partners_test_says_what_it_cannot_tell(mocked: responses.RequestsMock) -> None:
    publisher = make_publisher(make_config(canonical_meta_key="canon"))
    mocked.add(responses.GET, f"{API}/posts", json=[published_copy(marker=False), published_copy(meta={"canon": ""})])
    check = publisher._canonical_check(None)
    assert check.warning and "no published copy of ours exists yet" in check.detail
    dropped = Check(True, "canonical meta key", "canon is not registered", warning=True)
    assert publisher._canonical_check(dropped).detail.startswith("not honoured: WordPress does not keep canon")
    none = make_publisher(make_config())._canonical_check(None)
    assert none.warning and "WordPress core prints its own canonical, pointing at the copy" in none.detail


# --- body images (images = "upload") --------------------------------------------------------------------

def test_a_body_image_is_one_media_item_and_the_body_gets_its_file_url(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.POST, f"{API}/media", status=201,
               json={"id": 41, "source_url": f"{SITE}/wp-content/uploads/2026/12/network.png"})
    image = FetchedImage(url="https://cdn.example/network.png", data=PNG, content_type="image/png",
                         filename="network.png")
    uploaded = make_publisher().upload_image(image)
    assert (uploaded.remote_id, uploaded.url) == ("41", f"{SITE}/wp-content/uploads/2026/12/network.png")
    (call,) = calls_to(mocked, "POST", "/media")
    body = call.request.body
    assert isinstance(body, bytes) and b'filename="network.png"' in body and PNG in body


@pytest.mark.parametrize("answer", [
    {"status": 403, "json": _error(403, "rest_cannot_create", "Sorry, you are not allowed to upload media.")},
    {"status": 201, "json": {"id": 41}},                       # no file URL: nothing to point the body at
    {"body": requests.exceptions.ReadTimeout("read timed out")},  # a lost answer: never a lost post
])
def test_a_body_image_wordpress_will_not_take_is_an_image_error(mocked: responses.RequestsMock,
                                                                  answer: dict[str, Any]) -> None:
    mocked.add(responses.POST, f"{API}/media", **answer)
    image = FetchedImage(url="https://cdn.example/a.png", data=PNG, content_type="image/png", filename="a.png")
    with pytest.raises(ImageError) as exc:
        make_publisher().upload_image(image)
    assert not isinstance(exc.value, UnknownOutcome)
    assert not calls_to(mocked, "POST", "/posts")


@settings(max_examples=10, deadline=None)
@given(st.lists(st.sampled_from(["News", "news", "Culture", "Long reads"]), min_size=2, max_size=8))
def test_concurrent_pushes_create_each_tag_once(names: list[str]) -> None:
    # A partner's concurrency runs pushes in threads: each tag name is looked up and created by one of
    # them, while the others wait for its id (two creates of one name are two tags in WordPress).
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from syndicate.publishers.wordpress import WordPressTerms

    created: list[str] = []
    lock = threading.Lock()
    # Two lookups that run at once meet here (so a race, if there is one, happens every time); a
    # lookup alone waits a moment and goes on.
    together = threading.Barrier(2, timeout=0.3)

    class Response:
        def __init__(self, status_code: int, payload: object) -> None:
            self.status_code, self.payload = status_code, payload

    class SlowAPI:
        """Answers a tag search with what was created when it arrived, once another search has arrived
        too (or after 0.3 s)."""

        def call(self, method: str, path: str, doing: str, *args: object, **kwargs: Any) -> Response:
            if method == "GET":
                with lock:  # what WordPress holds when the search arrives
                    wanted = kwargs["params"]["search"].casefold()
                    answer = [{"id": created.index(n) + 1, "name": n} for n in created if n.casefold() == wanted]
                try:
                    together.wait()
                except threading.BrokenBarrierError:
                    pass
                return Response(200, answer)
            with lock:
                created.append(kwargs["json"]["name"])
                return Response(201, {"id": len(created)})

        def json(self, response: Response, doing: str) -> object:
            return response.payload

    terms = WordPressTerms(SlowAPI())  # type: ignore[arg-type]
    with ThreadPoolExecutor(4) as pushes:
        found = list(pushes.map(lambda name: terms.ids("tags", [name], "tag"), names))
    assert sorted(n.casefold() for n in created) == sorted({n.casefold() for n in names})
    assert all(len(ids) == 1 for ids in found)
