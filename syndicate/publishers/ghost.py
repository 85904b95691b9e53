"""The ``ghost`` partner: Ghost's Admin API, authenticated with a Custom Integration's Admin API key.

* Auth: a short-lived HS256 JWT signed with the key's hex secret (``kid`` = the key's id, ``aud`` =
  ``/admin/``, 5 minutes), minted afresh when the current one is 4 minutes old.
* Posts go in with ``?source=html``: Ghost converts the HTML to its own format (Lexical). The body is
  sent as rendered; it is never wrapped in a ``kg-card`` HTML comment, which Ghost would keep raw
  (SECURITY-RESEARCH B6).
* Our copies carry the internal tag ``#syndicated`` and a per-copy marker tag ``#<marker>`` (slug
  ``hash-<marker>``), so a copy whose creation answer was lost is found again, and only our own
  copies are ever adopted.
* Edits by the partner are detected by hashing the fields we push as Ghost holds them (title, the HTML
  Ghost renders — its text, blocks, links and images —, feature image, its alt and caption, tag names);
  updates also carry the ``updated_at`` just read, so Ghost itself refuses a write that raced an
  editor (409 ``UPDATE_COLLISION``). Ghost's ``updated_at`` counts whole seconds: a save in the same
  second as our read is not a collision for Ghost, which is why the hash is checked right before.
* Updates never send ``status`` or ``slug``: whether a copy is live, and under which slug, is the
  partner's call once the copy exists (``withdraw`` is the one exception).
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import re
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import jwt
from pydantic import field_validator
from selectolax.lexbor import LexborHTMLParser

from ..config import PartnerConfig, Secret, SiteURL
from ..errors import ConfigError
from ..models import Article, Image, sha256
from ..redact import redact
from .base import (
    Check,
    ImageError,
    PartnerDown,
    PartnerEdited,
    PublishContext,
    PublisherDefaults,
    PublishError,
    RemoteCopy,
    UnknownOutcome,
    capped_tags,
)
from .http import CMSClient, preload

if TYPE_CHECKING:
    import requests  # the CMS client's (loaded with it, when a partner is pushed to)

#: Tokens live 5 minutes (Ghost refuses older ones); a new one is minted after 4.
TOKEN_LIFETIME = 300
TOKEN_RENEW_AFTER = 240
#: Ghost's limit on ``custom_excerpt``, counted as JavaScript counts (UTF-16 code units).
EXCERPT_LIMIT = 300
SYNDICATED_TAG = "#syndicated"
#: Ids per ``filter=id:[…]`` request when reading copies back, and posts per page.
BATCH = 50
PAGE_SIZE = 100
#: How far ``find`` walks a slug family (``slug``, ``slug-2``, …) before giving up.
SLUG_FAMILY = 10
KEY_HELP = "check admin_api_key (id:secret of a Custom Integration)"

_KEY_PATTERN = re.compile(r"^([0-9A-Za-z]+):([0-9a-fA-F]+)$")
_GHOST_ID = re.compile(r"^[0-9a-f]{24}$")
#: Markup a re-render may nest differently without changing what a reader gets (see html_fingerprint).
_INLINE_TAGS = frozenset({"em", "i", "strong", "b", "u", "s", "span", "mark", "small", "sub", "sup", "font"})
_MEANINGFUL_ATTRIBUTES = ("href", "src", "alt")


class Config(PartnerConfig):
    """``[partners.ID]`` with ``kind = "ghost"``."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("admin_api_key",)

    kind: str = "ghost"
    url: SiteURL
    admin_api_key: Secret
    #: Sent as ``Accept-Version``: the Admin API version our requests are written for.
    api_version: str = "v5.0"

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d+(\.\d+)?", value):
            raise ValueError('must look like "v5.0"')
        return value


