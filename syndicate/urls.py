"""URLs, read once and the way browsers read them.

Every decision we take on a URL (which host an embed, an image or a feed is on, whether a link is
one of the source's own posts, whether a scheme is allowed) is taken on ``parse``'s reading, and the
URL we emit afterwards is ``parse``'s serialisation (``URL.href``), never the text we were given. So
what we checked is what a browser (or a CMS, or our fetcher) will load.

``parse`` is the WHATWG URL Standard's parser (Ada, through ``ada-url``: the parser Node.js uses,
tested against the Web Platform Tests). Python's ``urllib.parse`` is an RFC 3986 splitter that reads
many URLs otherwise than a browser does: ``https://evil.example\\@www.youtube.com/`` is on
www.youtube.com for urllib and on evil.example for Chromium; tabs and newlines inside a URL, hosts
such as ``0x7f.1`` or ``2130706433``, fullwidth dots, backslashes as slashes… An invalid URL is data
from a feed, never an exception: ``parse`` returns None.

The rest of this module spells URLs: tracking parameters, the identity of a post's URL, its slug.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, unquote_plus

import ada_url

from .models import RewriteRules

DEFAULT_STRIP_PARAMS = RewriteRules().strip_params
#: Schemes whose URLs may be written into an ``href``/``src`` of what partners receive.
WEB_SCHEMES = frozenset({"http", "https"})
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
#: Longer than any URL a browser is happy with; a feed's megabyte "URL" is not worth parsing.
MAX_URL_LENGTH = 32_768

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class URL:
    """One URL as a WHATWG-conforming browser reads it.

    ``href`` is the parser's serialisation: the only spelling we ever emit (for http(s) URLs it holds
    no whitespace, control character, ``<`` or ``>``). ``host`` is the host as the browser connects to it:
    lower case, IDNA (punycode) ASCII, an IPv4 address in dotted decimal whatever its spelling, an
    IPv6 address compressed and in brackets; ``""`` for URLs without a host (``mailto:``).
    """

    href: str
    scheme: str  # lower case, without ":"
    username: str  # percent-encoded, as in href
    password: str  # percent-encoded, as in href
    host: str
    port: int | None  # None for the scheme's default port
    path: str
    query: str  # without "?"; "" when there is none (or it is empty)
    fragment: str  # without "#"

    @property
    def is_web(self) -> bool:
        """An http(s) URL with a host: something a browser fetches over the network."""
        return self.scheme in WEB_SCHEMES and self.host != ""

    @property
    def hostname(self) -> str:
        """The host without IPv6 brackets (what DNS and ``ipaddress`` take)."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def address(self) -> IPAddress | None:
        """The IP address the host names directly, or None when it is a name (or there is no host)."""
        try:
            return ipaddress.ip_address(self.hostname)
        except ValueError:
            return None

    @property
    def effective_port(self) -> int | None:
        """The port a connection goes to (the scheme's default when none is written)."""
        if self.port is not None:
            return self.port
        return {"http": 80, "https": 443}.get(self.scheme)

    def without_fragment(self) -> URL:
        """The same URL without its ``#fragment``."""
        return parse(self.href.split("#", 1)[0]) or self


@lru_cache(maxsize=256)
def _valid_base(base: str) -> bool:
    return bool(ada_url.check_url(base))


def _split(href: str, scheme: str, host: str) -> tuple[str, str, int | None, str, str, str]:
    """(username, password, port, path, query, fragment) of a URL the parser serialised.

    Safe as plain string splitting because ``href`` is the WHATWG serialisation and ``host`` the
    parser's own: there every "#" after the first, every "?" before the query and every "@" or ":"
    inside userinfo are percent-encoded, so the first "#" starts the fragment, the first "?" the
    query, the last "@" of the authority ends the userinfo. (tests/hostile/test_urls.py checks this
    against Ada's own getters.)
    """
    rest = href[len(scheme) + 1:]
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    username = password = ""
    port: int | None = None
    # A host-less path that starts with "//" is serialised behind "/." (so it is not read as a host).
    path = rest[2:] if rest.startswith("/.//") else rest
    if rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        path = slash + tail
        userinfo, at, host_port = authority.rpartition("@")
        if at:
            username, _, password = userinfo.partition(":")
        port_text = host_port[len(host):]
        port = int(port_text[1:]) if port_text.startswith(":") and port_text[1:].isdigit() else None
    return username, password, port, path, query, fragment


