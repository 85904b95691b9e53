"""Nothing we send to WordPress may be auto-embedded unless it is an allowed embed.

The oracle is a port of WordPress 6.1's ``WP_Embed::autoembed`` (wp-includes/class-wp-embed.php),
written here on its own (not shared with the code under test), on bytes as PHP's PCRE sees them
(no ``/u``: ``\\s`` is ASCII whitespace, ``[^\\s<>"]`` takes any other byte):

1. ``wp_replace_in_html_tags($content, ["\\n" => "<!-- wp-line-break -->"])``: newlines inside
   tags, comments and CDATA (as ``get_html_split_regex`` finds them) are not line breaks;
2. if ``#(^|\\s|>)https?://#i`` matches, every match of ``|^(\\s*)(https?://[^\\s<>"]+)(\\s*)$|im``
   (a URL alone on its line, after trimming) and then of
   ``|(<p(?: [^>]*)?>\\s*)(https?://[^\\s<>"]+)(\\s*<\\/p>)|i`` (alone in a paragraph) goes to
   ``WP_Embed::shortcode``, which embeds it for any provider or handler it knows.

kses runs before that for an Author-role user and strips tags it does not allow (``<time>``,
``<picture>``, ``<source>``… are not in ``$allowedposttags``), which can leave a URL alone on its
line; so the oracle is also run on the body with every tag but ``<p>`` removed.
"""

from __future__ import annotations

import html as htmllib
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from syndicate.publishers.wordpress import wordpress_body
from syndicate.rewrite import clean

_COMMENT = rb"!(?:-(?!->)[^\-]*+)*+(?:-->)?"
_CDATA = rb"!\[CDATA\[[^\]]*+(?:](?!]>)[^\]]*+)*+(?:]]>)?"
# PCRE: '/(<(?(?=!--|!\[CDATA\[)(?(?=!-)COMMENT|CDATA)|[^>]*>?))/' — conditionals as alternatives.
HTML_SPLIT = re.compile(rb"(<(?:(?=!--)" + _COMMENT + rb"|(?=!\[CDATA\[)" + _CDATA + rb"|(?!!--|!\[CDATA\[)[^>]*>?))")
PRECHECK = re.compile(rb"(^|\s|>)https?://", re.I)
OWN_LINE = re.compile(rb'^(\s*)(https?://[^\s<>"]+)(\s*)$', re.I | re.M)
OWN_PARAGRAPH = re.compile(rb'(<p(?: [^>]*)?>\s*)(https?://[^\s<>"]+)(\s*<\/p>)', re.I)
ALLOWED = re.compile(rb"https://www\.youtube\.com/watch\?v=[\w-]{6,20}|https://vimeo\.com/\d+")


def wp_replace_in_html_tags(content: bytes) -> bytes:
    """Newlines inside every element (odd pieces of the split) become ``<!-- wp-line-break -->``."""
    pieces = HTML_SPLIT.split(content)
    for i in range(1, len(pieces), 2):
        pieces[i] = pieces[i].replace(b"\n", b"<!-- wp-line-break -->")
    return b"".join(pieces)


def autoembedded(content: str) -> list[str]:
    """Every URL ``WP_Embed::autoembed`` would hand to ``WP_Embed::shortcode`` for this post content."""
    data = wp_replace_in_html_tags(content.encode("utf-8"))
    if not PRECHECK.search(data):
        return []
    found = [m.group(2) for m in OWN_LINE.finditer(data)]
    # preg_replace_callback runs the second pattern on the first one's output; an unembedded URL is
    # returned as it was, so the paragraph pattern sees the same text.
    found += [m.group(2) for m in OWN_PARAGRAPH.finditer(data)]
    return [url.decode("utf-8", "replace") for url in found]


def kses_stripped(content: str) -> str:
    """The worst kses can do to the lines: every tag but ``<p>``/``</p>`` removed, text kept."""
    return re.sub(r"<(?!/?p[\s>])[^>]*>", "", content)


def not_allowed(content: str) -> list[str]:
    return [u for u in autoembedded(content) if not ALLOWED.fullmatch(u.encode())]


URLS = ["https://twitter.com/jack/status/20", "HTTPS://TWITTER.COM/jack/status/20", "http://x.example/a.mp4",
        "https://www.youtube.com/watch?v=abcdefgh", "https://vimeo.com/123", "https://www.tiktok.com/@a/video/1",
        "http://[oops", "https://ex.example/a?b=1&amp;c=2", "https://youtu.be/abcdefgh",
        "https://evil.example\\@www.youtube.com/watch?v=abcdefgh"]
