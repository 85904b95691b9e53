"""URL spelling: tracking parameters, identity of a post's URL, its slug."""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .models import RewriteRules

DEFAULT_STRIP_PARAMS = RewriteRules().strip_params


@lru_cache(maxsize=64)
def _param_matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns) or r"(?!)")


def strip_tracking(url: str, patterns: tuple[str, ...] = DEFAULT_STRIP_PARAMS) -> str:
    """The URL without tracking query parameters (``utm_*``, ``fbclid``…); the others are kept in order."""
    if "?" not in url:
        return url
    parts = urlsplit(url)
    if not parts.query:
        return url
    matcher = _param_matcher(patterns)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not matcher.match(k.lower())]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept, doseq=True)))


def absolute(url: str, base: str | None) -> str:
    """``url`` resolved against ``base`` (unchanged when it is already absolute or there is no base)."""
    url = url.strip()
    if not base or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url):
        return url
    return urljoin(base, url)


def bare_host(host: str) -> str:
    """A host without ``www.`` and a trailing dot, in lower case."""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


class SiteIdentity:
    """Recognises the URLs of one source's own posts, whatever their spelling.

    Two URLs name the same post when they differ only in scheme, ``www.``, a host alias, a trailing
    slash, the fragment or tracking parameters.
    """

    def __init__(self, site_url: str, aliases: tuple[str, ...] = (), strip_params: tuple[str, ...] = DEFAULT_STRIP_PARAMS):
        self.host = bare_host(urlsplit(site_url).hostname or "")
        self.hosts = {self.host} | {bare_host(a) for a in aliases}
        self.strip_params = strip_params

    def owns(self, url: str) -> bool:
        """Is this URL on the source's own site?"""
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return False
        return host is not None and bare_host(host) in self.hosts

    def key(self, url: str) -> str | None:
        """A canonical spelling for comparing post URLs, or None for another site's URL."""
        try:
            parts = urlsplit(strip_tracking(url.strip(), self.strip_params))
        except ValueError:
            return None
        if parts.scheme not in ("http", "https", "") or parts.hostname is None:
            return None
        host = bare_host(parts.hostname)
        if host not in self.hosts:
            return None
        path = parts.path.rstrip("/") or "/"
        return f"{self.host}{path}" + (f"?{parts.query}" if parts.query else "")


def url_key(url: str, strip_params: tuple[str, ...] = DEFAULT_STRIP_PARAMS) -> str:
    """A spelling-independent key for any URL (no source context): host without www, no slash, no tracking."""
    try:
        parts = urlsplit(strip_tracking(url.strip(), strip_params))
    except ValueError:
        return url.strip()
    if parts.hostname is None:
        return url.strip()
    path = parts.path.rstrip("/") or "/"
    return f"{bare_host(parts.hostname)}{path}" + (f"?{parts.query}" if parts.query else "")


def slug_from_url(url: str | None) -> str | None:
    """The original's own slug: the last path segment, without ``.html``/``.php``; None when there is none."""
    if not url:
        return None
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    segment = re.sub(r"\.(html?|php)$", "", segment, flags=re.I)
    return segment or None
