"""The Ghost publisher against a mocked Admin API (``responses``): auth, payloads, collisions, errors.

What Ghost answers here is what real Ghost 5.x servers answer (reference/CMS-API.md and
tests/integration/test_ghost_integration.py, which runs the same paths against a real Ghost).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from syndicate.errors import ConfigError
from syndicate.models import Article, Image
from syndicate.publishers import ghost
from syndicate.publishers.base import (
    FetchedImage,
    ImageError,
    PartnerDown,
    PartnerEdited,
    PublishContext,
    PublishError,
    UnknownOutcome,
)

from .fakes import FakeMedia

SITE = "https://mag.example"
API = SITE + "/ghost/api/admin"
KEY_ID = "5f0c0ffee0c0ffee0c0ffee0"
#: A canary: it must never show up in a message, a log line or a traceback.
SECRET = "c0ffee00" * 8
KEY_ENV = "SYNDICATE_TEST_GHOST_KEY"
MARKER = "syn-0123456789abcdef"
POST_ID = "6b072d4c9ac9804eb970231f"
IMAGE_URL = "https://cdn.example/network.jpg"
UPLOADED = SITE + "/content/images/2026/11/network.jpg"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def admin_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, f"{KEY_ID}:{SECRET}")
    return f"{KEY_ID}:{SECRET}"


@pytest.fixture()
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def make_config(**extra: Any) -> ghost.Config:
    raw = {"id": "mag", "name": "Partner Mag", "kind": "ghost", "url": SITE + "/", "status": "publish",
           "admin_api_key": {"env": KEY_ENV, "key": "partners.mag.admin_api_key"}, **extra}
    return ghost.Config.model_validate(raw)


class Harness:
    """A publisher with recorded sleeps and image fetches."""

    def __init__(self, config: ghost.Config | None = None) -> None:
        self.sleeps: list[float] = []
        self.fetched: list[str] = []
        self.media = FakeMedia()
        self.context = PublishContext(fetch_image=self.fetch_image, media=self.media, sleep=self.sleeps.append,
                                      max_retry_seconds=120)
        self.publisher = ghost.Publisher(config or make_config(), self.context)

    def fetch_image(self, url: str) -> FetchedImage:
        self.fetched.append(url)
        return FetchedImage(url=url, data=PNG, content_type="image/png", filename="network.png")


@pytest.fixture()
def h() -> Harness:
    return Harness()


def article(**changes: Any) -> Article:
    base: dict[str, Any] = dict(
        partner="mag", source="easierinc", guid="https://www.easierinc.com/?p=2087",
        title="Radical Models of Organising", slug="radical-models-of-organising",
        html='<p><em>By Andy Brogan and originally published on <a href="https://www.easierinc.com/x/">'
             "easierinc.com</a></em></p>\n<p>Body</p>\n",
        excerpt="word " * 100, canonical_url="https://www.easierinc.com/radical-models-of-organising/",
        tags=("Next Stage Radicals", "Self-management"), status="publish",
        featured_image=Image(url=IMAGE_URL, alt="A network of connected points", caption=None,
                             credit="Image by Gerd Altmann from Pixabay",
                             credit_url="https://pixabay.com/users/geralt-9301/",
                             note="Featured Image/graphic link added by Enlivening Edge Magazine."),
        source_url="https://www.easierinc.com/radical-models-of-organising/")
    base.update(changes)
    return Article(**base)


def post(**changes: Any) -> dict[str, Any]:
    """A post as Ghost's Admin API returns it (with ``formats=html``)."""
    base: dict[str, Any] = {
        "id": POST_ID, "uuid": "0159963b-bcaa-4a87-a3c5-4bc5218edf71", "title": "Radical Models of Organising",
        "slug": "radical-models-of-organising", "html": "<p><em>By Andy Brogan</em></p><p>Body</p>",
        "status": "published", "url": SITE + "/radical-models-of-organising/",
        "updated_at": "2026-11-25T18:47:40.000Z", "created_at": "2026-11-25T18:47:40.000Z",
        "feature_image": UPLOADED, "feature_image_alt": "A network of connected points",
        "feature_image_caption": ("Featured Image/graphic link added by Enlivening Edge Magazine. "
                                  '<a href="https://pixabay.com/users/geralt-9301/">'
                                  "Image by Gerd Altmann from Pixabay</a>"),
        "canonical_url": "https://www.easierinc.com/radical-models-of-organising/",
        "tags": [{"name": n, "slug": n.lower()} for n in ("Next Stage Radicals", "Self-management", "#syndicated",
                                                           f"#{MARKER}")],
    }
    base.update(changes)
    return base


