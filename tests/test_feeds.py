"""Parsing: formats, normalisation, licences, images, and hostile feeds in isolated workers."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest

from syndicate.feeds import ParseBudget, ParseError, ParserPool, SourceContext, parse_bytes
from syndicate.rewrite import RewriteRules

from .conftest import CLI, shared_path
from .safety import problems, relative_urls

CTX = SourceContext(source="s", feed_url="https://blog.example/feed/", site_url="https://blog.example",
                    aliases=(), author="Fallback Author", rules=RewriteRules())


def rss(items: str, channel: str = "", ns: str = "") -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0" {ns}><channel><title>B</title><link>https://blog.example/</link>'
            f"{channel}{items}</channel></rss>").encode()


def test_rss_entry_normalised() -> None:
    feed = rss("""<item><title> A   post </title><link>https://blog.example/a/?utm_source=rss</link>
      <guid isPermaLink="false">tag:blog,1</guid><pubDate>Mon, 25 Mar 2019 08:00:00 +0100</pubDate>
      <category>One</category><category>Two</category><description>&lt;p&gt;Sum &lt;b&gt;mary&lt;/b&gt;&lt;/p&gt;</description>
      <enclosure url="https://blog.example/i.jpg" type="image/jpeg" length="1"/></item>""")
    [entry] = parse_bytes(feed, CTX).entries
    assert entry.guid == "tag:blog,1"
    assert entry.url == "https://blog.example/a/"
    assert entry.title == "A post"
    assert entry.author == "Fallback Author"
    assert entry.published == dt.datetime(2019, 3, 25, 7, 0, tzinfo=dt.timezone.utc)
    assert entry.categories == ("One", "Two")
    assert entry.summary == "Sum mary"
    assert [i.url for i in entry.images] == ["https://blog.example/i.jpg"]
    assert entry.content_hash


def test_guid_falls_back_to_link_then_a_stable_hash() -> None:
    [with_link] = parse_bytes(rss("<item><title>t</title><link>https://blog.example/x/</link></item>"), CTX).entries
    assert with_link.guid == "https://blog.example/x/"
    feed = rss("<item><title>t</title><description>d</description></item>")
    first, second = parse_bytes(feed, CTX).entries[0], parse_bytes(feed, CTX).entries[0]
    assert first.guid.startswith("sha256:") and first.guid == second.guid
    assert first.url is None


def test_atom_author_and_updated() -> None:
    feed = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><author><name>Feed Author</name></author>
      <entry><id>https://blog.example/p/1</id><title type="text">&lt;b&gt;bold&lt;/b&gt;</title>
      <updated>2026-01-02T03:04:05Z</updated><content type="text">&lt;script&gt;x&lt;/script&gt;</content></entry></feed>"""
    [entry] = parse_bytes(feed, CTX).entries
    assert entry.author == "Feed Author"
    assert entry.url == "https://blog.example/p/1"  # a URL id stands in for a missing link
    assert entry.updated == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert entry.title == "<b>bold</b>"  # text, escaped when rendered
    assert entry.content == "<p>&lt;script&gt;x&lt;/script&gt;</p>"


@pytest.mark.parametrize(("where", "feed"), [
    ("entry link rel=license", b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>u:1</id>
       <title>t</title><link rel="license" href="https://creativecommons.org/licenses/by-sa/4.0/"/></entry></feed>"""),
    ("channel creativeCommons:license", rss("<item><title>t</title><link>https://blog.example/a</link></item>",
       "<creativeCommons:license>http://creativecommons.org/licenses/by-sa/4.0/</creativeCommons:license>",
       'xmlns:creativeCommons="http://backend.userland.com/creativeCommonsRssModule"')),
    ("entry creativeCommons:license", rss("<item><title>t</title><link>https://blog.example/a</link><creativeCommons:"
       "license>http://creativecommons.org/licenses/by-sa/4.0/</creativeCommons:license></item>", "",
       'xmlns:creativeCommons="http://backend.userland.com/creativeCommonsRssModule"')),
    ("channel atom link rel=license", b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
       <link rel="license" href="http://creativecommons.org/licenses/by-sa/4.0/"/><entry><id>u:1</id><title>t</title>
       </entry></feed>"""),
])
def test_declared_licence(where: str, feed: bytes) -> None:
    [entry] = parse_bytes(feed, CTX).entries
    assert entry.license == "CC-BY-SA-4.0", where


def test_entry_licence_wins_over_channel() -> None:
    feed = rss("<item><title>t</title><link>https://blog.example/a</link><creativeCommons:license>"
               "http://creativecommons.org/licenses/by-nd/4.0/</creativeCommons:license></item>",
               "<creativeCommons:license>http://creativecommons.org/licenses/by/4.0/</creativeCommons:license>",
               'xmlns:creativeCommons="http://backend.userland.com/creativeCommonsRssModule"')
    assert parse_bytes(feed, CTX).entries[0].license == "CC-BY-ND-4.0"


def test_rdf_cc_license() -> None:
    feed = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
      xmlns="http://purl.org/rss/1.0/" xmlns:cc="http://web.resource.org/cc/">
      <channel rdf:about="https://blog.example/"><title>t</title><link>https://blog.example/</link>
      <cc:license rdf:resource="http://creativecommons.org/licenses/by-nc/3.0/"/></channel>
      <item rdf:about="https://blog.example/a"><title>a</title><link>https://blog.example/a</link></item></rdf:RDF>"""
    assert parse_bytes(feed, CTX).entries[0].license == "CC-BY-NC-3.0"