def parse_admin_key(value: str, key: str) -> tuple[str, bytes]:
    """(id, secret bytes) of an Admin API key ``id:secret``; ConfigError naming ``key``, never the value."""
    match = _KEY_PATTERN.match(value.strip())
    if match is None or len(match.group(2)) % 2:
        hint = ""
        if ":" not in value and re.fullmatch(r"[0-9a-fA-F]{26}", value.strip()):
            hint = " (this looks like a Content API key; syndicate needs the Admin API key)"
        raise ConfigError(
            f"{key}: not a Ghost Admin API key{hint}: expected id:secret with a hexadecimal secret, as shown "
            f"for a Custom Integration in Ghost Admin → Settings → Integrations")
    return match.group(1), bytes.fromhex(match.group(2))


def admin_token(key_id: str, secret: bytes, now: float | None = None) -> str:
    """A Ghost Admin API JWT: HS256, ``kid`` = key id, ``aud`` = ``/admin/``, valid 5 minutes."""
    iat = int(now if now is not None else time.time())
    return jwt.encode({"iat": iat, "exp": iat + TOKEN_LIFETIME, "aud": "/admin/"}, secret,
                      algorithm="HS256", headers={"kid": key_id})


def caption_html(image: Image) -> str | None:
    """``feature_image_caption``: the image's own caption, then the credit line, as escaped HTML."""
    e = html_lib.escape
    parts: list[str] = []
    if image.caption:
        caption = image.caption.strip()
        parts.append(e(caption) + ("" if caption[-1:] in ".!?…:" else "."))
    if image.note:
        parts.append(e(image.note.strip()))
    if image.credit:
        credit = e(image.credit.strip())
        url = image.credit_url or ""
        parts.append(f'<a href="{e(url)}">{credit}</a>' if url.startswith(("http://", "https://")) else credit)
    return " ".join(parts) or None


def fit_excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str | None:
    """The excerpt cut to Ghost's limit, which counts UTF-16 code units (an emoji counts twice)."""
    text = " ".join((text or "").split())
    if not text:
        return None
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        width = len(char.encode("utf-16-le")) // 2
        if used + width > limit - 1:
            break
        out.append(char)
        used += width
    return "".join(out).rstrip() + "…"


def html_fingerprint(html: str | None) -> tuple[str, list[list[str]]]:
    """What a reader gets from Ghost's HTML: its text, and its blocks, links and images in order.

    Ghost renders the HTML from its own stored format, and its Admin editor re-saves that format when
    an editor merely publishes a draft: markup that does not change what the reader gets (classes,
    heading ids, ``loading``, how emphasis nests around a link) is left out, so that only a real edit
    changes the hash, not a re-render. Inline emphasis alone is therefore not counted as an edit."""
    if not html:
        return "", []
    body = LexborHTMLParser("<body>" + html).body
    if body is None:
        return "", []
    text = " ".join(body.text(deep=True, separator="").split())
    shape: list[list[str]] = []
    for node in body.traverse(include_text=False):
        if node.tag in _INLINE_TAGS:
            continue
        attrs = node.attributes
        shape.append([node.tag or "", *(f"{k}={attrs[k] or ''}" for k in _MEANINGFUL_ATTRIBUTES if k in attrs)])
    return text, shape


def fields_hash(post: dict[str, Any]) -> str:
    """A hash of the fields we push, as Ghost holds them now; status, slug and dates are not among them."""
    tags = sorted(t.get("name", "") if isinstance(t, dict) else str(t) for t in post.get("tags") or [])
    return sha256(post.get("title"), html_fingerprint(post.get("html")), post.get("feature_image"),
                  post.get("feature_image_alt"), html_fingerprint(post.get("feature_image_caption")), tags)


def _nql_string(value: str) -> str:
    """A value quoted for Ghost's filter language (NQL)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ghost_errors(response: requests.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _details_text(details: Any) -> str:
    """Ghost's validation ``details`` (a list of JSON-schema errors, or text) in plain words."""
    if not details:
        return ""
    if isinstance(details, list):
        lines = []
        for d in details:
            if isinstance(d, dict):
                where = str(d.get("dataPath") or d.get("property") or "").lstrip(".")
                what = d.get("message") or ""
                lines.append(f"{where} {what}".strip())
            else:
                lines.append(str(d))
        return "; ".join(line for line in lines if line)
    if isinstance(details, dict):
        return "; ".join(f"{k}: {v}" for k, v in details.items())
    return str(details)