def body(request: Any) -> dict[str, Any]:
    return json.loads(request.body)


def query(request: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


# ------------------------------------------------------------------------------------------------
# auth


def test_jwt_is_minted_from_the_admin_key_and_sent_with_accept_version(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", json={"posts": [post()], "meta": {"pagination": {"next": None}}})
    h.publisher.refresh([POST_ID])
    request = rsps.calls[0].request
    scheme, token = request.headers["Authorization"].split(" ")
    assert scheme == "Ghost"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["kid"] == KEY_ID
    payload = jwt.decode(token, bytes.fromhex(SECRET), algorithms=["HS256"], audience="/admin/")
    assert payload["aud"] == "/admin/"
    assert payload["exp"] - payload["iat"] == 300
    assert request.headers["Accept-Version"] == "v5.0"
    assert request.url.startswith(API + "/posts/")


def test_the_token_is_reused_for_four_minutes_then_renewed(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", json={"posts": [post()]})
    now = [1000.0]
    h.publisher._clock = lambda: now[0]
    h.publisher.refresh([POST_ID])
    now[0] += 200
    h.publisher.refresh([POST_ID])
    now[0] += 45  # 245 s after minting: older than 4 minutes
    h.publisher.refresh([POST_ID])
    tokens = [c.request.headers["Authorization"] for c in rsps.calls]
    assert tokens[0] == tokens[1]
    # a new token (iat may fall in the same second: compare the minting, not the text)
    assert h.publisher._token is not None and h.publisher._token[1] == now[0]


def test_api_version_is_configurable(rsps: Any) -> None:
    rsps.get(f"{API}/posts/", json={"posts": [post()]})
    Harness(make_config(api_version="v6.0")).publisher.refresh([POST_ID])
    assert rsps.calls[0].request.headers["Accept-Version"] == "v6.0"


# ------------------------------------------------------------------------------------------------
# config


@pytest.mark.parametrize("bad", ["not-a-key", f"{KEY_ID}:{SECRET[:-1]}", f"{KEY_ID}:zz{SECRET[2:]}",
                                 "0123456789abcdef0123456789"])
def test_a_malformed_key_is_a_config_error_naming_the_key_not_the_value(
        monkeypatch: pytest.MonkeyPatch, rsps: Any, bad: str) -> None:
    monkeypatch.setenv(KEY_ENV, bad)
    with pytest.raises(ConfigError) as info:
        Harness().publisher.refresh([POST_ID])
    message = str(info.value)
    assert message.startswith("partners.mag.admin_api_key: not a Ghost Admin API key")
    assert bad not in message and SECRET not in message
    assert len(rsps.calls) == 0
    if bad == "0123456789abcdef0123456789":
        assert "Content API key" in message


def test_config_validates_url_and_refuses_a_literal_key() -> None:
    from syndicate.config import parse_config

    base = {"sources": {}, "partners": {"mag": {"name": "Mag", "kind": "ghost", "url": "ftp://mag.example",
                                                 "admin_api_key": f"{KEY_ID}:{SECRET}"}}}
    with pytest.raises(ConfigError) as info:
        parse_config(base, __import__("pathlib").Path("syndicate.toml"))
    assert "partners.mag.admin_api_key: a literal secret is not allowed" in str(info.value)
    assert SECRET not in str(info.value)
    base["partners"]["mag"]["admin_api_key"] = {"env": KEY_ENV}
    with pytest.raises(ConfigError) as info:
        parse_config(base, __import__("pathlib").Path("syndicate.toml"))
    assert "partners.mag.url: must be an http:// or https:// URL" in str(info.value)
    base["partners"]["mag"]["url"] = "https://mag.example/"
    config = parse_config(base, __import__("pathlib").Path("syndicate.toml"))
    partner = config.partners["mag"]
    assert isinstance(partner, ghost.Config) and partner.url == SITE and partner.api_version == "v5.0"
    assert partner.status == "draft"


def test_preview_needs_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    publisher = Harness().publisher  # no key read yet
    assert publisher.prepare_html("<p>x</p>") == "<p>x</p>"


# ------------------------------------------------------------------------------------------------
# create


def test_create_sends_html_tags_canonical_url_excerpt_and_the_credited_image(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/images/upload/", status=201, json={"images": [{"url": UPLOADED, "ref": IMAGE_URL}]})
    created = post()
    rsps.post(f"{API}/posts/", status=201, json={"posts": [created]})
    copy = h.publisher.create(article(), MARKER)

    upload, create = rsps.calls[0].request, rsps.calls[1].request
    assert b'name="purpose"' in upload.body and b"\r\n\r\nimage\r\n" in upload.body
    assert b'name="ref"' in upload.body and IMAGE_URL.encode() in upload.body
    assert b'filename="network.png"' in upload.body and PNG in upload.body

    assert query(create) == {"source": ["html"], "formats": ["html"]}
    sent = body(create)["posts"][0]
    assert sent["title"] == "Radical Models of Organising"
    assert sent["html"] == article().html  # as rendered: no kg-card wrapper
    assert "kg-card" not in sent["html"]
    assert sent["slug"] == "radical-models-of-organising"
    assert sent["status"] == "published"
    assert sent["canonical_url"] == "https://www.easierinc.com/radical-models-of-organising/"
    assert 0 < len(sent["custom_excerpt"]) <= 300
    assert [t["name"] for t in sent["tags"]] == ["Next Stage Radicals", "Self-management", "#syndicated",
                                                 f"#{MARKER}"]
    assert sent["feature_image"] == UPLOADED
    assert sent["feature_image_alt"] == "A network of connected points"
    assert sent["feature_image_caption"] == (
        'Featured Image/graphic link added by Enlivening Edge Magazine. '
        '<a href="https://pixabay.com/users/geralt-9301/">Image by Gerd Altmann from Pixabay</a>')
    assert "newsletter" not in create.url

    assert copy.remote_id == POST_ID and copy.url == SITE + "/radical-models-of-organising/"
    assert copy.slug == "radical-models-of-organising" and copy.status == "published"
    assert copy.version == "2026-11-25T18:47:40.000Z"
    assert copy.fields_hash == ghost.fields_hash(created)
    assert h.media.get(IMAGE_URL) == (UPLOADED, UPLOADED)


def test_a_draft_partner_creates_drafts_and_tags_are_not_doubled(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/posts/", status=201, json={"posts": [post(status="draft")]})
    h.publisher.create(article(status="draft", featured_image=None, tags=("Leadership", "leadership", "#syndicated")),
                       MARKER)
    sent = body(rsps.calls[0].request)["posts"][0]
    assert sent["status"] == "draft"
    assert [t["name"] for t in sent["tags"]] == ["Leadership", "#syndicated", f"#{MARKER}"]
    assert sent["feature_image"] is None and sent["feature_image_caption"] is None


def test_an_uploaded_image_is_reused(rsps: Any, h: Harness) -> None:
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    rsps.post(f"{API}/posts/", status=201, json={"posts": [post()]})
    h.publisher.create(article(), MARKER)
    assert h.fetched == []
    assert len(rsps.calls) == 1 and body(rsps.calls[0].request)["posts"][0]["feature_image"] == UPLOADED


def test_an_image_that_cannot_be_fetched_fails_the_delivery(rsps: Any, h: Harness) -> None:
    def refuse(url: str) -> FetchedImage:
        raise ImageError(f"featured image {url} could not be fetched: HTTP 404")

    h.context.fetch_image = refuse
    with pytest.raises(ImageError, match="could not be fetched"):
        h.publisher.create(article(), MARKER)
    assert len(rsps.calls) == 0  # no post without its image


def test_a_lost_image_upload_answer_is_an_image_error_not_a_lost_post(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/images/upload/", body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(ImageError) as info:
        h.publisher.create(article(), MARKER)
    assert not isinstance(info.value, UnknownOutcome)
    assert h.media.get(IMAGE_URL) is None


def test_a_refused_key_during_the_upload_stops_the_partner(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/images/upload/", status=401, json={"errors": [{"code": "INVALID_JWT"}]})
    with pytest.raises(PartnerDown, match="the Admin API key was refused"):
        h.publisher.create(article(), MARKER)


def test_an_image_type_ghost_refuses_says_so(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/images/upload/", status=415, json={"errors": [{
        "message": "Please select a valid image.", "type": "UnsupportedMediaTypeError", "code": None}]})
    with pytest.raises(ImageError, match=r"mag: Ghost refused the file type \(HTTP 415: Please select a valid image"):
        h.publisher.create(article(), MARKER)


def test_caption_html_escapes_and_joins_caption_and_credit() -> None:
    image = Image(url=IMAGE_URL, caption="Tom & Jerry <3", credit="Jo <Photo>", credit_url="https://x.example/?a=1&b=2",
                  note="Added by us.")
    assert ghost.caption_html(image) == ('Tom &amp; Jerry &lt;3. Added by us. '
                                         '<a href="https://x.example/?a=1&amp;b=2">Jo &lt;Photo&gt;</a>')
    assert ghost.caption_html(Image(url=IMAGE_URL, credit="Photo: Easier Inc.")) == "Photo: Easier Inc."
    assert ghost.caption_html(Image(url=IMAGE_URL, credit="X", credit_url="javascript:alert(1)")) == "X"
    assert ghost.caption_html(Image(url=IMAGE_URL)) is None


def test_the_excerpt_fits_ghosts_limit_counted_as_javascript_counts() -> None:
    assert ghost.fit_excerpt("short") == "short"
    assert ghost.fit_excerpt("   ") is None
    long = ghost.fit_excerpt("😀" * 200)  # 400 UTF-16 code units
    assert long is not None and len(long.encode("utf-16-le")) // 2 <= 300 and long.endswith("…")


# ------------------------------------------------------------------------------------------------
# update


def test_update_sends_the_updated_at_it_read_and_the_full_tag_list(rsps: Any, h: Harness) -> None:
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    current = post(status="draft", updated_at="2026-11-25T19:00:00.000Z")  # a status change is no edit
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [current]})
    answer = post(title="New title", updated_at="2026-11-25T19:00:05.000Z")
    rsps.put(f"{API}/posts/{POST_ID}/", json={"posts": [answer]})
    copy = h.publisher.update(POST_ID, article(title="New title"), MARKER, ghost.fields_hash(post()))

    read, put = rsps.calls[0].request, rsps.calls[1].request
    assert query(read) == {"formats": ["html"]}
    assert query(put) == {"source": ["html"], "formats": ["html"]}
    sent = body(put)["posts"][0]
    assert sent["updated_at"] == "2026-11-25T19:00:00.000Z"
    assert sent["title"] == "New title"
    assert [t["name"] for t in sent["tags"]] == ["Next Stage Radicals", "Self-management", "#syndicated",
                                                 f"#{MARKER}"]
    assert "status" not in sent and "slug" not in sent  # the partner's to decide once the copy exists
    assert copy.version == "2026-11-25T19:00:05.000Z"


def test_update_is_held_when_the_partner_edited_a_field_we_push(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post(title="Edited by the magazine")]})
    with pytest.raises(PartnerEdited, match="mag: .*edited since our last push"):
        h.publisher.update(POST_ID, article(), MARKER, ghost.fields_hash(post()))
    assert len(rsps.calls) == 1 and h.fetched == []  # nothing written, nothing uploaded


