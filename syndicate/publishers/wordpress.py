"""The ``wordpress`` partner: the REST API (``<url>/wp-json/wp/v2``) with an Application Password.

What WordPress does that shapes this module (checked on a real WordPress, see CMS-API.md):

* Posts have no version to send back: last write wins. So an update first reads the post
  (``context=edit``) and compares a hash of the fields we push, as WordPress holds them (title,
  body, excerpt, featured image, tags), with the hash read after our last push; a difference is a
  partner's edit and the update is held. A status change alone is not an edit: status is not hashed.
* The hash is always taken from what WordPress answers, never from what we sent: kses rewrites what
  an Author-role user sends (``&#91;`` becomes ``&#091;``, iframes are dropped), and that must not
  look like an edit.
* Every copy carries our marker in an HTML comment at the end of its body (kses keeps comments, and
  WordPress's search looks inside them), so after a lost answer ``find`` can recognise our copy and
  never adopts someone else's post that happens to have the same slug.
* ``[`` and ``]`` are sent as ``&#91;``/``&#93;`` so that no shortcode in a feed can run.
* Unknown ``featured_media`` ids and unregistered meta keys are silently dropped with a 201: both are
  read back; a dropped canonical meta key is a warning, a dropped image is repaired once.
* A ``201`` for a create is required; anything else after the request was sent is an unknown outcome
  (the pipeline looks for the copy before anything is sent again).
"""

from __future__ import annotations

import base64
import html
import ipaddress
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import field_validator

from .. import redact, urls
from ..config import PartnerConfig, Secret, site_url
from ..errors import ConfigError
from ..models import Article, Image, sha256
from .base import (
    Check,
    FetchedImage,
    ImageError,
    PartnerDown,
    PartnerEdited,
    PublishContext,
    PublisherDefaults,
    PublishError,
    RemoteCopy,
    UnknownOutcome,
    UploadedImage,
    capped_tags,
    slug_family,
)
from .http import CMSClient, preload

if TYPE_CHECKING:
    import requests  # the CMS client's (loaded with it, when a partner is pushed to)

#: Every status a copy of ours can have on WordPress, except ``trash`` (a trashed copy counts as gone).
LIVE_STATUSES = "publish,future,draft,pending,private"
PER_PAGE = 100
#: How many members of a slug family ``find`` asks for by name (``S``, ``S-2`` … ``S-10``); the marker
#: search covers the rest.
SLUG_FAMILY = 10
MESSAGE_LIMIT = 300


class Config(PartnerConfig):
    """``[partners.ID]`` with ``kind = "wordpress"``."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password",)

    kind: str = "wordpress"
    #: The site's address (``https://magazine.example``); the REST API is under ``<url>/wp-json/``.
    url: str
    #: The WordPress user the Application Password belongs to (best: an Author-role user).
    username: str
    #: The Application Password, as ``{ env = "NAME" }`` or ``{ file = "path" }``.
    password: Secret
    #: WordPress category names added to every copy (created if missing: needs ``manage_categories``).
    categories: tuple[str, ...] = ()
    #: A post meta key registered with ``show_in_rest`` to hold the canonical URL (e.g. Yoast's).
    canonical_meta_key: str | None = None

    @field_validator("url")
    @classmethod
    def _site_url(cls, value: str) -> str:
        url = site_url(value)
        if url.endswith("/wp-json"):  # a common slip: the REST root instead of the site
            url = url[: -len("/wp-json")]
        return url

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not value or ":" in value:
            raise ValueError("must be a WordPress user name (no ':')")
        return value

    @field_validator("canonical_meta_key")
    @classmethod
    def _meta_key(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must be a meta key name, or left out")
        return value

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(" ".join(v.split()) for v in value)
        if any(not n for n in names):
            raise ValueError("category names must not be empty")
        return names


# ----------------------------------------------------------------------------------------------
# pure helpers


def encode_brackets(text: str) -> str:
    """``[``/``]`` as character references, so WordPress runs no shortcode (also safe inside attributes)."""
    return text.replace("[", "&#91;").replace("]", "&#93;")


_BARE_URL = re.compile(r"\s*https?://[^\s<>\"]+\s*")  # matched against text, never against HTML
_YOUTUBE_HOSTS = ("www.youtube.com", "youtube.com", "www.youtube-nocookie.com", "youtube-nocookie.com")


def oembed_url(src: str) -> str | None:
    """The page URL WordPress embeds by itself (oEmbed) for an allowed iframe's src, if it has one."""
    parts = urls.web_url(src)
    if parts is None:
        return None
    host = parts.host
    path = parts.path.rstrip("/")
    if host in _YOUTUBE_HOSTS and path.startswith("/embed/") and re.fullmatch(r"[\w-]{6,20}", path[7:], re.ASCII):
        return f"https://www.youtube.com/watch?v={path[7:]}"
    if host == "player.vimeo.com" and re.fullmatch(r"/video/\d+", path, re.ASCII):
        return f"https://vimeo.com/{path[7:]}"
    return None


def _allowed_embed_page(url: str) -> bool:
    """A YouTube or Vimeo page URL: WordPress embeds those players, which we allow."""
    parts = urls.web_url(url)
    return parts is not None and parts.host in ("www.youtube.com", "youtube.com", "youtu.be", "vimeo.com",
                                                 "www.vimeo.com")


