"""HTML → HTML: absolute URLs, tracking parameters removed, embeds filtered, sanitised, cross-links.

Two steps, split by what they depend on:

* ``clean`` depends only on the entry and the ``[rewrite]`` config, so it runs once per entry (in the
  parse workers, in parallel): every ``href``/``src``/``srcset``/``poster`` made absolute, tracking
  parameters removed, iframes kept only from allowed embed hosts, then nh3 with a strict allowlist.
  This is all an ND licence allows, so its output is what ND partners get.
* ``retarget`` depends on the partner: links to the source's own posts that this partner has a copy
  of are pointed at that copy.

Always on a real HTML5 parser (lexbor through selectolax), never regular expressions on HTML.
"""

from __future__ import annotations

import html as htmllib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import nh3
from selectolax.lexbor import LexborHTMLParser

from .models import RewriteRules
from .urls import LINK_SCHEMES, WEB_SCHEMES, SiteIdentity, clean_url, web_url

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd",
    "blockquote", "q", "cite", "figure", "figcaption", "img", "picture", "source", "video", "audio", "track",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup", "col",
    "code", "pre", "kbd", "samp", "var", "a", "em", "strong", "b", "i", "u", "s", "del", "ins", "sub", "sup",
    "small", "mark", "abbr", "time", "span", "div", "details", "summary",
}
ALLOWED_ATTRIBUTES = {
    # Every tag: nothing. Without this key nh3 (ammonia's "generic attributes") keeps lang and title
    # on every tag, attributes this allowlist never named.
    "*": set(),
    "a": {"href", "title"},
    "img": {"src", "srcset", "sizes", "alt", "title", "width", "height"},
    "source": {"src", "srcset", "sizes", "type", "media"},
    "video": {"src", "poster", "controls", "width", "height", "loop", "muted", "playsinline"},
    "audio": {"src", "controls", "loop"},
    "track": {"src", "kind", "srclang", "label"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "reversed"}, "li": {"value"},
    "abbr": {"title"}, "time": {"datetime"},
    "blockquote": {"cite"}, "q": {"cite"}, "del": {"cite", "datetime"}, "ins": {"cite", "datetime"},
    "col": {"span"}, "colgroup": {"span"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_URL_ATTRS = ("href", "src", "poster", "cite")
# Tags whose whole content goes, not only the tag (nh3 would otherwise keep their text).
_DROP_WITH_CONTENT = {"script", "style", "template", "noscript", "object", "embed", "applet", "svg", "math",
                      "form", "select", "textarea", "button", "head", "title", "iframe", "frame", "frameset"}
#: Any of them: one query tells whether a body has one at all (most have none; bench/why.md).
_ANY_DROPPED = ", ".join(sorted(_DROP_WITH_CONTENT))

#: The sanitiser, its allowlists converted once: ``nh3.clean`` converts them on every call, which
#: costs more than cleaning a short body (bench/why.md).
_SANITISER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    url_relative="deny",  # everything is absolute by now; anything relative left is suspect
    link_rel=None,
    strip_comments=True,
)


@dataclass(frozen=True)
class Cleaned:
    """Sanitised HTML and the links in it that point at the source's own site."""

    html: str
    own_links: tuple[str, ...]


def _parse(html: str) -> LexborHTMLParser:
    # "<body>" first so that a leading <meta>/<title>/<style> stays in the body where we can see it.
    return LexborHTMLParser("<body>" + html)


def _body_html(tree: LexborHTMLParser) -> str:
    body = tree.body
    return (body.inner_html or "") if body is not None else ""


_SRCSET_DESCRIPTOR = re.compile(r"\d+w|\d+h|\d+(?:\.\d+)?x", re.I)


def _srcset(value: str, base: str | None, strip_params: tuple[str, ...]) -> str:
    """A srcset with every candidate absolute and serialised, and only http(s) candidates kept.

    A candidate whose descriptors are not ``<n>w``/``<n>x`` (``java\tscript:…`` splits into a URL
    ``java`` and a "descriptor" ``script:…``) is dropped, as a browser drops it.
    """
    candidates = []
    for candidate in value.split(","):
        bits = candidate.strip().split()
        if not bits or not all(_SRCSET_DESCRIPTOR.fullmatch(bit) for bit in bits[1:]):
            continue
        url = clean_url(bits[0], base, strip_params)
        if url is not None and url.is_web:
            candidates.append(" ".join([url.href, *bits[1:]]))
    return ", ".join(candidates)


#: Which schemes each URL attribute may keep (anything else loses the attribute, not just the scheme).
_ATTR_SCHEMES = {"href": LINK_SCHEMES, "cite": LINK_SCHEMES, "src": WEB_SCHEMES, "poster": WEB_SCHEMES}


def _embed(src: str | None, base: str | None, attrs: Mapping[str, str | None],
           embed_hosts: tuple[str, ...]) -> str | None:
    """Our own iframe markup for an allowed embed, or None when the host is not allowed.

    The host is the one a browser loads (``https://evil.example\\@www.youtube.com/`` is on
    evil.example), and the src we write is the parser's serialisation of the URL we checked.
    """
    url = web_url(src, base)
    if url is None or url.host not in {h.lower() for h in embed_hosts} or url.username or url.password:
        return None
    out = [f'<iframe src="{htmllib.escape(url.href, quote=True)}"']
    for name in ("width", "height"):
        value = (attrs.get(name) or "").strip()
        if value.isdigit():
            out.append(f' {name}="{value}"')
    title = attrs.get("title")
    if title:
        out.append(f' title="{htmllib.escape(title, quote=True)}"')
    out.append(' frameborder="0" allowfullscreen></iframe>')
    return "".join(out)


def clean(html: str, base: str | None, rules: RewriteRules = RewriteRules(),
          site: SiteIdentity | None = None) -> Cleaned:
    """Make every URL absolute against ``base``, drop tracking parameters and unknown embeds, sanitise."""
    tree = _parse(html)
    strip_params = rules.strip_params
    embeds: dict[str, str] = {}
    nonce = secrets.token_hex(8)  # a feed cannot forge a placeholder it cannot guess
    for node in tree.css("iframe"):
        markup = _embed(node.attrs.get("src"), base, dict(node.attrs.items()), rules.embed_hosts)
        if markup is None:
            node.decompose()
            continue
        token = f"syndicate-embed-{nonce}-{len(embeds)}"
        embeds[token] = markup
        node.replace_with(token)
    if tree.css_first(_ANY_DROPPED) is not None:
        for tag in _DROP_WITH_CONTENT:  # tag by tag: a node is never removed after its ancestor was
            for node in tree.css(tag):
                node.decompose()

    own_links: list[str] = []
    for node in tree.css("[href], [src], [srcset], [poster], [cite]"):
        attrs = node.attrs
        for name in _URL_ATTRS:
            value = attrs.get(name)
            if value is None:
                continue
            parsed = clean_url(value, base, strip_params)
            if parsed is None or parsed.scheme not in _ATTR_SCHEMES[name] or (parsed.scheme in WEB_SCHEMES
                                                                                and not parsed.host):
                # No URL a browser would follow differently, nor a javascript:/data: one (nh3 checks
                # href and src, not cite): the attribute goes, the element stays.
                del attrs[name]
                continue
            if parsed.href != value:
                attrs[name] = parsed.href
            if name == "href" and site is not None and node.tag == "a" and site.owns(parsed.href):
                own_links.append(parsed.href)
        srcset = attrs.get("srcset")
        if srcset is not None:
            attrs["srcset"] = _srcset(srcset, base, strip_params)

    sanitized = _SANITISER.clean(_body_html(tree))
    for token, markup in embeds.items():
        sanitized = sanitized.replace(token, markup, 1)
    return Cleaned(sanitized.strip(), tuple(dict.fromkeys(own_links)))


def retarget(html: str, site: SiteIdentity, copies: Mapping[str, str]) -> str:
    """Point links to the source's own posts at this partner's copies (``copies``: ``site.key`` → copy URL)."""
    if not copies:
        return html
    tree = _parse(html)
    changed = False
    for node in tree.css("a[href]"):
        key = site.key(node.attrs.get("href") or "")
        copy = web_url(copies.get(key)) if key is not None else None
        if copy is not None:  # a partner's copy URL is data from its API: checked and serialised too
            node.attrs["href"] = copy.href
            changed = True
    return _body_html(tree) if changed else html


def text_to_html(text: str) -> str:
    """Plain-text content as HTML: escaped, never parsed; blank lines make paragraphs."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join("<p>" + htmllib.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)