@pytest.mark.parametrize("edit", [{"html": "<p>changed</p>"}, {"feature_image": None},
                                  {"feature_image_alt": "other"}, {"feature_image_caption": "other"},
                                  {"tags": [{"name": "#syndicated"}, {"name": f"#{MARKER}"}]}])
def test_every_pushed_field_counts_as_an_edit(edit: dict[str, Any]) -> None:
    assert ghost.fields_hash(post(**edit)) != ghost.fields_hash(post())


@pytest.mark.parametrize("edit", ["<p>By Andy Brogan</p><p>Body, edited</p>",               # text
                                  '<p>By Andy Brogan</p><p><a href="https://x.example/">Body</a></p>',  # a link
                                  "<p>By Andy Brogan</p><h2>Body</h2>",                     # a block
                                  '<p>By Andy Brogan</p><p>Body</p><img src="https://x.example/i.png">'])
def test_edits_of_the_body_that_a_reader_sees_count(edit: str) -> None:
    assert ghost.fields_hash(post(html=edit)) != ghost.fields_hash(post(html="<p>By Andy Brogan</p><p>Body</p>"))


def test_a_re_render_of_the_same_content_is_not_an_edit() -> None:
    """Ghost's renderer (or its editor re-saving on publish) may change markup but not what a reader gets."""
    ours = ('<p><em>By Jo and originally published on <a href="https://o.example/">o.example</a></em></p>'
            '<h2>Context</h2><figure><img src="https://o.example/i.jpg" alt="A"></figure>')
    ghosts = ('<p><em>By Jo and originally published on </em><a href="https://o.example/"><em>o.example</em></a></p>'
              '<h2 id="context">Context</h2><figure class="kg-card kg-image-card"><img src="https://o.example/i.jpg" '
              'class="kg-image" alt="A" loading="lazy" width="800" height="533"></figure>')
    assert ghost.html_fingerprint(ours) == ghost.html_fingerprint(ghosts)
    assert ghost.fields_hash(post(html=ours)) == ghost.fields_hash(post(html=ghosts))


