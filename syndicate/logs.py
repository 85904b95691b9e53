"""Logging: readable text or JSON lines on stderr, every line passed through ``redact``."""

from __future__ import annotations

import json
import logging
import sys
import time

from .redact import redact
from .text import printable


class RedactingFilter(logging.Filter):
    """Masks secrets in every record, its arguments and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = printable(redact(record.getMessage()))  # one record, one line: a feed cannot forge another
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        if record.exc_text:
            data["traceback"] = record.exc_text
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
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
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
