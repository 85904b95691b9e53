"""What "nothing unsafe" means, checked on a real HTML5 parser (used by unit and integration tests)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import ada_url
from selectolax.lexbor import LexborHTMLParser

from syndicate.config import DEFAULT_EMBED_HOSTS

FORBIDDEN_TAGS = {"script", "style", "form", "input", "button", "textarea", "select", "svg", "math", "object",
                  "embed", "applet", "base", "meta", "link", "frame", "frameset", "noscript", "template"}
URL_ATTRIBUTES = {"href", "src", "poster", "cite", "action", "formaction", "xlink:href", "background", "data",
                  "srcset", "lowsrc", "dynsrc", "longdesc"}


def problems(html: str, embed_hosts: tuple[str, ...] = DEFAULT_EMBED_HOSTS, *, allow_relative: bool = False) -> list[str]:
    """Every hazard found in an HTML fragment; empty when it is safe to push."""
    found = []
    tree = LexborHTMLParser("<body>" + html)
    for node in tree.body.traverse(include_text=False) if tree.body else []:
        tag = node.tag
        if tag in FORBIDDEN_TAGS:
            found.append(f"<{tag}>")
        if tag == "iframe":
            # the host a browser loads (WHATWG parser), not urllib's reading of it
            try:
                host = ada_url.URL(node.attrs.get("src") or "").hostname
            except ValueError:
                host = ""
            if host not in embed_hosts:
                found.append(f"iframe from {host or '?'}")
        for name, value in node.attributes.items():
            lname = name.lower()
            if lname.startswith("on") or lname == "style":
                found.append(f"{lname}= on <{tag}>")
            if lname in URL_ATTRIBUTES and value is not None:
                urls = [c.strip().split()[0] for c in value.split(",") if c.strip()] if lname == "srcset" else [value]
                for url in urls:
                    try:  # the scheme as a browser reads it: tabs, newlines and controls dropped
                        scheme = ada_url.URL(url).protocol.rstrip(":")
                    except ValueError:  # no absolute URL: relative, or invalid (a scheme of its own, then)
                        written = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", re.sub(r"[\t\n\r]", "", url.strip()))
                        scheme = written.group()[:-1].lower() if written else ""
                    if scheme not in ("http", "https", "mailto") and not (allow_relative and not scheme):
                        found.append(f"{lname}={url[:40]!r} on <{tag}>")
            if value and any(bad in value.lower().replace("\x00", "") for bad in ("javascript:", "vbscript:", "data:text")):
                found.append(f"{lname} carries a script URL on <{tag}>")
    return found


def relative_urls(html: str) -> list[str]:
    """Every href/src/srcset/poster value that is not absolute (parsed, so text that looks like HTML is ignored)."""
    found = []
    tree = LexborHTMLParser("<body>" + html)
    for node in tree.css("[href], [src], [srcset], [poster]"):
        for name in ("href", "src", "srcset", "poster"):
            value = node.attrs.get(name)
            if value is None:
                continue
            urls = [c.strip().split()[0] for c in value.split(",") if c.strip()] if name == "srcset" else [value]
            found += [u for u in urls if not urlsplit(u).scheme]
    return found
