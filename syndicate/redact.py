"""One place that keeps secrets out of output, logs, error messages and tracebacks.

Every secret value is registered here when it is revealed (``config.Secret.reveal``); the log
filter installed by ``logs.setup`` and every message the CLI prints pass through ``redact``.
Besides the registered values it masks what commonly carries credentials: URL userinfo, query
values of credential-like parameters, and Authorization headers (Basic, Bearer, Ghost JWTs).

A secret travels encoded as often as not: a proxy that echoes our request back shows the Basic
header (base64 of ``user:password``), a form body shows it URL-encoded, a JSON error shows it
escaped. So each registered secret is masked in every such spelling too (``encodings``), including
the part of its base64 that stays the same wherever it sits inside a longer base64 string.

Masking comes before any cut: a message cut to N characters first and masked afterwards keeps the
head of a secret that straddled the cut. Text is shortened only through ``shorten``, which masks first.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from urllib.parse import quote, quote_plus

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"

# Text patterns (not HTML): credential-shaped strings in log lines and exception messages.
_PATTERNS = [
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer|ghost)\s+[A-Za-z0-9._~+/=-]+"), r"\1\2 " + MASK),
    (re.compile(r"(?i)\b(basic|bearer|ghost)\s+[A-Za-z0-9._~+/-]{16,}={0,2}"), r"\1 " + MASK),
    (re.compile(r"(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token|password|secret|auth|sig|signature)=)[^&\s#'\"]+"), r"\1" + MASK),
    # a JWT anywhere
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), MASK),
]


#: Encoded forms shorter than this are not masked on their own (they would match ordinary words).
_MIN_FORM = 6


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters of ``raw`` that do not depend on its neighbours, for each of the three
    byte alignments it can have inside a longer string (standard and URL-safe alphabets)."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode("ascii")
        # character i holds bits 6i..6i+6 of the stream; the secret's bits are 8*offset..8*(offset+len)
        start, end = -(-8 * offset // 6), (8 * (offset + len(raw))) // 6
        core = encoded[start:end]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def encodings(value: str) -> set[str]:
    """The spellings in which a secret may show up in text: as given, without its spaces, URL-encoded,
    JSON- and HTML-escaped, base64 (whole, and its alignment-independent cores)."""
    raw = value.encode("utf-8")
    forms = {value, value.replace(" ", ""), " ".join(value.split()), quote(value, safe=""), quote_plus(value),
             quote(value), json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             html.escape(value), html.escape(value, quote=False)}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms |= {encoded.decode("ascii"), encoded.decode("ascii").rstrip("=")}
    forms |= _base64_cores(raw)
    return {form for form in forms if len(form) >= _MIN_FORM or form == value}


# A URL's query string, or a request line's ("GET /feed?k=… HTTP/1.1"): where feed URLs carry tokens.
_QUERY = re.compile(r"((?:https?://|\s)[^\s?#]*)\?[^\s#\"']+")


def mask_queries(text: str) -> str:
    """``text`` with the query string of every URL and request path in it masked (``?***``).

    For text that quotes URLs it did not build, such as urllib3's own log lines: a feed URL's query
    may be its access token, and which parameter holds it cannot be guessed."""
    return _QUERY.sub(r"\1?" + MASK, text)


def register(value: str) -> None:
    """Remember a secret so that it is masked wherever it would be printed, in any of its encodings."""
    if not value or len(value) < 4:
        return
    # An Admin API key id:secret also appears as its two halves (the id in a JWT header).
    values = [value] + ([part for part in value.split(":") if len(part) >= 8] if ":" in value else [])
    forms = set().union(*(encodings(v) for v in values))
    with _lock:
        _secrets.update(forms)


def shorten(text: str, limit: int) -> str:
    """``text`` masked, then cut to at most ``limit`` characters (with "…" when cut): the only way
    text that may carry a secret is shortened."""
    masked = redact(text)
    return masked if len(masked) <= limit else masked[:max(0, limit - 1)] + "…"


def redact(text: str) -> str:
    """The text with every registered secret and credential-shaped string masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
