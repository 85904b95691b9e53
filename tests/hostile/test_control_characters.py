"""Control characters from a feed: never in an entry's text, a copy, or a preview on a terminal.

XML 1.0 forbids C0 controls but tab, newline and carriage return, yet feeds carry them (ESC, BEL, form
feeds, C1 from a mis-declared charset) and feedparser's loose parser lets them through. Shown as they
are, an ESC sequence repaints the terminal of the author running ``syndicate preview``, and in a copy
they are invisible noise a browser calls a parse error. The invariants, whatever the feed says:

* no C0 control (but tab, newline, carriage return), DEL or C1 control in any text of a parsed entry:
  title, author, summary, categories, content, its images' captions and credits; the words around
  them are kept;
* the guid is not touched (it is the entry's identity: changing it would make a second copy);
* ``preview`` into a pipe has none; ``display.show_document`` on a terminal shows any as an escape.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate import display
from syndicate.feeds import ParseError, SourceContext, parse_bytes
from syndicate.models import Entry, RewriteRules

CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CTX = SourceContext(source="s", feed_url="https://blog.example/feed/", site_url="https://blog.example",
                    aliases=(), author=None, rules=RewriteRules((), ()))

# Text that is mostly controls: every C0 and C1 code point, DEL, and a few letters and spaces.
noisy = st.text(st.one_of(st.characters(min_codepoint=0, max_codepoint=0x1F),
                          st.characters(min_codepoint=0x7F, max_codepoint=0x9F), st.sampled_from("ab \u00e9")),
                max_size=12)


def _feed(title: str, author: str, category: str, summary: str, content: str, credit: str, caption: str) -> bytes:
    def x(value: str) -> str:
        return html.escape(value, quote=True)

    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title><link>https://blog.example/</link>'
        "<description>d</description><item>"
        f"<title>{x(title)}</title><guid isPermaLink=\"false\">guid-1</guid>"
        "<link>https://blog.example/p1</link><pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate>"
        f"<dc:creator>{x(author)}</dc:creator><category>{x(category)}</category>"
        f"<description>{x(summary)}</description><content:encoded>{x(content)}</content:encoded>"
        f'<media:content url="https://blog.example/a.png" medium="image"/><media:credit>{x(credit)}</media:credit>'
        f"<media:description>{x(caption)}</media:description>"
        "</item></channel></rss>"
    ).encode("utf-8", "surrogatepass")


def _texts(entry: Entry) -> dict[str, str]:
    texts = {"title": entry.title, "author": entry.author or "", "summary": entry.summary,
             "content": entry.content, "categories": "\n".join(entry.categories)}
    for i, image in enumerate(entry.images):
        texts[f"image {i} caption"] = image.caption or ""
        texts[f"image {i} credit"] = image.credit or ""
    return texts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(noisy, noisy), min_size=7, max_size=7))
def test_no_control_character_reaches_an_entrys_text(noise: list[tuple[str, str]]) -> None:
    words = ["Title", "Author", "Topic", "Summary", "Content", "Credit", "Caption"]
    fields = [f"{before}{word}{after}" for word, (before, after) in zip(words, noise)]
    try:
        parsed = parse_bytes(_feed(*fields[:4], f"<p>{fields[4]}</p>", *fields[5:]), CTX)
    except ParseError:
        return  # a feed too broken to read is refused as a whole: nothing of it is shown
    for entry in parsed.entries:
        texts = _texts(entry)
        for name, value in texts.items():
            assert not CONTROLS.search(value), (name, value)
        assert "Title" in entry.title and "Content" in entry.content  # the words around them are kept
        assert entry.guid == "guid-1"


def test_the_guid_keeps_what_the_feed_wrote() -> None:
    # Identity: a guid is compared as the feed wrote it (a changed guid would be a second copy).
    feed = _feed("t", "a", "c", "s", "<p>x</p>", "cr", "ca").replace(b"guid-1", b"guid-&#x7F;1")
    (entry,) = parse_bytes(feed, CTX).entries
    assert entry.guid == "guid-\x7f1"


def test_preview_in_a_pipe_has_no_control_character(tmp_path: Path) -> None:
    (tmp_path / "feed.xml").write_bytes(_feed("Hi \x1b[31mred\x1b]0;pwned\x07", "A\x1bB", "c\x9b", "s\x08",
                                              "<p>body \x1b[2J cleared</p>", "cr\x1b", "ca\x07"))
    (tmp_path / "syndicate.toml").write_text(
        '[state]\nurl = "sqlite:///state.db"\n'
        '[sources.a]\nname = "A"\nsite_url = "https://blog.example/"\nfeed = "feed.xml"\nlicense = "CC-BY-4.0"\n'
        '[partners.files]\nname = "F"\nkind = "files"\npath = "out"\nbase_url = "https://f.example"\n')
    for fmt in ("html", "json", "text"):
        result = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(tmp_path / "syndicate.toml"),
                                 "preview", "https://blog.example/p1", "--format", fmt],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "red" in result.stdout and "cleared" in result.stdout
        assert not CONTROLS.search(result.stdout), fmt


def test_a_document_on_a_terminal_shows_control_characters_as_escapes(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    document = "<h1>a\x1b[2Jb</h1>\n\t<p>c\x07\u202ed</p>"
    monkeypatch.setattr(display, "is_terminal", lambda: True)
    display.show_document(document)
    shown = capsys.readouterr().out
    assert shown == "<h1>a\\x1b[2Jb</h1>\n\t<p>c\\x07\\u202ed</p>\n"  # lines and indentation kept
    monkeypatch.setattr(display, "is_terminal", lambda: False)
    display.show_document(document)
    assert capsys.readouterr().out == document + "\n"  # a pipe or a file gets the bytes asked for