def parse(text: str | None, base: str | URL | None = None) -> URL | None:
    """``text`` read as a browser reads it (resolved against ``base``), or None when it is no URL.

    Never raises: an invalid URL (``http://[oops``), a relative URL without a usable base, a URL
    too long to be honest, or a non-string all give None. Leading and trailing spaces and control
    characters, and tabs and newlines anywhere, are dropped as the URL Standard says. An invalid
    ``base`` counts as none (a browser's base URL is always valid).
    """
    if not isinstance(text, str) or len(text) > MAX_URL_LENGTH:
        return None
    base_href = base.href if isinstance(base, URL) else base
    if not isinstance(base_href, str) or not base_href or len(base_href) > MAX_URL_LENGTH \
            or not _valid_base(base_href):
        base_href = None
    if len(text) <= _CACHED_LENGTH and (base_href is None or len(base_href) <= _CACHED_LENGTH):
        return _parse_cached(text, base_href)
    return _parse(text, base_href)


#: The same URLs are read again and again (the site's URL for every entry, each link once per partner
#: when retargeting); short ones are remembered. Bounded: at most 2,048 URLs of at most 2,048 characters.
_CACHED_LENGTH = 2048


def _parse(text: str, base_href: str | None) -> URL | None:
    try:
        parsed = ada_url.URL(text, base=base_href) if base_href else ada_url.URL(text)
        href, protocol, host = parsed.href, parsed.protocol, parsed.hostname
    except (ValueError, TypeError, UnicodeError):
        return None
    scheme = protocol[:-1]
    username, password, port, path, query, fragment = _split(href, scheme, host)
    return URL(href=href, scheme=scheme, username=username, password=password, host=host, port=port, path=path,
               query=query, fragment=fragment)


_parse_cached = lru_cache(maxsize=2048)(_parse)


def web_url(text: str | None, base: str | URL | None = None) -> URL | None:
    """``parse(text, base)`` when it is an http(s) URL with a host; None otherwise."""
    url = parse(text, base)
    return url if url is not None and url.is_web else None


def safe_href(text: str | None, base: str | URL | None = None,
              schemes: frozenset[str] = LINK_SCHEMES) -> str | None:
    """The serialised URL when its scheme is one of ``schemes`` (http(s) ones need a host), else None.

    ``javascript:``, ``data:``, ``vbscript:``, ``file:`` and the rest are refused however they are
    spelled (case, tabs, newlines, leading control characters: the parser reads them all away).
    """
    url = parse(text, base)
    if url is None or url.scheme not in schemes or (url.scheme in WEB_SCHEMES and not url.host):
        return None
    return url.href


def host_of(text: str) -> str | None:
    """A host written on its own (``0x7f.1``, ``[::1]``, ``Bücher.de``) as a browser reads it, or None."""
    if not isinstance(text, str) or not text or any(c in text for c in "/\\?#@"):
        return None
    url = parse(f"http://{text}/")
    return url.host if url is not None and url.path == "/" and not url.port else None


# ---------------------------------------------------------------------------------- spelling


@lru_cache(maxsize=64)
def _param_matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns) or r"(?!)")


def _tracking_key(pair: str, matcher: re.Pattern[str]) -> bool:
    key = pair.split("=", 1)[0]
    if "%" in key or "+" in key:
        key = unquote_plus(key)
    return matcher.match(key.lower()) is not None


