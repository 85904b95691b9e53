"""Text from feeds, partners and configs made safe to print.

Anything a feed says (a title, a guid, a URL) may carry control characters: ESC sequences that
repaint a terminal, BEL, a newline that forges a log line of its own, bidi overrides that reorder
what the reader sees. Before we print such text — on a terminal, in a log line, in a summary — it
goes through ``printable``, which shows each such character as a visible escape instead.
"""

from __future__ import annotations

import re

# C0 controls (newline and tab included: one value is one line), DEL, C1 controls, the line and
# paragraph separators, and the bidi embedding/override/isolate marks.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as one printable line: control characters shown as ``\\xNN`` / ``\\uNNNN`` escapes."""
    value = text if isinstance(text, str) else str(text)
    return _UNPRINTABLE.sub(_escape, value)


# The same, but newline and tab: the lines and indentation of a document are what it shows.
_UNPRINTABLE_IN_DOCUMENT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable_document(text: str) -> str:
    """A whole document (lines, indentation) for a terminal: other control characters shown as escapes."""
    return _UNPRINTABLE_IN_DOCUMENT.sub(_escape, text)