def test_status_slug_dates_and_tag_order_are_not_edits() -> None:
    same = post(status="draft", slug="other", url=SITE + "/p/uuid/", updated_at="2030-01-01T00:00:00.000Z",
                tags=list(reversed(post()["tags"])), custom_excerpt="x")
    assert ghost.fields_hash(same) == ghost.fields_hash(post())


def test_overwrite_pushes_over_the_partners_edit(rsps: Any, h: Harness) -> None:
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post(title="Edited by the magazine")]})
    rsps.put(f"{API}/posts/{POST_ID}/", json={"posts": [post()]})
    h.publisher.update(POST_ID, article(), MARKER, ghost.fields_hash(post()), force=True)
    assert body(rsps.calls[1].request)["posts"][0]["title"] == "Radical Models of Organising"


COLLISION = {"errors": [{"message": "Saving failed! Someone else is editing this post.", "type": "UpdateCollisionError",
                         "code": "UPDATE_COLLISION", "details": {"changedFields": ["title"]}}]}


def test_a_collision_with_no_edit_of_ours_is_retried_with_the_fresh_updated_at(rsps: Any, h: Harness) -> None:
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post(updated_at="2026-11-25T19:00:00.000Z")]})
    rsps.put(f"{API}/posts/{POST_ID}/", status=409, json=COLLISION)
    # meanwhile an editor published it: only the status changed
    published = post(status="published", updated_at="2026-11-25T19:00:03.000Z")
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [published]})
    rsps.put(f"{API}/posts/{POST_ID}/", json={"posts": [post(updated_at="2026-11-25T19:00:04.000Z")]})
    copy = h.publisher.update(POST_ID, article(), MARKER, ghost.fields_hash(post()))
    puts = [c.request for c in rsps.calls if c.request.method == "PUT"]
    assert [body(p)["posts"][0]["updated_at"] for p in puts] == ["2026-11-25T19:00:00.000Z", "2026-11-25T19:00:03.000Z"]
    assert copy.version == "2026-11-25T19:00:04.000Z"


