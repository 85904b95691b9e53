"""Only checked http(s) URLs ever reach an ``href``/``src`` that a template writes.

A feed controls an entry's link and guid. The preview page once wrote ``entry.url or entry.guid``
into an href (a guid ``javascript:alert(1)`` became a link), and a copy's byline read ``href="None"``
when the entry had no http(s) link. These tests push hostile links and guids through ``sync`` and
``preview`` and check every URL attribute of every page we write, as an HTML5 parser reads it,
against the browser's own URL parser (Ada).
"""

from __future__ import annotations

import json
from pathlib import Path

import ada_url
import pytest
from selectolax.lexbor import LexborHTMLParser

from ..conftest import CLI

HOSTILE = [
    ("", "javascript:alert(1)"),
    ("javascript:alert(1)", "urn:x:1"),
    ("", "JaVaScRiPt:alert(document.domain)"),
    ("", "java\tscript:alert(1)"),
    ("data:text/html,<script>alert(1)</script>", "data:text/html,x"),
    ("http://[oops", "vbscript:msgbox(1)"),
    ("https://evil.example\\@blog.example/p/", "tag:blog.example,2026:1"),
    ("", "urn:uuid:1"),
]


def _feed(link: str, guid: str) -> str:
    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    link_xml = f"<link>{esc(link)}</link>" if link else ""
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title><link>https://blog.example/</link>'
            f'<item><title>Hostile</title>{link_xml}<guid isPermaLink="false">{esc(guid)}</guid>'
            f"<pubDate>Mon, 01 Jun 2026 08:00:00 +0000</pubDate><description>&lt;p&gt;x&lt;/p&gt;</description>"
            f"</item></channel></rss>")


def _setup(tmp_path: Path, link: str, guid: str) -> Path:
    (tmp_path / "feed.xml").write_text(_feed(link, guid))
    config = tmp_path / "syndicate.toml"
    config.write_text("""
[sources.blog]
name = "blog.example"
site_url = "https://blog.example"
feed = "feed.xml"
license = "CC-BY-4.0"
[partners.mag]
name = "Mag"
kind = "files"
path = "out"
base_url = "https://mag.example"
""")
    return config


def url_attributes(html: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every href/src in a page, as an HTML5 parser reads them."""
    found = []
    for node in LexborHTMLParser(html).css("[href], [src]"):
        for name in ("href", "src"):
            value = node.attrs.get(name)
            if value is not None:
                found.append((node.tag, name, value))
    return found


def assert_only_checked_web_urls(html: str) -> None:
    for tag, name, value in url_attributes(html):
        try:
            parts = ada_url.parse_url(value)
        except ValueError:
            pytest.fail(f"<{tag} {name}={value!r}> is no URL")
        assert parts["protocol"] in ("http:", "https:"), f"<{tag} {name}={value!r}>"
        assert parts["href"] == value, f"<{tag} {name}={value!r}> is not serialised"


@pytest.mark.parametrize(("link", "guid"), HOSTILE)
def test_pages_we_write_link_only_to_checked_web_urls(tmp_path: Path, link: str, guid: str) -> None:
    run = CLI(_setup(tmp_path, link, guid))
    result = run("sync")
    assert result.exit_code == 0, result.output
    [meta] = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert_only_checked_web_urls(meta["html"])
    assert 'href="None"' not in meta["html"]
    # no http(s) link of its own: the byline names the source and links to its site
    if not link.startswith("https://"):
        assert 'originally published on <a href="https://blog.example/">blog.example</a>' in meta["html"].lower()
    [page] = (tmp_path / "out").glob("*.html")
    assert_only_checked_web_urls(page.read_text())
    preview = tmp_path / "preview.html"
    result = run("preview", guid, "--format", "html", "-o", str(preview))
    assert result.exit_code == 0, result.output
    html = preview.read_text()
    assert_only_checked_web_urls(html)
    assert "None" not in html


@pytest.mark.parametrize("value", [None, "", "None", "javascript:alert(1)", " JAVASCRIPT:x", "data:,x", "//x.example/",
                                   "http://[oops", "mailto:a@b.example", "/relative", 42])
def test_the_template_filter_refuses_what_is_no_http_url(value: object) -> None:
    from syndicate.render import web_href

    assert web_href(value) is None


def test_the_template_filter_gives_the_serialised_url() -> None:
    from syndicate.render import web_href

    assert web_href(" HTTPS://Blog.Example/a b?utm_x=1#f") == "https://blog.example/a%20b?utm_x=1#f"
    assert web_href("https://evil.example\\@blog.example/") == "https://evil.example/@blog.example/"