def wordpress_embeds(html_text: str) -> str:
    """Embeds the way WordPress makes them, and no others.

    WordPress strips iframes for users without ``unfiltered_html`` (the role we recommend) but turns a
    URL standing alone on a line or in a paragraph into an embed of that site's player (oEmbed) — for
    any provider it knows, some of which add a ``<script>``. So: an iframe we allowed becomes its page
    URL alone in a paragraph (WordPress renders the player), and a bare URL the author left alone on a
    line or in a paragraph becomes a plain link, so that WordPress embeds nothing we did not allow.
    """
    if "http" not in html_text:
        return html_text
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser("<body>" + html_text)
    body = tree.body
    if body is None:
        return html_text
    changed = False
    for node in list(body.traverse(include_text=True)):
        if not node.is_text_node or "\n" not in (node.text_content or ""):
            continue
        parent = node.parent
        if parent is not None and parent.tag in ("pre", "code", "textarea"):
            continue
        node.replace_with((node.text_content or "").replace("\n", " "))  # no URL alone on a line
        changed = True
    for paragraph in body.css("p"):
        # css("*") includes the paragraph itself: one match means it holds text only
        text = paragraph.text(deep=True)
        if len(paragraph.css("*")) == 1 and _BARE_URL.fullmatch(text) and not _allowed_embed_page(text.strip()):
            # The link goes where a browser reads the URL (serialised); no valid URL, no link.
            url = urls.web_url(text.strip())
            if url is not None:
                shown = html.escape(text.strip(), quote=False)
                paragraph.inner_html = f'<a href="{html.escape(url.href, quote=True)}">{shown}</a>'
                changed = True
    for iframe in body.css("iframe"):
        embed = oembed_url(iframe.attrs.get("src") or "")
        if embed is None:
            continue
        parent = iframe.parent
        if parent is not None and parent.tag == "p" and len(parent.css("*")) == 2 and not parent.text(deep=True).strip():
            parent.inner_html = html.escape(embed)  # <p>URL</p>: WordPress embeds the player
        elif parent is not None and parent.tag == "body":
            iframe.replace_with(LexborHTMLParser(f"<body><p>{html.escape(embed)}</p>").body.css_first("p"))  # type: ignore[union-attr,arg-type]
        else:  # inside other text: a link, so the video stays one click away
            link = html.escape(embed, quote=True)
            iframe.replace_with(LexborHTMLParser(f'<body><a href="{link}">{link}</a>').body.css_first("a"))  # type: ignore[union-attr,arg-type]
        changed = True
    return (body.inner_html or "") if changed else html_text


# WordPress's own view of where tags are (``get_html_split_regex`` in wp-includes/formatting.php,
# which ``WP_Embed::autoembed`` uses through ``wp_replace_in_html_tags``): a comment, a CDATA
# section, or ``<`` up to the next ``>``. PCRE's conditional groups are written as alternatives.
_WP_COMMENT = r"!(?:-(?!->)[^\-]*+)*+(?:-->)?"
_WP_CDATA = r"!\[CDATA\[[^\]]*+(?:](?!]>)[^\]]*+)*+(?:]]>)?"
_WP_HTML_SPLIT = re.compile(
    rf"(<(?:(?=!--){_WP_COMMENT}|(?=!\[CDATA\[){_WP_CDATA}|(?!!--|!\[CDATA\[)[^>]*>?))")
_RAW_TEXT_TAG = re.compile(r"<(/?)(script|style|textarea|title|xmp|noembed|noframes|noscript|plaintext)\b", re.I)
_URL_START = re.compile(r"(h)(?=ttps?://)", re.I)
#: The page URLs of the embeds we allow, exactly as ``oembed_url`` writes them: WordPress may embed these.
_ALLOWED_EMBED_PAGE = re.compile(r"https://www\.youtube\.com/watch\?v=[\w-]{6,20}|https://vimeo\.com/\d+", re.ASCII)
_OPEN_P = re.compile(r"<p(?:\s[^>]*)?>", re.I)
_PCRE_SPACE = " \t\n\r\x0b\x0c"  # PCRE's \s without /u: ASCII whitespace only


def _neutralise_urls(text: str) -> str:
    """``text`` (HTML text, as WordPress splits it) with the ``h`` of every URL sent as a character reference."""
    return _URL_START.sub(lambda match: "&#104;" if match.group() == "h" else "&#72;", text)


def _is_allowed_embed(pieces: list[str], index: int) -> bool:
    """Is text piece ``index`` exactly ``<p>ALLOWED-PAGE-URL</p>``, as ``wordpress_embeds`` writes an embed?"""
    return (0 < index < len(pieces) - 1 and _OPEN_P.fullmatch(pieces[index - 1]) is not None
            and pieces[index + 1].lower() == "</p>"
            and _ALLOWED_EMBED_PAGE.fullmatch(pieces[index].strip(_PCRE_SPACE)) is not None)


def no_autoembed(html_text: str) -> str:
    """The body with no URL that WordPress's autoembed could turn into an embed we did not allow.

    ``WP_Embed::autoembed`` (``the_content``, priority 8) embeds any ``http(s)://`` URL standing alone
    on a line of the raw post content, after trimming, or alone in a ``<p>`` — inside ``<pre>`` and
    ``<code>`` too, for any oEmbed provider or embed handler (a tweet comes with its script). So the
    ``h`` that starts every URL in the text is sent as the character reference ``&#104;``, except in
    the ``<p>URL</p>`` of an allowed embed: a reader sees the same character, WordPress's regex sees
    no URL, and kses keeps numeric references as they are (even when it strips a tag around a URL,
    which would otherwise leave it alone on its line or glue it to an allowed one). The text is found
    the way WordPress finds it (its own split regex); raw-text elements (``<style>``…) are left alone.
    """
    if not re.search(r"https?://", html_text, re.I):
        return html_text
    pieces = _WP_HTML_SPLIT.split(html_text)
    raw_text = False
    for index, piece in enumerate(pieces):
        if index % 2:  # a tag, comment or CDATA section
            tag = _RAW_TEXT_TAG.match(piece)
            if tag is not None:
                raw_text = not tag.group(1)
        elif not raw_text and piece and not _is_allowed_embed(pieces, index):
            pieces[index] = _neutralise_urls(piece)
    return "".join(pieces)


def wordpress_body(html_text: str) -> str:
    """The body as WordPress must receive it: embeds as WordPress makes them, no other autoembed, no shortcode."""
    return encode_brackets(no_autoembed(wordpress_embeds(html_text)))


