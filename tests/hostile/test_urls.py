"""URLs that Python and browsers read differently, and URLs that are not URLs at all.

The oracle here is Ada (``ada_url``), the WHATWG URL parser Node.js uses, called directly: it reads a
URL the way Chromium and Firefox do. Every function that takes a URL from a feed is attacked with
generated hostile spellings (backslashes, tabs and newlines inside, userinfo, numeric and Unicode
hosts, broken IPv6 brackets, script schemes in every case), and must:

* never raise (an invalid URL is data, not an exception),
* emit only URLs that are their own WHATWG serialisation (what we checked is what we emit),
* emit only URLs whose host, as the browser reads it, is the host we allowed,
* emit nothing outside the allowed schemes.
"""

from __future__ import annotations

from typing import Any

import ada_url
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from syndicate import urls
from syndicate.config import DEFAULT_EMBED_HOSTS
from syndicate.feeds import SourceContext, parse_bytes
from syndicate.fetch import BadURL, BlockedAddress, Fetcher, _target
from syndicate.models import RewriteRules
from syndicate.publishers.wordpress import oembed_url, wordpress_body, wordpress_embeds
from syndicate.rewrite import clean, retarget

from ..test_fetch import forbid_network

SCHEMES = ["http", "https", "HTTP", "hTtPs", "javascript", "JaVaScRiPt", "java\tscript", "java\nscript",
           "java\rscript", "vbscript", "data", "file", "mailto", "ftp", ""]
SEPARATORS = ["://", ":\\\\", ":/\\", ":\\/", ":", ":///", ":/", "\t://", ":/\t/"]
HOSTS = ["evil.example", "www.youtube.com", "player.vimeo.com", "blog.example", "127.0.0.1", "0x7f.1",
         "2130706433", "0177.0.0.1", "127.1", "[::1]", "[::ffff:127.0.0.1]", "[oops", "[bad", "[::ffff:7f00:1",
         "\u246f\u2468\u3002\u2461\u2464\u2463\u3002\u246f\u2468\uff61\u2461\u2464\u2463",
         "%31%32%37.0.0.1", "xn--", "WWW.YOUTUBE.COM", "www.youtube.com.", "169.254.169.254", "10.0.0.1"]
JUNK = ["\\", "@", "\t", "\n", "\r", " ", "%", "[", "]", "#", "?", "\x00", "\x01", "\x1f", '"', "'", "<", ">",
        "&", "/", ":", "%5C", "%40", "%2F", "\u3002", "\uff0e", "utm_source=x", "a=1", "&#x09;"]
PATHS = ["/embed/abcdefgh", "/video/123", "/", "/post/", "", "/a?utm_source=x&b=2#f", "/\\evil.example"]

hostile_url = st.one_of(
    st.builds(lambda *parts: "".join(parts), st.sampled_from(SCHEMES), st.sampled_from(SEPARATORS),
              st.lists(st.sampled_from(JUNK + HOSTS), max_size=3).map("".join), st.sampled_from(HOSTS),
              st.lists(st.sampled_from(JUNK), max_size=2).map("".join), st.sampled_from(PATHS)),
    st.lists(st.sampled_from(SCHEMES + SEPARATORS + HOSTS + JUNK + PATHS), max_size=8).map("".join),
    st.text(max_size=40),
)
HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALLOWED_LINK_SCHEMES = {"http", "https", "mailto"}
URL_ATTRIBUTES = ("href", "src", "poster", "cite")


def browser_reads(value: str) -> Any:
    """What a browser makes of an absolute URL (ada's reading); None when it is no URL."""
    try:
        return ada_url.parse_url(value)
    except ValueError:
        return None