def _without_tracking(url: URL, patterns: tuple[str, ...]) -> URL:
    if not url.query:
        return url
    matcher = _param_matcher(patterns)
    pairs = url.query.split("&")
    # Kept pairs keep their exact (already serialised) spelling: only whole pairs are dropped.
    kept = [p for p in pairs if not _tracking_key(p, matcher)]
    if len(kept) == len(pairs):
        return url
    # Dropping whole pairs from a serialised query leaves a serialised URL: no need to parse again.
    head = url.href.split("?", 1)[0]
    tail = f"#{url.fragment}" if "#" in url.href else ""
    query = "&".join(kept)
    return URL(href=head + (f"?{query}" if kept else "") + tail, scheme=url.scheme, username=url.username,
               password=url.password, host=url.host, port=url.port, path=url.path, query=query,
               fragment=url.fragment)


def clean_url(text: str | None, base: str | URL | None = None,
              strip_params: tuple[str, ...] = DEFAULT_STRIP_PARAMS) -> URL | None:
    """``parse(text, base)`` without tracking query parameters (``utm_*``, ``fbclid``…), or None."""
    url = parse(text, base)
    return _without_tracking(url, strip_params) if url is not None else None


def strip_tracking(url: str, patterns: tuple[str, ...] = DEFAULT_STRIP_PARAMS) -> str:
    """The URL, serialised, without tracking query parameters; the others are kept in order.

    Text that is no URL comes back unchanged (it is never emitted as one: see ``parse``).
    """
    parsed = clean_url(url, None, patterns)
    return parsed.href if parsed is not None else url


def absolute(url: str, base: str | None) -> str | None:
    """``url`` resolved against ``base`` and serialised, or None when it is no valid URL."""
    parsed = parse(url, base)
    return parsed.href if parsed is not None else None


def bare_host(host: str) -> str:
    """A host without ``www.`` and a trailing dot, in lower case."""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


class SiteIdentity:
    """Recognises the URLs of one source's own posts, whatever their spelling.

    Two URLs name the same post when they differ only in scheme, ``www.``, a host alias, a trailing
    slash, the fragment or tracking parameters. Hosts are compared as a browser reads them.
    """

    def __init__(self, site_url: str, aliases: tuple[str, ...] = (), strip_params: tuple[str, ...] = DEFAULT_STRIP_PARAMS):
        site = parse(site_url)
        self.host = bare_host(site.host if site is not None else "")
        self.hosts = {self.host} | {bare_host(host_of(a) or a) for a in aliases}
        self.strip_params = strip_params

    def owns(self, url: str) -> bool:
        """Is this URL (an http(s) one) on the source's own site?"""
        parsed = web_url(url)
        return parsed is not None and bare_host(parsed.host) in self.hosts

    def key(self, url: str) -> str | None:
        """A canonical spelling for comparing post URLs, or None for another site's URL."""
        parsed = clean_url(url, None, self.strip_params)
        if parsed is None or not parsed.is_web or bare_host(parsed.host) not in self.hosts:
            return None
        path = parsed.path.rstrip("/") or "/"
        return f"{self.host}{path}" + (f"?{parsed.query}" if parsed.query else "")


def url_key(url: str, strip_params: tuple[str, ...] = DEFAULT_STRIP_PARAMS) -> str:
    """A spelling-independent key for any URL (no source context): host without www, no slash, no tracking."""
    parsed = clean_url(url, None, strip_params)
    if parsed is None or not parsed.host:
        return url.strip()
    path = parsed.path.rstrip("/") or "/"
    return f"{bare_host(parsed.host)}{path}" + (f"?{parsed.query}" if parsed.query else "")


def slug_from_url(url: str | None) -> str | None:
    """The original's own slug: the last path segment, without ``.html``/``.php``; None when there is none."""
    parsed = parse(url)
    if parsed is None or not parsed.host:
        return None
    segment = unquote(parsed.path).rstrip("/").rsplit("/", 1)[-1]
    segment = re.sub(r"\.(html?|php)$", "", segment, flags=re.I)
    return segment or None
