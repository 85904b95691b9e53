"""Logging: readable text or JSON lines on stderr, every line passed through ``redact``.

One record is one line: a message carries feed text (a guid, a title, a server's words), and a
newline or an ESC sequence in it would forge log lines of its own (``ERROR syndicate: …``) or
repaint the terminal. Both formatters show such characters as escapes (``text.printable``); a
traceback's lines are each made printable and indented, so none of them can pass for a record.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from .redact import mask_queries, redact
from .text import printable


class RedactingFilter(logging.Filter):
    """Masks secrets in every record, its arguments and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        if record.name.startswith(("urllib3", "requests")):  # their lines quote whole URLs, tokens and all
            record.msg = mask_queries(record.msg)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _traceback_of(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    """The record's traceback text (redacted by the filter when it had one), or None."""
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(formatter.formatException(record.exc_info))
    return record.exc_text or None


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message``, one line; a traceback follows as indented, printable lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {printable(record.name)}: {printable(record.getMessage())}"
        trace = _traceback_of(record, self)
        if trace:
            line += "".join("\n  " + printable(part) for part in trace.splitlines())
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (C1 controls and bidi marks escaped too,
    which ``json.dumps`` alone leaves raw)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)), "level": record.levelname.lower(),
                "logger": printable(record.name), "message": printable(record.getMessage())}
        trace = _traceback_of(record, self)
        if trace:
            data["traceback"] = "\n".join(printable(part) for part in trace.splitlines())
        return json.dumps(data, ensure_ascii=False)


def setup(verbosity: int, log_format: str) -> None:
    """Default: no log lines in text (the command's own summary says what failed), warnings in JSON;
    ``-q``: errors only, as log lines; ``-v``: what is done, step by step; ``-vv``: debug, HTTP included."""
    quiet_default = logging.WARNING if log_format == "json" else logging.CRITICAL  # asked for JSON: wants the log
    level = {-1: logging.ERROR, 0: quiet_default, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else level)
    logging.getLogger("syndicate").setLevel(level if verbosity < 2 else logging.DEBUG)
    if verbosity >= 2:
        # urllib3 logs request lines with their query strings: the filter above masks credentials.
        logging.getLogger("urllib3").setLevel(logging.DEBUG)
    else:
        logging.getLogger("urllib3").setLevel(logging.WARNING)