class Publisher(PublisherDefaults):
    """Creates, updates, finds and withdraws copies on one Ghost site."""

    preload = staticmethod(preload)  # requests, while the feeds are being parsed

    def __init__(self, config: Config, context: PublishContext) -> None:
        self.config = config
        self.context = context
        self.admin_url = f"{config.url}/ghost/api/admin"
        self.client = CMSClient(config.id, self.admin_url, context, self._auth_headers)
        self.client.session.headers.update({"Accept-Version": config.api_version,
                                            "Accept": "application/json"})
        self._key: tuple[str, bytes] | None = None
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._clock = time.monotonic  # the age of the current token (tests move it)

    # ------------------------------------------------------------------------------------------
    # auth and HTTP

    def _credentials(self) -> tuple[str, bytes]:
        """The key, read and checked on first use (``check`` and ``preview`` need no credentials)."""
        if self._key is None:
            secret = self.config.admin_api_key
            self._key = parse_admin_key(secret.reveal(), secret.key or f"partners.{self.config.id}.admin_api_key")
        return self._key

    def _auth_headers(self) -> dict[str, str]:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._token[1] >= TOKEN_RENEW_AFTER:
                key_id, secret = self._credentials()
                self._token = (admin_token(key_id, secret), now)
            return {"Authorization": f"Ghost {self._token[0]}"}

    def _request(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        response = self.client.request(method, path, expect=expect, describe=self._describe, **kwargs)
        if response.status_code == 204:
            return None
        if response.status_code == 404:
            if not _ghost_errors(response):  # not Ghost saying "no such post": something else answers here
                raise PublishError(redact(f"{self.config.id}: {self._describe(response)}"))
            return None
        try:
            return response.json()
        except ValueError:
            raise PublishError(redact(f"{self.config.id}: {method} {path.split('?')[0]} did not answer JSON: "
                                      f"no Ghost Admin API at {self.config.url}? (check url)")) from None

    def _describe(self, response: requests.Response) -> str:
        """Ghost's error answer in plain words (CMSClient prefixes the partner's id and redacts)."""
        status = response.status_code
        errors = _ghost_errors(response)
        first = errors[0] if errors else {}
        code = str(first.get("code") or "")
        ghost_says = " — ".join(str(x) for x in dict.fromkeys((first.get("message"), first.get("context"))) if x)
        if code in ("INVALID_JWT", "UNKNOWN_ADMIN_API_KEY") or status == 401:
            return f"the Admin API key was refused ({code or f'HTTP {status}'}): {KEY_HELP}"
        if status == 403:
            return (f"Ghost refused access (HTTP 403{': ' + ghost_says if ghost_says else ''}); {KEY_HELP}")
        if status == 404 and not errors:
            return f"no Ghost Admin API at {self.config.url} (HTTP 404 for {self.admin_url}/…): check url"
        if status == 406:
            return (f"Ghost refused the request (HTTP 406{': ' + ghost_says if ghost_says else ''}); "
                    f"check url and api_version ({self.config.api_version})")
        if status == 413:
            return ("Ghost refused the upload as too large (HTTP 413): the image or the post is bigger than "
                    "the site accepts")
        if status == 415:
            return f"Ghost refused the file type (HTTP 415{': ' + ghost_says if ghost_says else ''})"
        if status == 429:
            return ("Ghost asked us to slow down (HTTP 429) for longer than this run waits; "
                    "it is tried again next run")
        if status >= 500:
            return (f"Ghost failed (HTTP {status}{': ' + ghost_says if ghost_says else ''}); "
                    f"it is tried again next run")
        if status in (400, 422):
            details = "; ".join(filter(None, (_details_text(e.get("details")) for e in errors)))
            what = "Ghost rejected the post" if status == 422 else "Ghost did not understand the request"
            return f"{what} (HTTP {status}): {ghost_says or 'no reason given'}" + (f" ({details})" if details else "")
        return f"HTTP {status} from Ghost" + (f": {ghost_says}" if ghost_says else "")

    # ------------------------------------------------------------------------------------------
    # reading

    def _copy(self, post: dict[str, Any]) -> RemoteCopy:
        return RemoteCopy(remote_id=post["id"], url=post.get("url"), slug=post.get("slug"),
                          status=post.get("status"), version=post.get("updated_at"), fields_hash=fields_hash(post))

    def _read(self, remote_id: str) -> dict[str, Any] | None:
        """The post with its rendered HTML (any status), or None when it does not exist."""
        if not _GHOST_ID.match(remote_id):
            return None
        body = self._request("GET", f"/posts/{remote_id}/?formats=html", expect=(200, 404))
        return body["posts"][0] if body else None

    def _browse(self, nql: str) -> list[dict[str, Any]]:
        """Every post matching an NQL filter (any status), with its HTML, page by page."""
        posts: list[dict[str, Any]] = []
        page: int | None = 1
        while page:
            body = self._request("GET", "/posts/", params={"filter": nql, "formats": "html",
                                                           "limit": PAGE_SIZE, "page": page})
            posts += body.get("posts", [])
            nxt = ((body.get("meta") or {}).get("pagination") or {}).get("next")
            page = int(nxt) if nxt and int(nxt) > page else None
        return posts

    def refresh(self, remote_ids: list[str]) -> dict[str, RemoteCopy | None]:
        """Read our copies back, drafts included; None for a copy that no longer exists.

        A copy taken for deleted is never recreated nor updated again, so one missing from the list
        is asked for on its own, and only Ghost's own "not found" counts. Without the copies' state
        the partner cannot be worked on: a failure here stops it for this run (PartnerDown)."""
        out: dict[str, RemoteCopy | None] = {}
        ids = [rid for rid in dict.fromkeys(remote_ids) if _GHOST_ID.match(rid)]
        try:
            for start in range(0, len(ids), BATCH):
                chunk = ids[start:start + BATCH]
                found: dict[str, RemoteCopy | None] = {p["id"]: self._copy(p) for p in self._browse(f"id:[{','.join(chunk)}]")}
                for rid in chunk:
                    if rid not in found:
                        post = self._read(rid)
                        found[rid] = self._copy(post) if post is not None else None
                    out[rid] = found[rid]
        except PartnerDown:
            raise
        except PublishError as exc:
            raise PartnerDown(str(exc)) from None
        return out  # an id that is no Ghost id is left out (unknown), never reported as deleted

    def find(self, article: Article, marker: str) -> RemoteCopy | None:
        """A copy we created whose answer we never got: by our marker tag, its slug family, its canonical URL.

        Only a post carrying our marker tag is ever adopted."""
        ours = self._marker_tag(marker)

        def is_ours(post: dict[str, Any] | None) -> bool:
            return post is not None and any(t.get("name") == ours for t in post.get("tags") or [])

        tagged = self._browse(f"tag:{_tag_slug(ours)}")
        if tagged:
            return self._copy(sorted(tagged, key=lambda p: p.get("created_at") or "")[0])
        for n in range(1, SLUG_FAMILY + 1):
            slug = article.slug if n == 1 else f"{article.slug}-{n}"
            body = self._request("GET", f"/posts/slug/{quote(slug, safe='')}/?formats=html",
                                 expect=(200, 404))
            if body is None:
                break
            if is_ours(body["posts"][0]):
                return self._copy(body["posts"][0])
        if article.canonical_url:
            for post in self._browse(f"canonical_url:{_nql_string(article.canonical_url)}"):
                if is_ours(post):
                    return self._copy(post)
        return None

    # ------------------------------------------------------------------------------------------
    # writing

    @staticmethod
    def _marker_tag(marker: str) -> str:
        return f"#{marker}"

    def _tags(self, article: Article, marker: str) -> list[dict[str, str]]:
        """The article's tags by name, then our internal tags; Ghost matches names by slug, so no case twins."""
        names: dict[str, str] = {}
        for name in (*capped_tags(article)[0], SYNDICATED_TAG, self._marker_tag(marker)):
            name = " ".join(name.split())
            if name and name.casefold() not in names:
                names[name.casefold()] = name
        return [{"name": n} for n in names.values()]

    def _feature_image(self, image: Image | None) -> dict[str, Any]:
        """The feature image fields, uploading the image to Ghost unless an earlier upload can be reused."""
        if image is None:
            return {"feature_image": None, "feature_image_alt": None, "feature_image_caption": None}
        cached = self.context.media.get(image.url)
        if cached is not None:
            url = cached[1]
        else:
            fetched = self.context.fetch_image(image.url)  # guarded; ImageError propagates
            try:
                body = self._request("POST", "/images/upload/", expect=(200, 201),
                                     files={"file": (fetched.filename, fetched.data, fetched.content_type)},
                                     data={"purpose": "image", "ref": image.url})
            except UnknownOutcome as exc:
                raise ImageError(f"{exc} (uploading the featured image); it is tried again next run") from None
            except PartnerDown:
                raise
            except PublishError as exc:
                error = ImageError(f"{exc} (uploading the featured image {image.url})")
                error.transient = exc.transient
                raise error from None
            try:
                url = body["images"][0]["url"]
            except (KeyError, IndexError, TypeError):
                raise ImageError(f"{self.config.id}: Ghost's answer to the image upload carried no URL") from None
            self.context.media.put(image.url, url, url)
        return {"feature_image": url, "feature_image_alt": (image.alt or None) and image.alt[:191],
                "feature_image_caption": caption_html(image)}

    def _fields(self, article: Article, marker: str) -> dict[str, Any]:
        return {
            "title": article.title,
            "html": article.html,
            "custom_excerpt": fit_excerpt(article.excerpt),
            "canonical_url": article.canonical_url,
            "tags": self._tags(article, marker),
            **self._feature_image(article.featured_image),
        }

    def prepare_html(self, html: str) -> str:
        """Ghost takes the body as rendered (``?source=html``); nothing is wrapped in a raw HTML card."""
        return html

    def create(self, article: Article, marker: str) -> RemoteCopy:
        """Create the post (published or draft as the partner's config says); UnknownOutcome if the answer is lost."""
        post = {**self._fields(article, marker), "slug": article.slug,
                "status": "published" if article.status == "publish" else "draft"}
        body = self._request("POST", "/posts/?source=html&formats=html", json={"posts": [post]}, expect=(201,))
        return self._created(body, article)

    def _created(self, body: Any, article: Article) -> RemoteCopy:
        try:
            copy = self._copy(body["posts"][0])
        except (KeyError, IndexError, TypeError):
            raise UnknownOutcome(f"{self.config.id}: Ghost answered the write without the post") from None
        warning = capped_tags(article)[1]
        return dataclasses.replace(copy, warnings=(warning,)) if warning else copy

    def update(self, remote_id: str, article: Article, marker: str, expected_hash: str | None,
               force: bool = False) -> RemoteCopy:
        """Push our version, unless the partner changed a field we push since our last write (or ``force``)."""
        fields: dict[str, Any] | None = None
        for _ in range(2):
            post = self._read(remote_id)
            if post is None:
                error = PublishError(f"{self.config.id}: the copy {remote_id} no longer exists on Ghost")
                error.transient = False
                raise error
            if expected_hash and fields_hash(post) != expected_hash and not force:
                raise PartnerEdited(f"{self.config.id}: the copy on Ghost (now titled “{post.get('title')}”) was "
                                    f"edited since our last push")
            sent_at = post["updated_at"]
            fields = fields or self._fields(article, marker)  # after the check: a held copy uploads nothing
            try:
                body = self._request("PUT", f"/posts/{remote_id}/?source=html&formats=html",
                                     json={"posts": [{**fields, "updated_at": sent_at}]}, expect=(200, 409))
            except UnknownOutcome:
                return self._after_lost_write(remote_id, sent_at)
            if body and body.get("posts"):
                return self._created(body, article)
            # 409 UPDATE_COLLISION: someone saved the post after our read; decide again on a fresh read.
        raise PublishError(f"{self.config.id}: the copy {remote_id} kept changing while we updated it; "
                           f"it is tried again next run")

    def _after_lost_write(self, remote_id: str, sent_at: str) -> RemoteCopy:
        """Our PUT's answer was lost: a post saved since the ``updated_at`` we sent took our write."""
        try:
            post = self._read(remote_id)
        except PublishError:
            post = None
        if post is not None and post.get("updated_at") != sent_at:
            return self._copy(post)
        raise UnknownOutcome(f"{self.config.id}: the update of {remote_id} got no answer; it is tried again next run")

    def withdraw(self, remote_id: str, delete: bool = False) -> RemoteCopy | None:
        """Make the copy a draft, or delete it (then None)."""
        if delete:
            self._request("DELETE", f"/posts/{remote_id}/", expect=(204, 404))
            return None
        for _ in range(2):
            post = self._read(remote_id)
            if post is None:
                return None
            if post.get("status") == "draft":
                return self._copy(post)
            body = self._request("PUT", f"/posts/{remote_id}/?formats=html",
                                 json={"posts": [{"status": "draft", "updated_at": post["updated_at"]}]},
                                 expect=(200, 409))
            if body and body.get("posts"):
                return self._copy(body["posts"][0])
        raise PublishError(f"{self.config.id}: the copy {remote_id} kept changing while we withdrew it; "
                           f"it is tried again next run")

    # ------------------------------------------------------------------------------------------
    # partners test

    def test(self) -> list[Check]:
        """The key's format, the site answering as Ghost, the key accepted; nothing is changed."""
        checks: list[Check] = []
        try:
            self._credentials()
        except ConfigError as exc:
            return [Check(False, "Admin API key", str(exc))]
        checks.append(Check(True, "Admin API key", "well-formed (id:secret)"))
        try:
            response = self.client.request("GET", "/site/", expect=(200,), describe=self._describe)
            site = response.json()["site"]
        except PublishError as exc:
            return [*checks, Check(False, "Ghost reachable", str(exc))]
        except (ValueError, KeyError, TypeError):
            return [*checks, Check(False, "Ghost reachable",
                                   redact(f"no Ghost Admin API at {self.config.url}: check url"))]
        checks.append(Check(True, "Ghost reachable", str(site.get("title") or self.config.url)))
        checks.append(version_check(site))
        try:
            self._request("GET", "/posts/", params={"limit": 1, "fields": "id"})
        except PublishError as exc:
            return [*checks, Check(False, "Admin API key accepted", str(exc))]
        checks.append(Check(True, "Admin API key accepted", "posts can be read"))
        return checks

    def close(self) -> None:
        """Close the HTTP session."""
        self.client.close()


def _tag_slug(name: str) -> str:
    """The slug Ghost gives an internal tag: ``#syn-…`` → ``hash-syn-…`` (our markers are already slug-safe)."""
    return "hash-" + name.lstrip("#").lower()


def version_check(site: Any) -> Check:
    """The Ghost version the Admin API's site endpoint reports (``major.minor``), as a ``partners test`` line."""
    version = site.get("version") if isinstance(site, dict) else None
    if isinstance(version, str) and re.fullmatch(r"[0-9]+(?:\.[0-9]+){0,3}", version):
        return Check(True, "Ghost version", version)
    return Check(True, "Ghost version", "not reported by the site endpoint")
