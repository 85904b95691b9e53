"""printable(): whatever a feed sends, what we print is one line without control characters."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from syndicate.text import printable


def test_escapes_terminal_and_log_forgeries() -> None:
    assert printable("a\x1b[31mred\x07\nERROR syndicate: x") == "a\\x1b[31mred\\x07\\x0aERROR syndicate: x"
    assert printable("\u202egnp.exe") == "\\u202egnp.exe"
    assert printable("Fixing [/etc/hosts] parsing [video]") == "Fixing [/etc/hosts] parsing [video]"


@given(st.text())
def test_nothing_unprintable_survives(text: str) -> None:
    out = printable(text)
    assert "\n" not in out and "\r" not in out
    assert not any(unicodedata.category(ch) == "Cc" for ch in out)
    assert not any(ch in out for ch in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