def test_media_credit_and_thumbnail() -> None:
    feed = rss("""<item><title>t</title><link>https://blog.example/a</link>
      <media:content url="/img/a.jpg" medium="image"><media:credit>Photo: Jo</media:credit></media:content>
      <media:thumbnail url="https://blog.example/img/t.jpg"/></item>""", "", 'xmlns:media="http://search.yahoo.com/mrss/"')
    [entry] = parse_bytes(feed, CTX).entries
    assert [(i.url, i.credit) for i in entry.images] == [("https://blog.example/img/a.jpg", "Photo: Jo"),
                                                          ("https://blog.example/img/t.jpg", "Photo: Jo")]


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty body"),
    (b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>hi</p></body></html>", "HTML page"),
    (b"this is not xml at all <<<", "not a feed"),
])
def test_unusable_feeds_have_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_bytes(data, CTX)


def test_a_feed_with_errors_but_entries_is_used_with_a_warning() -> None:
    parsed = parse_bytes(rss("<item><title>a & b</title><link>https://blog.example/a</link></item>"), CTX)
    assert len(parsed.entries) == 1 and parsed.warning and "parsed with errors" in parsed.warning


def test_hostile_feeds_are_bounded_and_reported() -> None:
    # 150 KB of author: feedparser's regex needs minutes on it (48 KB took 33 s), against a 3 s budget
    author = "a" * 150_000 + "@" + "b" * 200
    redos = rss(f"<item><title>t</title><link>https://blog.example/a</link><author>{author}</author></item>")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
                         for i in range(1, 10))
              + b']><rss version="2.0"><channel><title>&lol9;</title><item><title>t</title>'
                b"<link>https://blog.example/a</link><description>&lol9;</description></item></channel></rss>")
    xxe = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>'
           b'<rss version="2.0"><channel><title>t</title><item><title>t</title><link>https://blog.example/a</link>'
           b"<description>&xxe;</description></item></channel></rss>")
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "\x00never"
    good = rss("<item><title>fine</title><link>https://blog.example/fine</link></item>")
    with ParserPool(workers=2, budget=ParseBudget(base_seconds=3, seconds_per_megabyte=0)) as pool:
        start = time.monotonic()
        with pytest.raises(ParseError, match="longer than 3 s"):
            pool.parse(redos, CTX)
        assert time.monotonic() - start < 8
        for data in (laughs, xxe):
            try:
                parsed = pool.parse(data, CTX)
            except ParseError:
                continue
            for entry in parsed.entries:
                assert len(entry.content) < 100_000 and len(entry.title) < 100_000
                assert hostname not in entry.content
        assert pool.parse(good, CTX).entries[0].title == "fine"  # the pool still works after a kill


def _manifest_counts() -> dict[str, int]:
    text = shared_path("corpus", "real-feeds", "MANIFEST.txt").read_text()
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+\.xml)\n(?:.*\n){2}.*? fp_n=\s*(\d+)", text, re.M)}


def test_real_feeds_corpus_parses() -> None:
    folder = shared_path("corpus", "real-feeds")
    counts = _manifest_counts()
    assert len(counts) == 30
    with ParserPool() as pool:
        for name, expected in counts.items():
            ctx = SourceContext(source="s", feed_url=f"https://feeds.example/{name}", site_url="https://feeds.example",
                                aliases=(), author=None, rules=RewriteRules())
            try:
                parsed = pool.parse((folder / name).read_bytes(), ctx)
            except ParseError:
                assert expected == 0, name
                continue
            assert len(parsed.entries) == expected, name
            for entry in parsed.entries:
                assert entry.guid and entry.title, name
                assert problems(entry.content) == [], (name, entry.guid)


def test_real_feeds_through_the_whole_pipeline(tmp_path: Path) -> None:
    folder = shared_path("corpus", "real-feeds")
    lines = ['[partners.mag]\nname = "Mag"\nkind = "files"\npath = "out"\nbase_url = "https://mag.example"\n']
    for i, path in enumerate(sorted(folder.glob("*.xml"))):
        lines.append(f'[sources.f{i}]\nname = "f{i}"\nsite_url = "https://site{i}.example"\nfeed = "{path}"\n'
                     'license = "CC-BY-4.0"\n')
    config = tmp_path / "syndicate.toml"
    config.write_text("\n".join(lines))
    result = CLI(config)("sync")
    assert result.exit_code == 1  # one malformed feed yields nothing and is reported
    assert "feed f" in result.output and "1 failed" in result.output
    copies = list((tmp_path / "out").glob("*.json"))
    assert len(copies) > 500
    for path in copies:
        html = json.loads(path.read_text())["html"]
        assert problems(html) == [], path.name
        assert relative_urls(html) == [], path.name


@pytest.mark.parametrize("kind", ["encoding", "illformed"])
def test_feedparser_encoding_and_illformed_cases(kind: str) -> None:
    folder = shared_path("corpus", "feedparser-tests", kind)
    files = sorted(p for p in folder.rglob("*.xml"))
    assert files
    with ParserPool() as pool:
        for path in files:
            try:
                parsed = pool.parse(path.read_bytes(), CTX)
            except ParseError:
                continue
            for entry in parsed.entries:
                assert problems(entry.content) == [], path.name
