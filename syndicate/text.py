"""Text from feeds, partners and configs made safe to print.

Anything a feed says (a title, a guid, a URL) may carry control characters: ESC sequences that
repaint a terminal, BEL, a newline that forges a log line of its own, bidi overrides that reorder
what the reader sees. Before we print such text — on a terminal, in a log line, in a summary — it
goes through ``printable``, which shows each such character as a visible escape instead; what a
feed says is first stripped of the controls no text holds (``visible``, at parse time).
"""

from __future__ import annotations

import re

# C0 controls but tab, newline and carriage return; DEL; C1 controls. No text or HTML holds them (HTML
# calls them parse errors), yet feeds carry them: ``visible`` drops them from what a feed says.
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# What is shown as an escape on a terminal besides: carriage return, the line and paragraph separators,
# and the bidi embedding/override/isolate marks (real text may hold them; a terminal obeys them).
_HIDDEN = _CONTROLS + "\r\u2028\u2029\u202a-\u202e\u2066-\u2069"
_INVISIBLE = re.compile(f"[{_CONTROLS}]")
_UNPRINTABLE = re.compile(f"[\t\n{_HIDDEN}]")  # one value is one line: newline and tab too
_UNPRINTABLE_IN_DOCUMENT = re.compile(f"[{_HIDDEN}]")  # a document's lines and indentation are what it shows


def visible(text: str) -> str:
    """``text`` without the control characters no text holds (C0 but tab, newline and CR; DEL; C1)."""
    return _INVISIBLE.sub("", text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as one printable line: control characters shown as ``\\xNN`` / ``\\uNNNN`` escapes."""
    value = text if isinstance(text, str) else str(text)
    return _UNPRINTABLE.sub(_escape, value)


def printable_document(text: str) -> str:
    """A whole document (lines, indentation) for a terminal: other control characters shown as escapes."""
    return _UNPRINTABLE_IN_DOCUMENT.sub(_escape, text)
