"""One place that keeps secrets out of output, logs, error messages and tracebacks.

Every secret value is registered here when it is revealed (``config.Secret.reveal``); the log
filter installed by ``logs.setup`` and every message the CLI prints pass through ``redact``.
Besides the registered values it masks what commonly carries credentials: URL userinfo, query
values of credential-like parameters, and Authorization headers (Basic, Bearer, Ghost JWTs).
"""

from __future__ import annotations

import re
import threading

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


def register(value: str) -> None:
    """Remember a secret so that it is masked wherever it would be printed."""
    if not value or len(value) < 4:
        return
    with _lock:
        _secrets.add(value)
        # Application passwords are often written with or without their spaces; an Admin API key
        # id:secret also appears as its two halves.
        _secrets.add(value.replace(" ", ""))
        if ":" in value:
            for part in value.split(":"):
                if len(part) >= 8:
                    _secrets.add(part)


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
