"""What we print of a feed is printable and is never read as rich markup (syndicate/display.py).

On rich's own console, forced to be a terminal (as ``check``/``status``/``sync`` see one): titles,
URLs, guids and error texts generated with markup-looking brackets and control characters must
appear exactly as ``text.printable`` makes them, none may crash the table, and no control character
but our own colours' escape sequences reaches the terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate import display
from syndicate.models import Decision, Entry
from syndicate.records import Delivery, FeedState
from syndicate.report import FeedOutcome, RunReport
from syndicate.text import printable

#: Our own styling: SGR sequences (colours, bold, dim).
SGR = re.compile(r"\x1b\[[0-9;]*m")
MARKUPISH = st.sampled_from(["[", "]", "[/]", "[bold]", "[/etc/hosts]", "[video]", "[red]", "[link=x]", "\\[",
                             "[/bold]", ":smile:", "\x1b[31m", "\x07", "\n", "\r", "\u202e", "\x00"])
FEED_TEXT = st.lists(st.one_of(MARKUPISH, st.text(max_size=6)), min_size=1, max_size=6).map("".join)


class Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # no folding: each value stays on one line of the table
    monkeypatch.setenv("TERM", "xterm-256color")


def shown(show: Callable[[], None]) -> str:
    """What ``show`` prints on a terminal."""
    screen = Terminal()
    with contextlib.redirect_stdout(screen):
        show()
    return screen.getvalue()


def assert_shown_as_written(out: str, *values: str) -> None:
    plain = SGR.sub("", out)
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]", plain), repr(plain)
    for value in values:
        assert printable(value) in plain, (value, plain)


def entry(title: str, url: str, guid: str) -> Entry:
    return Entry(source="blog", guid=guid, url=url, title=title, author=None,
                 published=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), updated=None)


@settings(max_examples=60, deadline=None)
@given(title=FEED_TEXT, url=FEED_TEXT, reason=FEED_TEXT)
def test_check_shows_feed_text_as_written(title: str, url: str, reason: str) -> None:
    e = entry(title, "https://blog.example/" + url, "guid-1")
    out = shown(lambda: display.show_check([Decision(entry=e, partner="mag", action="skip", reason=reason)]))
    assert_shown_as_written(out, title, e.url or "", reason)


@settings(max_examples=60, deadline=None)
@given(url=FEED_TEXT, error=FEED_TEXT, note=FEED_TEXT)
def test_status_shows_ledger_text_as_written(url: str, error: str, note: str) -> None:
    rows = [Delivery(partner="mag", source="blog", guid="g", entry_url=url, last_error=error, attempts=2),
            Delivery(partner="mag", source="blog", guid="h", entry_url=url, note=note)]
    out = shown(lambda: display.show_status(rows, {"blog": FeedState(source="blog", last_error=error, failures=3)}))
    assert_shown_as_written(out, url, error, note)


@settings(max_examples=60, deadline=None)
@given(error=FEED_TEXT, warning=FEED_TEXT)
def test_the_sync_summary_shows_feed_text_as_written(error: str, warning: str) -> None:
    report = RunReport(feeds=[FeedOutcome("blog", "failed", error=error)], warnings=[warning], errors=[error])
    report.partner("mag").failed = 1
    assert_shown_as_written(shown(lambda: display.show_sync(report, verbosity=0)), error, warning)


def test_a_bracketed_title_is_not_markup() -> None:
    e = entry("Fixing [/etc/hosts] parsing", "https://blog.example/a/", "g")
    out = SGR.sub("", shown(lambda: display.show_check([Decision(entry=e, partner="mag", action="create",
                                                                   reason="[video] inside")])))
    assert "Fixing [/etc/hosts] parsing" in out and "[video] inside" in out


@settings(max_examples=100, deadline=None)
@given(value=FEED_TEXT)
def test_a_log_line_is_one_printable_line_whatever_a_feed_puts_in_it(value: str) -> None:
    import logging

    from syndicate import logs

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    screen = io.StringIO()
    try:
        with contextlib.redirect_stderr(screen):
            logs.setup(-1, "text")  # -q: errors only
            logging.getLogger("syndicate").error("feed %s: %s", "blog", value)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    out = screen.getvalue()
    assert out.count("\n") == 1 and out.startswith("ERROR syndicate: feed blog: "), repr(out)
    assert_shown_as_written(out, value)