SPACE = ["\n", " ", "\t", "\r\n", "\x0b", "\x0c", "\u00a0", "&nbsp;", ""]
TAGS = ["<p>", "</p>", '<p class="x">', "<pre>", "</pre>", "<code>", "</code>", "<time>", "</time>", "<br>", "<br/>",
        "<span>", "</span>", '<a href="https://a.example/">', "</a>", "<em>", "</em>", "<div>", "</div>",
        "<blockquote>", "</blockquote>", "<li>", "<picture>", "</picture>", "<!-- c -->", "<!--\n-->"]
WORDS = ["text", "a", "&amp;", ".", "[embed]", "x\ny"]

body = st.lists(st.sampled_from(URLS + SPACE + TAGS + WORDS), max_size=14).map("".join)
HYPOTHESIS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_oracle_finds_what_wordpress_embeds() -> None:
    """The port itself, on cases read from WordPress's code (so a broken oracle cannot pass vacuously)."""
    assert autoembedded("<pre>\nhttps://twitter.com/jack/status/20\n</pre>") == ["https://twitter.com/jack/status/20"]
    assert autoembedded("<p>https://twitter.com/jack/status/20</p>") == ["https://twitter.com/jack/status/20"]
    assert autoembedded("a\n  https://x.example/a.mp4  \nb") == ["https://x.example/a.mp4"]
    assert autoembedded('<a title="x\nhttps://y.example/\n">t</a>') == []  # newlines inside a tag are not lines
    assert autoembedded("see https://x.example/ now") == []
    assert autoembedded("<p>see <a href='https://x.example/'>https://x.example/</a></p>") == []
    assert not_allowed(kses_stripped("a\n<time>https://x.example/</time>\nb")) == ["https://x.example/"]


@HYPOTHESIS
@given(html=body)
@example(html="<pre>\nhttps://twitter.com/jack/status/20\n</pre>")
@example(html="<pre><code>x\nhttps://twitter.com/jack/status/20\n</code></pre>")
@example(html="<p>HTTPS://TWITTER.COM/jack/status/20</p>")
@example(html="a\n<time>https://twitter.com/jack/status/20</time>\nb")
def test_nothing_we_send_is_autoembedded_but_allowed_embeds(html: str) -> None:
    sent = wordpress_body(html)
    assert not_allowed(sent) == [], sent
    assert not_allowed(kses_stripped(sent)) == [], sent
    assert wordpress_body(sent) == sent  # idempotent: the pipeline and create may both apply it


@HYPOTHESIS
@given(html=body)
def test_nothing_from_a_feed_is_autoembedded_after_cleaning(html: str) -> None:
    sent = wordpress_body(clean(html, "https://blog.example/post/").html)
    assert not_allowed(sent) == [], sent
    assert not_allowed(kses_stripped(sent)) == [], sent


@HYPOTHESIS
@given(html=body)
def test_a_reader_sees_the_same_text(html: str) -> None:
    """The shaping changes what WordPress's regex sees, not what a reader reads (text, whitespace aside)."""
    from selectolax.lexbor import LexborHTMLParser

    def text(markup: str) -> str:
        node = LexborHTMLParser("<body>" + markup).body
        return " ".join((node.text(separator=" ") if node is not None else "").split())

    cleaned = clean(html, "https://blog.example/post/").html
    if "<iframe" in cleaned:
        return  # allowed iframes become their page URL: the one change a reader sees (a player)
    sent = wordpress_body(cleaned)
    assert text(sent).replace("[", "").replace("]", "") == text(cleaned).replace("[", "").replace("]", "")


def test_a_url_alone_in_pre_or_code_is_sent_so_wordpress_does_not_embed_it() -> None:
    for html in ("<pre>\nhttps://twitter.com/jack/status/20\n</pre>",
                 "<pre><code>$ curl\nhttps://twitter.com/jack/status/20\n</code></pre>"):
        sent = wordpress_body(html)
        assert autoembedded(sent) == []
        assert "\nhttps://" not in htmllib.unescape(sent) or "&#104;ttps://" in sent
        assert htmllib.unescape(sent) == htmllib.unescape(html)  # the reader sees the same lines
