"""What each partner kind receives for a feed entry, through the pipeline's public stages only.

feed bytes → ``feeds.parse_bytes`` (which runs ``rewrite.clean``) → ``render.Renderer.article`` → each
publisher's ``prepare_html``; for a files partner, ``Renderer.files_page`` (the page as written).
These are the stable public functions; ``pipeline.py``'s internals are not used, so the hostile
tests keep attacking the same stages when the pipeline around them changes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syndicate.config import Config, PartnerConfig, SourceConfig, parse_config
from syndicate.decide import Verdict
from syndicate.feeds import ParseError, SourceContext, parse_bytes
from syndicate.models import Entry, RewriteRules
from syndicate.publishers import make_publisher
from syndicate.publishers.base import PublishContext
from syndicate.render import Renderer
from syndicate.rewrite import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

SITE = "https://source.example"
FEED_URL = SITE + "/feed/"
PARTNER_KINDS = ("files", "wordpress", "ghost")
#: An iframe our own embed markup makes (rewrite._embed); only its src is checked, as a browser reads it.
EMBED_ATTRIBUTES = frozenset({"src", "width", "height", "title", "frameborder", "allowfullscreen"})


@dataclass(frozen=True)
class Item:
    """One feed item, every field of it as the feed spells it (text: the feed's escaping is ours)."""

    guid: str
    title: str = "A post"
    link: str | None = None
    summary: str | None = None
    content: str | None = None
    published: str | None = "Mon, 02 Mar 2026 10:00:00 GMT"


def xml_text(value: str) -> str:
    """``value`` as XML character data (the payload is data in the feed, whatever markup it holds)."""
    return html.escape(value, quote=True)


def rss(items: Iterable[Item], title: str = "Hostile source") -> bytes:
    """An RSS 2.0 feed with content:encoded."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
             'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
             f"<title>{xml_text(title)}</title><link>{SITE}/</link><description>d</description>"]
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{xml_text(item.title)}</title><guid isPermaLink=\"false\">{xml_text(item.guid)}</guid>")
        if item.link is not None:
            parts.append(f"<link>{xml_text(item.link)}</link>")
        if item.published is not None:
            parts.append(f"<pubDate>{xml_text(item.published)}</pubDate>")
        if item.summary is not None:
            parts.append(f"<description>{xml_text(item.summary)}</description>")
        if item.content is not None:
            parts.append(f"<content:encoded>{xml_text(item.content)}</content:encoded>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8", "surrogatepass")


def atom(items: Iterable[Item], title: str = "Hostile source") -> bytes:
    """An Atom 1.0 feed with ``type="html"`` content and summary."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
             f'<title>{xml_text(title)}</title><id>{SITE}/</id><updated>2026-03-02T10:00:00Z</updated>'
             f'<link href="{SITE}/"/>']
    for item in items:
        parts.append(f"<entry><id>{xml_text(item.guid)}</id><title type=\"html\">{xml_text(item.title)}</title>")
        if item.link is not None:
            parts.append(f'<link rel="alternate" href="{xml_text(item.link)}"/>')
        if item.published is not None:
            parts.append(f"<updated>{xml_text(item.published)}</updated>")
        if item.summary is not None:
            parts.append(f'<summary type="html">{xml_text(item.summary)}</summary>')
        if item.content is not None:
            parts.append(f'<content type="html">{xml_text(item.content)}</content>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "".join(parts).encode("utf-8", "surrogatepass")


def _no_fetching(url: str) -> Any:
    raise AssertionError(f"preparing a body fetched {url}")


class _NoMedia:
    """No image was ever uploaded (preparing a body uploads nothing)."""

    def get(self, source_url: str) -> tuple[str, str] | None:
        return None

    def put(self, source_url: str, remote_id: str, remote_url: str) -> None:
        raise AssertionError("preparing a body uploaded an image")

    def forget(self, source_url: str) -> None:
        return None


class Delivery:
    """One source and one partner of each kind, as a user would configure them."""

    def __init__(self, folder: Path, rules: RewriteRules = RewriteRules()) -> None:
        data: dict[str, Any] = {
            "sources": {"hostile": {"name": "Hostile <Source> & Co", "site_url": SITE, "feed": FEED_URL,
                                    "license": "permission"}},
            "partners": {
                "files": {"name": "Files", "kind": "files", "path": "out", "base_url": "https://files.example"},
                "wordpress": {"name": "WordPress", "kind": "wordpress", "url": "https://wp.example",
                              "username": "author", "password": {"env": "SYNDICATE_UNUSED_SECRET"}},
                "ghost": {"name": "Ghost", "kind": "ghost", "url": "https://ghost.example",
                          "admin_api_key": {"env": "SYNDICATE_UNUSED_SECRET"}},
            },
        }
        self.config: Config = parse_config(data, folder / "syndicate.toml")
        self.source: SourceConfig = self.config.sources["hostile"]
        self.partners: dict[str, PartnerConfig] = {pid: self.config.partners[pid] for pid in PARTNER_KINDS}
        context = PublishContext(fetch_image=_no_fetching, media=_NoMedia(), base_dir=folder)
        self.publishers = {pid: make_publisher(partner, context) for pid, partner in self.partners.items()}
        self.renderer = Renderer(None)
        self.context = SourceContext(source="hostile", feed_url=FEED_URL, site_url=SITE, aliases=(),
                                     author=None, rules=rules)

    def entries(self, data: bytes) -> list[Entry]:
        """The feed's entries (ParseError when the feed is refused: nothing of it goes out)."""
        return list(parse_bytes(data, self.context).entries)

    def delivered(self, entry: Entry) -> dict[str, str]:
        """What each partner receives for ``entry``: kind → HTML (the files partner's whole page)."""
        out: dict[str, str] = {}
        for pid, partner in self.partners.items():
            slug = "a-post"
            article = self.renderer.article(entry=entry, source=self.source, partner=partner,
                                            verdict=Verdict(allowed=True), body=entry.content, series=[],
                                            image=entry.images[0] if entry.images else None, slug=slug)
            publisher = self.publishers[pid]
            sent = publisher.prepare_html(article.html)
            if pid == "files":
                from dataclasses import replace

                out[pid] = self.renderer.files_page(partner, replace(article, html=sent),
                                                    f"{partner.base_url}/{slug}/")  # type: ignore[attr-defined]
            else:
                out[pid] = sent
        return out


def parse_or_none(delivery: Delivery, data: bytes) -> list[Entry] | None:
    """The entries, or None when the feed is refused (a ParseError: a refusal is an outcome, not a crash)."""
    try:
        return delivery.entries(data)
    except ParseError:
        return None


def body_allowlist(embed_hosts: Iterable[str]) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """The sanitiser's allowlist as the browser check reads it: tag → attributes, and embed hosts."""
    every_tag = frozenset(ALLOWED_ATTRIBUTES.get("*", ()))  # nh3's "generic attributes"
    tags = {tag: frozenset(ALLOWED_ATTRIBUTES.get(tag, ())) | every_tag for tag in ALLOWED_TAGS}
    return tags, frozenset(h.lower() for h in embed_hosts)


_FILES_HEAD = {"meta": frozenset({"charset", "name", "content"}), "title": frozenset(),
               "link": frozenset({"rel", "href"}), "style": frozenset()}
#: The files page template's own elements (templates/default/files_page.html): (parent, tag) → attributes.
#: A page that is a part of a shared page ("#part") has its head elements in its part: the HTML parser
#: puts them where it meets them once <body> is open, and tokenises them (a <title>'s RCDATA) alike.
FILES_SCAFFOLDING: Mapping[tuple[str, str], frozenset[str]] = {
    **{("head", tag): attributes for tag, attributes in _FILES_HEAD.items()},
    **{("#part", tag): attributes for tag, attributes in _FILES_HEAD.items()},
    ("body", "article"): frozenset(),
    ("#part", "article"): frozenset(),
    ("article", "header"): frozenset(),
    ("header", "h1"): frozenset(),
    ("header", "p"): frozenset(),
    ("article", "figure"): frozenset({"class"}),
    ("figure", "img"): frozenset({"src", "alt"}),
    ("figure", "figcaption"): frozenset(),
}