def test_a_collision_with_an_edit_is_held(rsps: Any, h: Harness) -> None:
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post()]})
    rsps.put(f"{API}/posts/{POST_ID}/", status=409, json=COLLISION)
    edited = post(title="Edited meanwhile", updated_at="2026-11-25T19:00:03.000Z")
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [edited]})
    with pytest.raises(PartnerEdited):
        h.publisher.update(POST_ID, article(), MARKER, ghost.fields_hash(post()))
    assert [c.request.method for c in rsps.calls] == ["GET", "PUT", "GET"]


def test_an_update_of_a_deleted_copy_fails_without_writing(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/{POST_ID}/", status=404, json={"errors": [{"message": "Post not found.",
                                                                       "type": "NotFoundError"}]})
    with pytest.raises(PublishError, match="no longer exists"):
        h.publisher.update(POST_ID, article(), MARKER, ghost.fields_hash(post()))


def test_a_lost_update_answer_is_settled_by_reading_the_post_back(rsps: Any, h: Harness) -> None:
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post(updated_at="2026-11-25T19:00:00.000Z")]})
    rsps.put(f"{API}/posts/{POST_ID}/", body=requests.exceptions.ReadTimeout("timed out"))
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post(title="New", updated_at="2026-11-25T19:00:01.000Z")]})
    copy = h.publisher.update(POST_ID, article(title="New"), MARKER, ghost.fields_hash(post()))
    assert copy.fields_hash == ghost.fields_hash(post(title="New"))  # ours landed: no false "held" next run