def marker_comment(marker: str) -> str:
    """The HTML comment that identifies our copy (kses keeps comments; WordPress search finds them)."""
    return f"<!-- syndicate:{marker} -->"


def carries_marker(post: dict[str, Any], marker: str) -> bool:
    """Does the post's raw body carry our marker?"""
    pattern = r"<!--\s*syndicate:" + re.escape(marker) + r"\s*-->"
    return re.search(pattern, _raw(post, "content") or "") is not None


def _raw(post: dict[str, Any], name: str) -> str | None:
    value = post.get(name)
    if isinstance(value, dict):
        raw = value.get("raw")
        return raw if isinstance(raw, str) else None
    return None


def fields_hash(post: dict[str, Any]) -> str | None:
    """A hash of the fields we push, as WordPress holds them (None without ``context=edit`` fields)."""
    title, content, excerpt = _raw(post, "title"), _raw(post, "content"), _raw(post, "excerpt")
    if title is None or content is None or excerpt is None:
        return None
    tags = post.get("tags")
    tags = tags if isinstance(tags, list) else []
    return sha256(title, content, excerpt, _as_int(post.get("featured_media")), sorted(_as_int(t) for t in tags))


def _as_int(value: Any) -> int:
    """An id from WordPress's answer; -1 for anything that is not one (a broken answer must not crash us)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return -1


def credit_html(image: Image) -> str:
    """``{note} <a href="{credit_url}">{credit}</a>`` (as the article's credit line), escaped."""
    parts = []
    if image.note:
        parts.append(html.escape(image.note, quote=False))
    if image.credit:
        credit_url = urls.web_url(image.credit_url)
        if credit_url is not None:
            parts.append(f'<a href="{html.escape(credit_url.href, quote=True)}">'
                         f"{html.escape(image.credit, quote=False)}</a>")
        else:
            parts.append(html.escape(image.credit, quote=False))
    return " ".join(parts)


def caption_html(image: Image) -> str:
    """The media item's caption: the image's own caption (if any), then the credit line."""
    caption = " ".join((image.caption or "").split())
    credit = credit_html(image)
    text = html.escape(caption, quote=False)
    if caption and credit:
        text += ("." if caption[-1].isalnum() else "") + " " + credit
    elif credit:
        text = credit
    return encode_brackets(text)


def _same_html(a: str, b: str) -> bool:
    """Equal once kses's normalisation of character references (``&#91;`` → ``&#091;``) is undone."""
    def norm(s: str) -> str:
        return re.sub(r"&#0*(\d+);", r"&#\1;", " ".join(s.split()))
    return norm(a) == norm(b)


def _error_of(response: requests.Response) -> tuple[str | None, str, dict[str, Any]]:
    """WordPress's ``{"code", "message", "data"}`` (code None when the answer is not WordPress JSON)."""
    try:
        body = response.json()
    except ValueError:
        return None, "", {}
    if not isinstance(body, dict):
        return None, "", {}
    code, message, data = body.get("code"), body.get("message"), body.get("data")
    code = code if isinstance(code, str) else None
    message = message if isinstance(message, str) else ""
    data = data if isinstance(data, dict) else {}
    # The server's words are untrusted text: one line, bounded, no markup; masked before any of that
    # (a proxy may echo our credentials back, and a cut or a collapsed space would hide them from the mask).
    message = redact.shorten(re.sub(r"<[^>]*>", "", " ".join(redact.redact(message).split())), MESSAGE_LIMIT)
    return code, message, data


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: What a 403 means, by WordPress's error code and what we were doing.
_FORBIDDEN = {
    ("rest_cannot_create", "post"): "may not create posts (needs the Author role or edit_posts)",
    ("rest_cannot_create", "media"): "may not upload files (needs upload_files, e.g. the Author role)",
    ("rest_cannot_create", "tag"): "may not create tags (needs edit_posts, e.g. the Author role)",
    ("rest_cannot_create", "category"): (
        "may not create categories (needs manage_categories, e.g. the Editor role): create the "
        "category in WordPress first, or remove it from the partner's categories"),
    ("rest_cannot_publish", "post"): (
        "may not publish posts (needs publish_posts, e.g. the Author role), or set status = \"draft\""),
    ("rest_cannot_edit", "post"): (
        "may not edit this post (needs edit_published_posts, or edit_others_posts when someone else owns it)"),
    ("rest_forbidden_context", "post"): (
        "may not edit this post (needs edit_published_posts, or edit_others_posts when someone else owns it)"),
    ("rest_cannot_delete", "post"): "may not trash this post (needs delete_posts and delete_published_posts)",
    ("rest_cannot_assign_term", "post"): "may not assign these categories or tags (needs edit_posts)",
    ("rest_forbidden_status", "post"): "may not see drafts (needs edit_posts)",
    ("rest_cannot_edit", "media"): "may not edit this media item (needs upload_files)",
}


# ----------------------------------------------------------------------------------------------
# the publisher


class WordPressAPI:
    """HTTP and auth: one partner's REST API through ``CMSClient``, its error answers in plain words."""

    def __init__(self, config: Config, context: PublishContext) -> None:
        self.config = config
        self.name = config.id or config.name
        self.client = CMSClient(self.name, config.url + "/wp-json/wp/v2", context, self._auth_headers)
        self._authorization: str | None = None

    def _auth_headers(self) -> dict[str, str]:
        """Basic auth with the Application Password, read from its secret on first use only."""
        if self._authorization is None:
            password = self.config.password.reveal()  # registers it with the redactor
            token = base64.b64encode(f"{self.config.username}:{password}".encode()).decode("ascii")
            redact.register(token)
            self._authorization = "Basic " + token
        return {"Authorization": self._authorization}

    def explain(self, response: requests.Response, doing: str, what: str) -> str:
        """An error answer in plain words (``CMSClient`` adds the partner's name and masks secrets)."""
        status = response.status_code
        code, message, data = _error_of(response)
        user = self.config.username
        if status == 401:
            return (f"WordPress refused the credentials of user {user!r} ({code or 'HTTP 401'}): check the "
                    "username and the application password; Application Passwords need HTTPS unless the site "
                    "sets WP_ENVIRONMENT_TYPE=local, and some hosts strip the Authorization header")
        if status == 403:
            reason = _FORBIDDEN.get((code or "", what))
            if reason:
                return f"WordPress user {user!r} {reason} (HTTP 403 {code}, while trying to {doing})"
            return f"WordPress user {user!r} may not {doing} (HTTP 403 {code or 'forbidden'})" + (
                f": {message}" if message else "")
        if status == 404 and (code == "rest_no_route" or code is None):
            return self.no_api()
        if status == 413:
            return f"the partner refused to {doing}: too large (HTTP 413)"
        if status == 400:
            details = data.get("params")
            if isinstance(details, dict) and "forbidden" in str(details.get("status", "")).lower():
                # WordPress answers an unauthenticated request for drafts like this, not with a 401.
                return (f"WordPress did not let user {user!r} see drafts while trying to {doing}: the credentials "
                        "were not accepted (check the username and the application password; some hosts strip "
                        "the Authorization header) or the user lacks edit_posts [rest_invalid_param]")
            extra = ""
            if isinstance(details, dict) and details:
                extra = " (" + redact.shorten("; ".join(f"{k}: {v}" for k, v in details.items()), MESSAGE_LIMIT) + ")"
            return f"WordPress refused to {doing}: {message or 'HTTP 400'}{extra} [{code or 'HTTP 400'}]"
        return f"HTTP {status} while trying to {doing}" + (f": {message} [{code}]" if message else "")

    def no_api(self) -> str:
        return f"no WordPress REST API at {self.config.url}/wp-json/ — check the partner's url"

    def call(self, method: str, path: str, doing: str, what: str = "post", *,
              expect: tuple[int, ...] = (200, 201), **kwargs: Any) -> requests.Response:
        """One request through ``CMSClient``; a missing REST API stops the partner for this run."""
        response = self.client.request(method, path, expect=expect + (404,),
                                       describe=lambda r: self.explain(r, doing, what), **kwargs)
        if response.status_code == 404 and 404 not in expect:
            code, _, _ = _error_of(response)
            if code == "rest_no_route" or code is None:
                raise PartnerDown(f"{self.name}: {self.no_api()}")
            raise self.error(response, doing, what)
        return response

    def error(self, response: requests.Response, doing: str, what: str = "post") -> PublishError:
        error = PublishError(redact.redact(f"{self.name}: {self.explain(response, doing, what)}"))
        error.transient = response.status_code >= 500 or response.status_code == 429
        return error

    def json(self, response: requests.Response, doing: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise PublishError(f"{self.name}: the answer was not JSON while trying to {doing} (HTTP "
                               f"{response.status_code}): is there a WordPress REST API at "
                               f"{self.config.url}/wp-json/?") from None

    def is_gone(self, response: requests.Response) -> bool:
        """Is this 404/410 about one post or media item (gone), or is there no REST API at all (PartnerDown)?"""
        if response.status_code not in (404, 410):
            return False
        code, _, _ = _error_of(response)
        if code in ("rest_no_route", None):
            raise PartnerDown(f"{self.name}: {self.no_api()}")
        return True

    def get_post(self, remote_id: str) -> dict[str, Any] | None:
        """The post with its raw fields; None when it is gone (deleted, or in the trash)."""
        if not remote_id.isdigit():
            raise PublishError(f"{self.name}: {remote_id!r} is not a WordPress post id")
        response = self.call("GET", f"/posts/{remote_id}", "read the post", expect=(200, 404, 410),
                              params={"context": "edit"})
        if self.is_gone(response):
            return None
        post = self.json(response, "read the post")
        if not isinstance(post, dict) or not isinstance(post.get("id"), int):
            raise PublishError(f"{self.name}: WordPress answered for post {remote_id} without the post")
        return None if post.get("status") == "trash" else post

    def list_posts(self, params: dict[str, Any], doing: str) -> list[dict[str, Any]]:
        """Every page of ``GET /posts`` with these parameters."""
        posts: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self.call("GET", "/posts", doing,
                                  params={**params, "per_page": PER_PAGE, "page": page})
            batch = self.json(response, doing)
            if not isinstance(batch, list):
                raise PublishError(f"{self.name}: WordPress answered a list of posts with something else")
            posts += [p for p in batch if isinstance(p, dict)]
            try:
                pages = int(response.headers.get("X-WP-TotalPages") or 1)
            except ValueError:
                pages = 1
            # X-WP-Total counts posts that context=edit then hides, so a short page is not the end.
            if page >= pages:
                return posts
            page += 1

    # --- what we send ----------------------------------------------------------------------------


class WordPressTerms:
    """Tags and categories: names → ids, found or created once per run."""

    def __init__(self, api: WordPressAPI) -> None:
        self.api = api
        self._ids: dict[tuple[str, str], int] = {}
        # Pushes run concurrently (a partner's ``concurrency``): two that both found a tag missing would
        # both create it, and WordPress keeps both (its check for an existing name is not atomic).
        self._finding = threading.Lock()

    def ids(self, taxonomy: str, names: Iterable[str], what: str) -> list[int]:
        ids: list[int] = []
        for name in names:
            name = " ".join(name.split())
            if not name:
                continue
            key = (taxonomy, name.casefold())
            with self._finding:
                if key not in self._ids:
                    self._ids[key] = self._make(taxonomy, name, what)
            if self._ids[key] not in ids:
                ids.append(self._ids[key])
        return ids

    def find(self, taxonomy: str, name: str, what: str) -> int | None:
        """The id of the tag/category with this name (WordPress keeps names HTML-escaped), or None."""
        doing = f"look up the {what} {name!r}"
        response = self.api.call("GET", f"/{taxonomy}", doing,
                              params={"search": name, "per_page": PER_PAGE, "hide_empty": "false"})
        terms = self.api.json(response, doing)
        for term in terms if isinstance(terms, list) else []:
            if (isinstance(term, dict) and isinstance(term.get("id"), int)
                    and html.unescape(str(term.get("name", ""))).casefold() == name.casefold()):
                return int(term["id"])
        return None

    def _make(self, taxonomy: str, name: str, what: str) -> int:
        """The id of the tag/category with this name, created if missing."""
        found = self.find(taxonomy, name, what)
        if found is not None:
            return found
        doing = f"create the {what} {name!r}"
        try:
            response = self.api.call("POST", f"/{taxonomy}", doing, what, expect=(200, 201, 400), json={"name": name})
        except UnknownOutcome as exc:  # nothing was published; the next run finds the term or makes it
            raise PublishError(str(exc)) from None
        body = self.api.json(response, doing)
        if response.status_code == 400:
            code, _, data = _error_of(response)
            if code == "term_exists" and isinstance(data.get("term_id"), int):
                return int(data["term_id"])
            raise self.api.error(response, doing, what)
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise PublishError(f"{self.api.name}: WordPress did not answer with the new {what}'s id ({doing})")
        return int(body["id"])


class WordPressMedia:
    """Featured images: an upload made earlier (the store's media cache) reused, else a new upload."""

    def __init__(self, api: WordPressAPI, context: PublishContext) -> None:
        self.api, self.context = api, context

    def featured(self, image: Image | None) -> int:
        """The media id of the article's featured image: the upload made earlier, else a new upload."""
        if image is None:
            return 0
        alt, caption = image.alt or "", caption_html(image)
        cached = self.context.media.get(image.url)
        if cached is not None and cached[0].isdigit():
            media = self._get(cached[0])
            if media is not None:
                self._align(media, alt, caption)
                return int(media["id"])
        if cached is not None:
            self.context.media.forget(image.url)
        return self.upload(image, alt, caption)

    def _get(self, media_id: str) -> dict[str, Any] | None:
        response = self.api.call("GET", f"/media/{media_id}", "read the featured image", "media",
                              expect=(200, 404, 410), params={"context": "edit"})
        if self.api.is_gone(response):
            return None
        media = self.api.json(response, "read the featured image")
        if not isinstance(media, dict) or media.get("status") == "trash" or not isinstance(media.get("id"), int):
            return None
        return media

    def _align(self, media: dict[str, Any], alt: str, caption: str) -> None:
        """An uploaded image reused: give it today's alt text and caption (e.g. a corrected credit)."""
        changes: dict[str, str] = {}
        if not _same_html(str(media.get("alt_text") or ""), alt):
            changes["alt_text"] = alt
        if not _same_html(_raw(media, "caption") or "", caption):
            changes["caption"] = caption
        if changes:
            try:
                self.api.call("POST", f"/media/{media['id']}", "update the featured image's caption", "media",
                           json=changes)
            except UnknownOutcome as exc:
                raise ImageError(str(exc)) from None

    def upload(self, image: Image, alt: str, caption: str) -> int:
        fetched = self.context.fetch_image(image.url)  # ImageError: the delivery fails with the reason
        media = self.post(fetched, {"alt_text": alt, "caption": caption}, "the featured image")
        self.context.media.put(image.url, str(media["id"]), str(media.get("source_url") or ""))
        return int(media["id"])

    def post(self, fetched: FetchedImage, data: dict[str, str], what: str) -> dict[str, Any]:
        """One new media item; ImageError when WordPress refuses it or its answer is lost."""
        doing = f"upload {what}"
        try:
            response = self.api.call("POST", "/media", doing, "media", expect=(201,),
                                  files={"file": (fetched.filename, fetched.data, fetched.content_type)},
                                  data=data)
        except UnknownOutcome as exc:
            raise ImageError(f"{exc}: the upload of {what} got no answer; it is tried again on "
                             "the next run (an unused copy may be left in the media library)") from None
        except PartnerDown:
            raise
        except PublishError as exc:
            error = ImageError(str(exc))
            error.transient = exc.transient
            raise error from None
        media = self.api.json(response, doing)
        if not isinstance(media, dict) or not isinstance(media.get("id"), int):
            raise ImageError(f"{self.api.name}: WordPress did not answer the upload with a media id")
        return media

    # --- what we read back ------------------------------------------------------------------------


class Publisher(PublisherDefaults):
    """Copies as WordPress posts, through the REST API."""

    preload = staticmethod(preload)  # requests, while the feeds are being parsed

    def __init__(self, config: Config, context: PublishContext) -> None:
        self.config = config
        self.context = context
        self.name = config.id or config.name
        self.api = WordPressAPI(config, context)
        self.terms = WordPressTerms(self.api)
        self.media = WordPressMedia(self.api, context)

    def prepare_html(self, html_text: str) -> str:
        """The body as WordPress must receive it: embeds as WordPress makes them, ``[``/``]`` encoded."""
        return wordpress_body(html_text)

    def _fields(self, article: Article, marker: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
        """The post fields we push (create and update); ``current`` is the post as it is now, for updates."""
        body = self.prepare_html(article.html).rstrip("\n")
        fields: dict[str, Any] = {
            "title": html.escape(article.title, quote=False),  # plain text: WordPress takes HTML here
            "content": body + "\n" + marker_comment(marker),
            "excerpt": encode_brackets(html.escape(article.excerpt, quote=False)),
            "tags": self.terms.ids("tags", capped_tags(article)[0], "tag"),
        }
        if self.config.categories:
            ours = self.terms.ids("categories", self.config.categories, "category")
            kept = [int(c) for c in (current or {}).get("categories") or []]
            fields["categories"] = list(dict.fromkeys(kept + ours))  # never drop the partner's own
        media = self.media.featured(article.featured_image)
        if media or current is not None:
            fields["featured_media"] = media
        if self.config.canonical_meta_key and article.canonical_url:
            fields["meta"] = {self.config.canonical_meta_key: article.canonical_url}
        return fields

    def _copy(self, post: dict[str, Any], warnings: Iterable[str] = ()) -> RemoteCopy:
        return RemoteCopy(remote_id=str(post["id"]), url=post.get("link"), slug=post.get("slug"),
                          status=post.get("status"), version=post.get("modified_gmt"),
                          fields_hash=fields_hash(post), warnings=tuple(warnings))

    def _written(self, response: requests.Response, doing: str, expect_status: int) -> dict[str, Any]:
        """The post a write answered with; an answer without it is an unknown outcome, never a failure."""
        try:
            post = response.json()
        except ValueError:
            post = None
        if response.status_code != expect_status or not isinstance(post, dict) or not isinstance(post.get("id"), int):
            raise UnknownOutcome(f"{self.name}: WordPress answered HTTP {response.status_code} without the post "
                                 f"while trying to {doing}; the copy is looked for before anything is sent again")
        return post

    def _checked(self, post: dict[str, Any], article: Article, fields: dict[str, Any]) -> RemoteCopy:
        """The copy after a write, with what WordPress silently dropped either repaired or reported."""
        warnings = [w for w in [capped_tags(article)[1]] if w]
        if fields_hash(post) is None:  # a write's answer is in context=edit; read it back if not
            try:
                post = self.api.get_post(str(post["id"])) or post
            except PublishError:
                pass  # never lose the id of a copy that exists: it is read again on the next run
        wanted = int(fields.get("featured_media") or 0)
        if wanted and int(post.get("featured_media") or 0) != wanted and article.featured_image is not None:
            post, warning = self._repair_media(post, article.featured_image)
            warnings += [warning] if warning else []
        key = self.config.canonical_meta_key
        if key and article.canonical_url:
            meta = post.get("meta")
            if not isinstance(meta, dict) or meta.get(key) != article.canonical_url:
                warnings.append(f"WordPress dropped the canonical meta key {key}: register it with show_in_rest "
                                f"(e.g. Yoast, Rank Math) or remove canonical_meta_key; the copy of "
                                f"{article.canonical_url} has no canonical URL")
        return self._copy(post, warnings)

    def _repair_media(self, post: dict[str, Any], image: Image) -> tuple[dict[str, Any], str | None]:
        """WordPress ignored our featured_media (the media item vanished meanwhile): upload it again, once."""
        self.context.media.forget(image.url)
        try:
            media_id = self.media.upload(image, image.alt or "", caption_html(image))
            response = self.api.call("POST", f"/posts/{post['id']}", "set the featured image",
                                  json={"featured_media": media_id})
            fixed = self._written(response, "set the featured image", 200)
        except PublishError as exc:
            return post, f"the featured image of {post.get('link')} did not stick: {exc}"
        if int(fixed.get("featured_media") or 0) != media_id:
            return fixed, f"WordPress does not keep the featured image of {fixed.get('link')}"
        return fixed, None

    # --- the Protocol --------------------------------------------------------------------------

    def upload_image(self, image: FetchedImage) -> UploadedImage:
        """A body image into the media library; the body points at the file WordPress serves."""
        media = self.media.post(image, {}, f"the body image {image.filename}")
        url = media.get("source_url")
        if not isinstance(url, str) or not url:
            raise ImageError(f"{self.name}: WordPress answered the upload of {image.filename} without its URL "
                             "(an unused copy may be left in the media library)")
        return UploadedImage(str(media["id"]), url)

    def create(self, article: Article, marker: str) -> RemoteCopy:
        """Create the post (image and terms first); UnknownOutcome when WordPress's answer was lost."""
        fields = self._fields(article, marker)
        fields.update(slug=article.slug, status=article.status)
        response = self.api.call("POST", "/posts", "create the post", json=fields)
        post = self._written(response, "create the post", 201)
        return self._checked(post, article, fields)

    def update(self, remote_id: str, article: Article, marker: str, expected_hash: str | None,
               force: bool = False) -> RemoteCopy:
        """Push our version, unless the partner edited a field we push since our last push (then held)."""
        current = self.api.get_post(remote_id)
        if current is None:
            error = PublishError(f"{self.name}: post {remote_id} is gone from WordPress (deleted or in the trash)")
            error.transient = False
            raise error
        if expected_hash is not None and fields_hash(current) != expected_hash and not force:
            raise PartnerEdited(f"{self.name}: post {remote_id} ({current.get('link')}) was edited on WordPress "
                                "since our last push")
        # Status and slug stay the partner's: an editor may have published our draft or renamed it.
        fields = self._fields(article, marker, current=current)
        response = self.api.call("POST", f"/posts/{remote_id}", "update the post", json=fields)
        post = self._written(response, "update the post", 200)
        return self._checked(post, article, fields)

    def refresh(self, remote_ids: list[str]) -> dict[str, RemoteCopy | None]:
        """Our copies as they are now; None for a copy that is gone (deleted, trashed)."""
        ids = list(dict.fromkeys(r for r in remote_ids if r.isdigit()))
        found: dict[str, RemoteCopy | None] = {}
        try:
            for start in range(0, len(ids), PER_PAGE):
                chunk = ids[start:start + PER_PAGE]
                for post in self.api.list_posts({"include": ",".join(chunk), "status": LIVE_STATUSES, "context": "edit",
                                        "orderby": "include"}, "read our posts"):
                    found[str(post.get("id"))] = self._copy(post)
            # Missing from the list: gone, or only hidden from context=edit (e.g. given to another
            # user)? A copy wrongly taken for deleted would be withdrawn for good, so ask one by one.
            for rid in ids:
                if rid not in found:
                    self._confirm(rid, found)
        except PartnerDown:
            raise
        except PublishError as exc:  # without the copies' state this partner cannot be worked on
            raise PartnerDown(str(exc)) from None
        return {rid: found[rid] for rid in ids if rid in found}

    def _confirm(self, remote_id: str, found: dict[str, RemoteCopy | None]) -> None:
        """Is a copy missing from the list really gone? Left out of ``found`` when that cannot be told."""
        response = self.api.call("GET", f"/posts/{remote_id}", "read the post", expect=(200, 403, 404, 410),
                              params={"context": "edit"})
        if self.api.is_gone(response):
            found[remote_id] = None
            return
        if response.status_code == 200:
            post = self.api.json(response, "read the post")
            if isinstance(post, dict):
                found[remote_id] = None if post.get("status") == "trash" else self._copy(post)
            return
        # It exists, but this user may no longer edit it: report what anyone may see of it.
        response = self.api.call("GET", f"/posts/{remote_id}", "read the post", expect=(200, 401, 403, 404, 410))
        post = self.api.json(response, "read the post") if response.status_code == 200 else None
        if isinstance(post, dict) and isinstance(post.get("id"), int):
            found[remote_id] = RemoteCopy(remote_id=remote_id, url=post.get("link"), slug=post.get("slug"),
                                          status=post.get("status"), version=post.get("modified_gmt"))

    def find(self, article: Article, marker: str) -> RemoteCopy | None:
        """Our copy after a lost answer: by slug family and by marker, across all statuses; ours only."""
        family = slug_family(article.slug, SLUG_FAMILY)
        base = {"status": LIVE_STATUSES, "context": "edit"}
        candidates = self.api.list_posts({**base, "slug": ",".join(family)}, "look for our copy")
        candidates += self.api.list_posts({**base, "search": marker}, "look for our copy")
        ours = sorted({int(p["id"]): p for p in candidates
                       if isinstance(p.get("id"), int) and carries_marker(p, marker)}.items())
        return self._copy(ours[0][1]) if ours else None  # the oldest, should there ever be two

    def withdraw(self, remote_id: str, delete: bool = False) -> RemoteCopy | None:
        """Make the copy a draft (``delete``: move it to the trash); None when it is already gone."""
        current = self.api.get_post(remote_id)
        if current is None:
            return None
        if delete:
            response = self.api.call("DELETE", f"/posts/{remote_id}", "trash the post", expect=(200, 410))
            if response.status_code == 410:
                return None
            post = self.api.json(response, "trash the post")
            return self._copy(post) if isinstance(post, dict) and "id" in post else None
        if current.get("status") == "draft":
            return self._copy(current)
        response = self.api.call("POST", f"/posts/{remote_id}", "withdraw the post", json={"status": "draft"})
        return self._copy(self._written(response, "withdraw the post", 200))

    def test(self) -> list[Check]:
        """Credentials, reachability, capabilities, unfiltered_html, the canonical meta key. Changes nothing."""
        checks: list[Check] = []
        host = urlsplit(self.config.url).hostname or ""
        if self.config.url.startswith("http://") and not _is_loopback(host):
            checks.append(Check(True, "https", f"{self.config.url} is plain http: the application password "
                                "travels unencrypted (use https)", warning=True))
        try:
            response = self.api.call("GET", "/users/me", "read the user's profile", params={"context": "edit"})
            me = self.api.json(response, "read the user's profile")
        except (PublishError, ConfigError) as exc:
            text = str(exc)
            what = "reachable" if "cannot reach" in text else "REST API" if "REST API" in text else "credentials"
            return checks + [Check(False, what, redact.redact(text))]
        if not isinstance(me, dict) or not isinstance(me.get("capabilities"), dict):
            return checks + [Check(False, "credentials", "WordPress did not return the user's capabilities "
                                   "(context=edit): is the Authorization header stripped by the host?")]
        caps = {k for k, v in me["capabilities"].items() if v}
        roles = ", ".join(me.get("roles") or []) or "no role"
        user = me.get("username") or self.config.username
        checks.append(Check(True, "credentials", f"logged in as {user} ({roles})"))
        checks.append(self._version_check())
        checks.append(self._cap(caps, "edit_posts", "create posts and tags"))
        if self.config.status == "publish":
            checks.append(self._cap(caps, "publish_posts", "publish posts (status = \"publish\")"))
        checks.append(self._cap(caps, "upload_files", "upload featured images"))
        if self.config.categories:
            try:
                checks.append(self._categories_check(caps))
            except PublishError as exc:
                checks.append(Check(False, "categories", redact.redact(str(exc))))
        if "unfiltered_html" in caps:
            checks.append(Check(True, "unfiltered_html", "this user has unfiltered_html, so WordPress does not "
                                "filter what we send: our sanitizing is the only filter; use an Author-role user",
                                warning=True))
        else:
            checks.append(Check(True, "no unfiltered_html", "WordPress filters what we send as well (kses)"))
        registered = self._meta_check(self.config.canonical_meta_key) if self.config.canonical_meta_key else None
        if registered is not None:
            checks.append(registered)
        checks.append(self._canonical_check(registered))
        return checks

    def _cap(self, caps: set[str], cap: str, why: str) -> Check:
        ok = cap in caps
        return Check(ok, cap, f"needed to {why}" + ("" if ok else f": the user {self.config.username!r} lacks it"))

    def _categories_check(self, caps: set[str]) -> Check:
        missing = [name for name in self.config.categories
                   if self.terms.find("categories", name, "category") is None]
        if not missing:
            return Check(True, "categories", "exist: " + ", ".join(self.config.categories))
        if "manage_categories" in caps:
            return Check(True, "manage_categories", "will create the missing categories: " + ", ".join(missing))
        return Check(False, "manage_categories", "the categories " + ", ".join(missing) + " do not exist and the "
                     f"user {self.config.username!r} may not create them (needs manage_categories): create them "
                     "in WordPress first")

    def _version_check(self) -> Check:
        """The WordPress version the site discloses: its feed's generator (the REST index has none)."""
        try:
            response = self.api.client.request("GET", self.config.url + "/?feed=rss2", expect=(200,))
        except PublishError as exc:
            return Check(True, "WordPress version", f"unknown: could not read the site's feed ({exc})")
        version = generator_version(response.text)
        if version is None:
            return Check(True, "WordPress version", "not disclosed (the site's feed names no WordPress generator)")
        return Check(True, "WordPress version", version)

    def _meta_check(self, key: str) -> Check:
        """Is the canonical meta key registered for posts with show_in_rest (else WordPress drops it)?"""
        try:
            response = self.api.call("OPTIONS", "/posts", "read the posts schema", expect=(200,))
            schema: Any = self.api.json(response, "read the posts schema")
            for step in ("schema", "properties", "meta", "properties"):
                schema = schema.get(step) if isinstance(schema, dict) else None
        except PublishError as exc:
            return Check(True, "canonical meta key", f"could not read the posts schema: {exc}", warning=True)
        if isinstance(schema, dict) and key in schema:
            return Check(True, "canonical meta key", f"{key} is registered for posts with show_in_rest")
        return Check(True, "canonical meta key", f"{key} is not registered with show_in_rest: WordPress will drop "
                     "it (register it, e.g. with Yoast or Rank Math, or remove canonical_meta_key)", warning=True)

    def _canonical_check(self, registered: Check | None) -> Check:
        """Will the copies' canonical URL be honoured? It needs the meta key registered for REST (else
        WordPress drops it: ``registered``) and a plugin that prints it in place of core's own canonical,
        which core points at the copy. The second can only be seen on a published copy of ours: the
        first one found (by our marker) is fetched without credentials, as a reader gets it."""
        from ..audit import canonical_links

        key = self.config.canonical_meta_key
        what = "canonical"
        if key is None:
            return Check(True, what, "not honoured: no canonical_meta_key, so WordPress core prints its own "
                         "canonical, pointing at the copy (search engines take it for the original); set "
                         "canonical_meta_key to a key an SEO plugin prints (e.g. Yoast's _yoast_wpseo_canonical)",
                         warning=True)
        if registered is not None and registered.warning:
            return Check(True, what, f"not honoured: WordPress does not keep {key} (see above)", warning=True)
        try:
            response = self.api.call("GET", "/posts", "look for a published copy", expect=(200,), params={
                "status": "publish", "search": "syndicate", "context": "edit", "per_page": 20,
                "_fields": "id,link,meta,content"})
            posts = self.api.json(response, "look for a published copy")
        except PublishError as exc:
            return Check(True, what, f"{key} is registered; whether a plugin prints it is unknown (the published "
                         f"posts could not be listed: {redact.redact(str(exc))})", warning=True)
        sample = next((p for p in posts if isinstance(p, dict) and _published_copy(p, key)), None) \
            if isinstance(posts, list) else None
        if sample is None:
            return Check(True, what, f"{key} is registered, but no published copy of ours exists yet, so whether "
                         "a plugin prints it cannot be told; run syndicate audit after the first one", warning=True)
        link, wanted = sample["link"], sample["meta"][key]
        try:  # anonymous: no Authorization header (a logged-in page may differ); the partner's own host
            page = self.api.client.session.get(link, timeout=self.api.client.context.timeout, allow_redirects=False)
        except Exception as exc:  # noqa: BLE001 - requests' errors: reported as the unknown they leave
            return Check(True, what, f"{key} is registered; {link} could not be read ({type(exc).__name__}), so "
                         "whether a plugin prints it is unknown", warning=True)
        if page.status_code != 200:
            return Check(True, what, f"{key} is registered; {link} answered HTTP {page.status_code}, so whether "
                         "a plugin prints it is unknown", warning=True)
        found = canonical_links(page.text)
        theirs = [href for href in found if urls.url_key(href) != urls.url_key(wanted)]
        seen = "seen on one published copy (other pages and caches may differ: syndicate audit checks every copy)"
        if found and not theirs:
            return Check(True, what, f"honoured: {key} is registered and a plugin prints it: {link} has the "
                         f"canonical {wanted}; {seen}")
        if len(theirs) < len(found):
            return Check(True, what, f"not honoured: {link} prints two canonicals, {key}'s and {theirs[0]} "
                         f"(WordPress core's own, which the plugin must remove); {seen}", warning=True)
        shown = theirs[0] if theirs else "no canonical"
        return Check(True, what, f"not honoured: {link} prints {shown}, not {key}'s {wanted}: no plugin prints "
                     f"{key}; {seen}", warning=True)

    def close(self) -> None:
        """Close the HTTP session."""
        self.api.client.close()


_OUR_MARKER = re.compile(r"<!--\s*syndicate:syn-[0-9a-f]{16}\s*-->")


def _published_copy(post: dict[str, Any], key: str) -> bool:
    """Is ``post`` (``context=edit``) a copy of ours whose canonical meta key holds a URL?"""
    content, meta = post.get("content"), post.get("meta")
    raw = content.get("raw") if isinstance(content, dict) else None
    value = meta.get(key) if isinstance(meta, dict) else None
    return (isinstance(raw, str) and _OUR_MARKER.search(raw) is not None and isinstance(value, str)
            and bool(value) and isinstance(post.get("link"), str))


_GENERATOR = re.compile(
    r"""<generator>\s*https?://wordpress\.org/\?v=([^<\s]+)\s*</generator>"""  # RSS 2
    r"""|<generator\b[^>]{0,200}\bversion=["']([^"']+)["'][^>]{0,200}>\s*WordPress\s*</generator>"""  # Atom
    r"""|<meta\s+name=["']generator["']\s+content=["']WordPress\s+([^"'\s]+)["']""",  # a page's head
    re.IGNORECASE)
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){0,3}(?:-[0-9A-Za-z.]+)?")


def generator_version(text: str) -> str | None:
    """The WordPress version a feed or page names in its generator, or None (hidden, not WordPress).

    Only a version-shaped value is taken: the text is the partner's, and the value is printed.
    """
    for match in _GENERATOR.finditer(text):
        value = next(v for v in match.groups() if v is not None)
        if _VERSION.fullmatch(value):
            return value
    return None