def emitted_urls(html: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) for every URL we emitted, as an HTML5 parser reads the attributes."""
    found = []
    body = LexborHTMLParser("<body>" + html).body
    for node in body.traverse() if body is not None else []:
        for name in URL_ATTRIBUTES:
            value = node.attrs.get(name)
            if value is not None:
                found.append((node.tag, name, value))
        srcset = node.attrs.get("srcset")
        for candidate in (srcset or "").split(","):
            if candidate.strip():
                found.append((node.tag, "srcset", candidate.split()[0]))
    return found


def assert_checked_urls(html: str, embed_hosts: tuple[str, ...] = DEFAULT_EMBED_HOSTS) -> None:
    """Every URL in ``html`` is its own serialisation, in an allowed scheme, and iframes are on allowed hosts."""
    for tag, name, value in emitted_urls(html):
        parts = browser_reads(value)
        assert parts is not None, f"{tag} {name}={value!r} is no URL"
        assert parts["href"] == value, f"{tag} {name}={value!r} is not serialised ({parts['href']!r})"
        scheme = parts["protocol"].rstrip(":")
        allowed = ALLOWED_LINK_SCHEMES if name in ("href", "cite") else {"http", "https"}
        assert scheme in allowed, f"{tag} {name}={value!r}: scheme {scheme}"
        if tag == "iframe":
            assert parts["hostname"] in embed_hosts, f"iframe on {parts['hostname']!r} ({value!r})"


# ------------------------------------------------------------------------------------ urls.py


@HYPOTHESIS
@given(text=hostile_url, base=st.one_of(st.none(), st.sampled_from(["https://blog.example/post/", "http://[oops",
                                                                     "not a url", "javascript:x"]), hostile_url))
def test_the_one_parser_never_raises_and_agrees_with_the_browser(text: str, base: str | None) -> None:
    url = urls.parse(text, base)
    if url is None:
        return
    again = browser_reads(url.href)
    assert again is not None and again["href"] == url.href
    assert again["hostname"] == url.host
    assert again["protocol"] == url.scheme + ":"
    # every part we read is the part the browser reads
    assert (url.username, url.password) == (again["username"], again["password"])
    assert url.port == (int(again["port"]) if again["port"] else None)
    assert (url.path, "?" + url.query if url.query else "", "#" + url.fragment if url.fragment else "") == (
        again["pathname"], again["search"], again["hash"])
    if url.is_web:
        assert not any(c in url.href for c in " \t\n\r<>")


@HYPOTHESIS
@given(text=hostile_url)
@example("http://[bad?x=1")
@example("http://[oops")
def test_url_helpers_never_raise(text: str) -> None:
    site = urls.SiteIdentity("https://www.blog.example", ("old.example", "[oops", "0x7f.1"))
    site.owns(text)
    key = site.key(text)
    assert key is None or key.startswith("blog.example")
    urls.url_key(text)
    urls.slug_from_url(text)
    stripped = urls.clean_url(text)
    if stripped is not None:
        assert not any(p.startswith("utm_") for p in stripped.query.split("&"))
        again = browser_reads(stripped.href)  # what we rebuilt is still a serialised URL, read the same way
        assert again["href"] == stripped.href and again["search"] == ("?" + stripped.query if stripped.query else "")
    urls.strip_tracking(text)
    href = urls.safe_href(text)
    assert href is None or browser_reads(href)["protocol"].rstrip(":") in ALLOWED_LINK_SCHEMES
    urls.host_of(text)


@pytest.mark.parametrize("spelling", [
    "javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:alert(1)", "\x01javascript:alert(1)",
    "java\tscript:alert(1)", "java\nscript:alert(1)", "jav\r\nascript:alert(1)", "\x00javascript:alert(1)",
    "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>", "file:///etc/passwd",
])
def test_script_schemes_are_never_safe_hrefs(spelling: str) -> None:
    assert urls.safe_href(spelling) is None
    assert urls.safe_href(spelling, "https://blog.example/") is None


# ---------------------------------------------------------------------------------- rewrite.py


@pytest.mark.parametrize("src", [
    "https://evil.example\\@www.youtube.com/embed/x",
    "https://evil.example%5C@www.youtube.com/embed/x",
    "https:\\\\evil.example\\@www.youtube.com/embed/x",
    "https://evil.example\t\\@www.youtube.com/embed/x",
    "https://www.youtube.com.evil.example/embed/x",
    "//evil.example\\@www.youtube.com/embed/x",
])
def test_an_embed_is_on_the_host_the_browser_loads(src: str) -> None:
    out = clean(f'<iframe src="{src}"></iframe>', "https://blog.example/post/").html
    assert "evil.example" not in out
    assert_checked_urls(out)


@HYPOTHESIS
@given(src=hostile_url)
@example("https://evil.example\\@www.youtube.com/embed/x")
def test_every_iframe_we_keep_is_on_an_allowed_host_as_the_browser_reads_it(src: str) -> None:
    html = f'<iframe src="{src.replace("&", "&amp;").replace(chr(34), "&quot;")}"></iframe>'
    out = clean(html, "https://blog.example/post/").html
    assert_checked_urls(out)


@pytest.mark.parametrize("attribute", ['<blockquote cite="{}">q</blockquote>', '<q cite="{}">q</q>',
                                       '<del cite="{}">d</del>', '<ins cite="{}">i</ins>', '<a href="{}">a</a>',
                                       '<img src="{}">', '<video poster="{}"></video>', '<img srcset="{} 2x">'])
@pytest.mark.parametrize("spelling", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "java&#x09;script:alert(1)",
                                      "java&#10;script:alert(1)", "&#x01;javascript:alert(1)",
                                      " javascript:alert(1)", "javascript&colon;alert(1)", "vbscript:x",
                                      "data:text/html,x", "jav&NewLine;ascript:alert(1)"])
def test_script_urls_are_removed_from_every_url_attribute(attribute: str, spelling: str) -> None:
    out = clean(attribute.format(spelling), "https://blog.example/post/").html
    assert_checked_urls(out)
    assert "script" not in out.lower() and "data:" not in out


@HYPOTHESIS
@given(value=hostile_url, tag=st.sampled_from(['<a href="{}">a</a>', '<img src="{}" srcset="{} 1x">',
                                               '<blockquote cite="{}">q</blockquote>', '<video poster="{}" src="{}">',
                                               '<iframe src="{}"></iframe>']),
       base=st.sampled_from([None, "https://blog.example/post/"]))
def test_clean_emits_only_checked_serialised_urls(value: str, tag: str, base: str | None) -> None:
    attribute = value.replace("&", "&amp;").replace('"', "&quot;")
    out = clean(tag.replace("{}", attribute), base).html
    assert_checked_urls(out)


@HYPOTHESIS
@given(href=hostile_url, copy=hostile_url)
def test_retargeting_never_raises_and_writes_only_checked_copy_urls(href: str, copy: str) -> None:
    site = urls.SiteIdentity("https://blog.example", ("old.example",))
    key = site.key(href)
    html = clean(f'<a href="{href.replace("&", "&amp;").replace(chr(34), "&quot;")}">x</a>',
                 "https://blog.example/").html
    out = retarget(html, site, {key: copy} if key else {"blog.example/": copy})
    assert_checked_urls(out)


def test_a_link_is_retargeted_only_when_the_browser_reads_it_as_the_source_own() -> None:
    site = urls.SiteIdentity("https://blog.example")
    copies = {"blog.example/one": "https://mag.example/one/"}
    # urllib reads blog.example; a browser goes to evil.example
    out = retarget('<a href="https://evil.example\\@blog.example/one">x</a>', site, copies)
    assert "mag.example" not in out
    out = retarget('<a href="HTTPS://BLOG.example/one?utm_source=x">x</a>', site, copies)
    assert 'href="https://mag.example/one/"' in out


# ------------------------------------------------------------------------------------- feeds.py

CTX = SourceContext(source="s", feed_url="https://blog.example/feed/", site_url="https://blog.example",
                    aliases=(), author=None, rules=RewriteRules())
#: A local file feed: feedparser then hands the link over as written (with a base it drops what it cannot join).
LOCAL_CTX = SourceContext(source="s", feed_url=None, site_url="https://blog.example", aliases=(), author=None,
                          rules=RewriteRules())


def _rss(link: str, body: str = "<p>text</p>", guid: str = "urn:g-1") -> bytes:
    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = "".join(c for c in link if c >= " " or c in "\t\n")  # XML 1.0 cannot carry other controls
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://blog.example/</link>'
            f"<item><title>a</title><link>{esc(text)}</link><guid>{esc(guid)}</guid>"
            f"<description>{esc(body)}</description></item>"
            f"<item><title>b</title><link>https://blog.example/b/</link><guid>urn:g-2</guid></item>"
            f"</channel></rss>").encode()


@pytest.mark.parametrize("link", ["http://[bad?x=1", "http://[oops", "https://[::1/x", "http://a b/",
                                  "http://ex.com:99999/"])
@pytest.mark.parametrize("ctx", [CTX, LOCAL_CTX], ids=["remote", "local"])
def test_one_invalid_link_is_data_and_does_not_fail_the_feed(link: str, ctx: SourceContext) -> None:
    parsed = parse_bytes(_rss(link), ctx)
    assert [e.guid for e in parsed.entries] == ["urn:g-1", "urn:g-2"]
    assert parsed.entries[0].url is None
    assert parsed.entries[1].url == "https://blog.example/b/"


@HYPOTHESIS
@given(link=hostile_url, guid=st.one_of(st.just("urn:g-1"), hostile_url.filter(str.strip)), href=hostile_url,
       ctx=st.sampled_from([CTX, LOCAL_CTX]))
def test_every_entry_url_is_a_checked_serialised_web_url(link: str, guid: str, href: str, ctx: SourceContext) -> None:
    body = f'<p><a href="{href.replace("&", "&amp;").replace(chr(34), "&quot;")}">x</a></p><img src="{link}">'
    parsed = parse_bytes(_rss(link, body, guid), ctx)
    assert len(parsed.entries) == 2
    for entry in parsed.entries:
        if entry.url is not None:
            parts = browser_reads(entry.url)
            assert parts is not None and parts["href"] == entry.url
            assert parts["protocol"] in ("http:", "https:") and parts["hostname"]
        for image in entry.images:
            parts = browser_reads(image.url)
            assert parts is not None and parts["href"] == image.url and parts["protocol"] in ("http:", "https:")
        assert_checked_urls(entry.content)


# ------------------------------------------------------------------------------ WordPress shaping


@HYPOTHESIS
@given(text=hostile_url, wrap=st.sampled_from(["<p>{}</p>", "{}", "<pre>\n{}\n</pre>", "<p>a<br>\n{}\n</p>"]))
@example(text="http://[oops", wrap="<p>{}</p>")
def test_wordpress_body_shaping_never_raises_and_links_only_checked_urls(text: str, wrap: str) -> None:
    from html import escape

    wordpress_embeds(wrap.format(escape(text)))
    wordpress_body(wrap.format(escape(text)))
    oembed_url(text)
    iframe = f'<iframe src="{escape(text)}"></iframe>'
    for html in (wrap.format(escape(text)), wrap.format(iframe), iframe):
        assert_checked_urls(wordpress_body(clean(html, "https://blog.example/post/").html))


# --------------------------------------------------------------------------------- the fetcher

SSRF_SPELLINGS = [
    "http://127.0.0.1\\@evil.example/feed",  # urllib: evil.example; a browser and our fetcher: 127.0.0.1
    "http://127.0.0.1\\evil.example/feed",
    "http://0x7f.1/", "http://2130706433/", "http://0177.0.0.1/", "http://127.1/", "http://0x7f000001/",
    "http://%31%32%37.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:0:0:1]/",
    "http://12\t7.0.0.1/", "http://127.0.0.1\n/", "HTTP://169.254.169.254/latest/meta-data/",
    "http://\u246f\u2468\u3002\u2461\u2464\u2463\u3002\u246f\u2468\uff61\u2461\u2464\u2463/",
    "http://user:pw@10.0.0.1:8080/", "http:\\\\10.0.0.1\\feed", "http:/10.0.0.1/", "http:10.0.0.1/",
]


@pytest.mark.parametrize("url", SSRF_SPELLINGS)
def test_internal_addresses_are_refused_however_they_are_spelled(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    forbid_network(monkeypatch)
    with pytest.raises(BlockedAddress):
        Fetcher().get(url)


@HYPOTHESIS
@given(url=hostile_url)
@example("http://127.0.0.1\\@evil.example/")
def test_the_fetcher_checks_and_requests_the_host_the_browser_reads(url: str) -> None:
    try:
        target = _target(url, redirect=False)
    except BadURL:
        return
    parts = browser_reads(url.strip())
    assert parts is not None
    assert target.host == parts["hostname"].strip("[]").rstrip(".")
    # what we send is built from that host: re-parsing our request URL gives the same host
    again = browser_reads(target.url)
    assert again is not None and again["hostname"].strip("[]") == target.host


# ------------------------------------------------------------------------- the whole run, end to end

HOSTILE_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>B</title><link>https://blog.example/</link>
<item><title>Oops</title><link>https://blog.example/oops/</link><guid>g1</guid>
<pubDate>Mon, 01 Jun 2026 08:00:00 +0000</pubDate><description>&lt;p&gt;http://[oops&lt;/p&gt;
&lt;p&gt;&lt;a href="http://[bad?x=1"&gt;x&lt;/a&gt;&lt;img src="http://[::1"&gt;&lt;/p&gt;</description></item>
<item><title>Bad link</title><link>http://[bad?x=1</link><guid>g2</guid>
<pubDate>Mon, 01 Jun 2026 09:00:00 +0000</pubDate><description>&lt;p&gt;ok&lt;/p&gt;</description></item>
<item><title>Fine</title><link>https://blog.example/fine/</link><guid>g3</guid>
<pubDate>Mon, 01 Jun 2026 10:00:00 +0000</pubDate><description>&lt;p&gt;ok&lt;/p&gt;</description></item>
</channel></rss>"""


def test_invalid_urls_in_a_local_feed_crash_nothing_with_a_wordpress_partner(tmp_path: Any) -> None:
    """``preview`` shapes the body for WordPress without reaching it: the run must go on, every entry there."""
    import json

    from ..conftest import CLI

    (tmp_path / "feed.xml").write_text(HOSTILE_FEED)
    config = tmp_path / "syndicate.toml"
    config.write_text("""
[sources.blog]
name = "blog.example"
site_url = "https://blog.example"
feed = "feed.xml"
license = "CC-BY-4.0"
[partners.wp]
name = "WP"
kind = "wordpress"
url = "http://127.0.0.1:9"
username = "author"
password = { env = "SYNDICATE_TEST_WP_PASSWORD" }
""")
    config.chmod(0o600)
    run = CLI(config)
    for guid in ("g1", "g2", "g3"):
        result = run("preview", guid, "--format", "json", env={"SYNDICATE_TEST_WP_PASSWORD": "x y z"})
        assert result.exit_code == 0, result.output
        [partner] = json.loads(result.output)["partners"]
        assert partner["action"] == "create"
        assert_checked_urls(partner["html"])