def test_a_lost_update_that_did_not_land_stays_unknown(rsps: Any, h: Harness) -> None:
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post()]})
    rsps.put(f"{API}/posts/{POST_ID}/", body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(UnknownOutcome):
        h.publisher.update(POST_ID, article(), MARKER, ghost.fields_hash(post()))


# ------------------------------------------------------------------------------------------------
# errors and retries


def test_a_refused_key_names_the_partner_and_never_shows_the_secret(rsps: Any, h: Harness,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.post(f"{API}/posts/", status=401, json={"errors": [{
        "message": "Invalid token: invalid signature", "type": "UnauthorizedError", "code": "INVALID_JWT"}]})
    h.media.put(IMAGE_URL, UPLOADED, UPLOADED)
    with pytest.raises(PartnerDown) as info:
        h.publisher.create(article(), MARKER)
    message = str(info.value)
    assert message == ("mag: the Admin API key was refused (INVALID_JWT): "
                       "check admin_api_key (id:secret of a Custom Integration)")
    token = rsps.calls[0].request.headers["Authorization"].split(" ")[1]
    for text in (message, repr(info.value), caplog.text):
        assert SECRET not in text and token not in text
    assert "eyJ" not in caplog.text


def test_an_unknown_key_id_is_refused_the_same_way(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", status=401, json={"errors": [{
        "message": "Unknown Admin API Key", "type": "UnauthorizedError", "code": "UNKNOWN_ADMIN_API_KEY"}]})
    with pytest.raises(PartnerDown, match=r"mag: the Admin API key was refused \(UNKNOWN_ADMIN_API_KEY\)"):
        h.publisher.refresh([POST_ID])


def test_a_validation_error_shows_ghosts_details(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/posts/", status=422, json={"errors": [{
        "message": "Validation error, cannot save post.", "context": "Validation failed for custom_excerpt.",
        "type": "ValidationError", "details": [{"keyword": "maxLength", "dataPath": ".posts[0].custom_excerpt",
                                                "message": "should NOT be longer than 300 characters"}]}]})
    with pytest.raises(PublishError) as info:
        h.publisher.create(article(featured_image=None), MARKER)
    assert str(info.value) == (
        "mag: Ghost rejected the post (HTTP 422): Validation error, cannot save post. — Validation failed for "
        "custom_excerpt. (posts[0].custom_excerpt should NOT be longer than 300 characters)")
    assert info.value.transient is False


def test_503_is_waited_out_as_retry_after_says(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/posts/", status=503, headers={"Retry-After": "7"})
    rsps.post(f"{API}/posts/", status=201, json={"posts": [post()]})
    copy = h.publisher.create(article(featured_image=None), MARKER)
    assert h.sleeps == [7.0]
    assert copy.remote_id == POST_ID and len(rsps.calls) == 2


def test_a_timeout_on_create_is_an_unknown_outcome(rsps: Any, h: Harness) -> None:
    rsps.post(f"{API}/posts/", body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(UnknownOutcome, match=r"mag: no answer within 10 s to POST "
                                              r"https://mag.example/ghost/api/admin/posts/$"):
        h.publisher.create(article(featured_image=None), MARKER)
    assert len(rsps.calls) == 1  # never re-sent blindly


def test_no_ghost_at_the_url_is_said_plainly(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", body="<!DOCTYPE html><html>a blog</html>", content_type="text/html")
    with pytest.raises(PublishError, match=r"mag: GET /posts/ did not answer JSON: no Ghost Admin API at "
                                           r"https://mag.example\? \(check url\)"):
        h.publisher.refresh([POST_ID])


@pytest.mark.parametrize(("status", "expected"), [
    (404, "mag: no Ghost Admin API at https://mag.example (HTTP 404 for https://mag.example/ghost/api/admin/…): "
          "check url"),
    (413, "mag: Ghost refused the upload as too large (HTTP 413)"),
    (403, "mag: Ghost refused access (HTTP 403: Authorization failed)"),
])
def test_other_refusals_in_plain_words(rsps: Any, h: Harness, status: int, expected: str) -> None:
    payload = {"errors": [{"message": "Authorization failed"}]} if status == 403 else None
    rsps.post(f"{API}/posts/", status=status, json=payload) if payload else rsps.post(f"{API}/posts/", status=status)
    with pytest.raises(PublishError) as info:
        h.publisher.create(article(featured_image=None), MARKER)
    assert str(info.value).startswith(expected)


def test_a_404_that_is_not_ghosts_is_not_a_missing_post(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/{POST_ID}/", status=404, body="<html>Not Found</html>", content_type="text/html")
    with pytest.raises(PublishError, match=r"mag: no Ghost Admin API at https://mag.example"):
        h.publisher.withdraw(POST_ID)  # must not be taken for "already gone"


def test_rate_limiting_beyond_the_runs_patience_is_said_plainly(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", status=429, headers={"Retry-After": "1"})
    with pytest.raises(PublishError, match=r"mag: Ghost asked us to slow down \(HTTP 429\)") as info:
        h.publisher.refresh([POST_ID])
    assert info.value.transient is True
    assert h.sleeps == [1.0] * 5


# ------------------------------------------------------------------------------------------------
# reading back and finding


def test_refresh_reads_copies_in_batches_drafts_included_and_reports_the_missing(rsps: Any, h: Harness) -> None:
    other = "6b072d4c9ac9804eb9702399"
    rsps.get(f"{API}/posts/", json={"posts": [post(status="draft", url=SITE + "/p/uuid/")],
                                    "meta": {"pagination": {"page": 1, "next": None}}})
    rsps.get(f"{API}/posts/{other}/", status=404, json={"errors": [{"message": "Post not found.",
                                                                     "type": "NotFoundError"}]})
    states = h.publisher.refresh([POST_ID, other, "not-a-ghost-id"])
    q = query(rsps.calls[0].request)
    assert q["filter"] == [f"id:[{POST_ID},{other}]"]
    assert q["formats"] == ["html"] and q["limit"] == ["100"]
    assert "status" not in q["filter"][0]  # the Admin API lists every status
    copy = states[POST_ID]
    assert copy is not None and copy.status == "draft" and copy.url == SITE + "/p/uuid/"
    assert states[other] is None
    assert "not-a-ghost-id" not in states  # unknown, never "deleted"


def test_refresh_asks_again_for_a_copy_missing_from_the_list(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", json={"posts": []})
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post()]})
    copy = h.publisher.refresh([POST_ID])[POST_ID]
    assert copy is not None and copy.remote_id == POST_ID  # not taken for deleted


def test_refresh_that_cannot_read_stops_the_partner(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(PartnerDown, match="mag: no answer within 10 s to GET"):
        h.publisher.refresh([POST_ID])
    assert len(rsps.calls) == 4 and len(h.sleeps) == 3  # reads are retried with backoff first


def test_refresh_follows_pages(rsps: Any, h: Harness) -> None:
    second = "6b072d4c9ac9804eb9702399"
    rsps.get(f"{API}/posts/", json={"posts": [post()], "meta": {"pagination": {"page": 1, "next": 2}}})
    rsps.get(f"{API}/posts/", json={"posts": [post(id=second)], "meta": {"pagination": {"page": 2, "next": None}}})
    states = h.publisher.refresh([POST_ID, second])
    assert states[POST_ID] is not None and states[second] is not None
    assert query(rsps.calls[1].request)["page"] == ["2"]


def test_find_by_marker_tag(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/", json={"posts": [post(status="draft")], "meta": {"pagination": {"next": None}}})
    copy = h.publisher.find(article(), MARKER)
    assert copy is not None and copy.remote_id == POST_ID
    assert query(rsps.calls[0].request)["filter"] == [f"tag:hash-{MARKER}"]


def test_find_adopts_only_a_post_carrying_our_marker(rsps: Any, h: Harness) -> None:
    theirs = post(tags=[{"name": "Self-management"}])
    ours = post(id="6b072d4c9ac9804eb9702399", slug="radical-models-of-organising-2")
    rsps.get(f"{API}/posts/", json={"posts": []})                                   # by marker tag: not indexed yet
    rsps.get(f"{API}/posts/slug/radical-models-of-organising/", json={"posts": [theirs]})
    rsps.get(f"{API}/posts/slug/radical-models-of-organising-2/", json={"posts": [ours]})
    copy = h.publisher.find(article(), MARKER)
    assert copy is not None and copy.slug == "radical-models-of-organising-2"


def test_find_gives_up_when_nothing_of_ours_exists(rsps: Any, h: Harness) -> None:
    theirs = post(tags=[{"name": "Self-management"}])
    rsps.get(f"{API}/posts/", json={"posts": []})
    rsps.get(f"{API}/posts/slug/radical-models-of-organising/", json={"posts": [theirs]})
    rsps.get(f"{API}/posts/slug/radical-models-of-organising-2/", status=404,
             json={"errors": [{"message": "Post not found.", "type": "NotFoundError"}]})
    rsps.get(f"{API}/posts/", json={"posts": [theirs]})                             # by canonical URL
    assert h.publisher.find(article(), MARKER) is None
    assert query(rsps.calls[-1].request)["filter"] == [
        "canonical_url:'https://www.easierinc.com/radical-models-of-organising/'"]


# ------------------------------------------------------------------------------------------------
# withdraw and partners test


def test_withdraw_makes_the_copy_a_draft(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/posts/{POST_ID}/", json={"posts": [post()]})
    rsps.put(f"{API}/posts/{POST_ID}/", json={"posts": [post(status="draft", url=SITE + "/p/uuid/")]})
    copy = h.publisher.withdraw(POST_ID)
    assert body(rsps.calls[1].request) == {"posts": [{"status": "draft", "updated_at": post()["updated_at"]}]}
    assert copy is not None and copy.status == "draft"


def test_withdraw_with_delete_deletes(rsps: Any, h: Harness) -> None:
    rsps.delete(f"{API}/posts/{POST_ID}/", status=204)
    assert h.publisher.withdraw(POST_ID, delete=True) is None


def test_partners_test_checks_key_site_and_access_and_changes_nothing(rsps: Any, h: Harness) -> None:
    rsps.get(f"{API}/site/", json={"site": {"title": "Partner Mag", "version": "5.130"}})
    rsps.get(f"{API}/posts/", json={"posts": []})
    checks = h.publisher.test()
    assert [(c.ok, c.what) for c in checks] == [(True, "Admin API key"), (True, "Ghost reachable"),
                                                (True, "Ghost version"), (True, "Admin API key accepted")]
    assert checks[1].detail == "Partner Mag" and checks[2].detail == "5.130"
    assert {c.request.method for c in rsps.calls} == {"GET"}
    assert all(c.request.headers["Accept-Version"] == "v5.0" for c in rsps.calls)


@given(version=st.from_regex(r"\A[0-9]{1,2}(\.[0-9]{1,3}){0,3}\Z"))
def test_the_ghost_version_line_shows_a_reported_version(version: str) -> None:
    assert ghost.version_check({"version": version}).detail == version


@given(site=st.one_of(st.none(), st.dictionaries(st.just("version"), st.one_of(st.none(), st.integers(), st.text()))))
def test_the_ghost_version_line_never_prints_anything_else(site: Any) -> None:
    check = ghost.version_check(site)
    assert check.ok
    assert check.detail == "not reported by the site endpoint" or re.fullmatch(r"[0-9.]+", check.detail)


def test_partners_test_reports_a_missing_key(monkeypatch: pytest.MonkeyPatch, rsps: Any, h: Harness) -> None:
    monkeypatch.delenv(KEY_ENV)
    checks = h.publisher.test()
    assert [(c.ok, c.what) for c in checks] == [(False, "Admin API key")]
    assert f"environment variable {KEY_ENV} is not set" in checks[0].detail
