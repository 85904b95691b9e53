"""Audit: does a live copy, as the public sees it, still credit the author?

This module is the pure half of ``syndicate audit``: given the page a partner serves for one copy and
what that copy must show (``Credits``, built from the ledger and the config), it lists the problems a
reader or a search engine would meet; ``credits_for`` derives what a copy must show from its ledger row,
its stored entry and the config, with the render stage's own code. Fetching the pages and choosing which
copies to look at happen at the edge (``auditor``); nothing here does I/O.

What counts, as SPEC.md's "Audit" says:
- the byline's link to the original, in any spelling of the original URL (scheme, ``www.``, a host
  alias, a trailing slash, tracking parameters, and a ``ref`` parameter such as Ghost adds to
  outbound links);
- the licence line: the permission sentence, or the licence's name with a link to its deed;
- the featured-image credit we pushed (its words, and its link when it had one);
- ``<link rel="canonical">``: present, and pointing at the original and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from selectolax.lexbor import LexborHTMLParser

from .licenses import License, parse_license
from .urls import SiteIdentity, url_key

if TYPE_CHECKING:
    from .config import Config
    from .decide import Rules, Verdict
    from .models import Entry
    from .records import Delivery

#: Parameters a partner's CMS adds to outbound links (Ghost's ``?ref=<site>``), ignored when comparing.
OUTBOUND_PARAMS = ("ref",)


@dataclass(frozen=True)
class Credits:
    """What one copy must show to credit its author."""

    original_url: str
    site_url: str                        # the source's site, its aliases and tracking parameters:
    aliases: tuple[str, ...]             # what "any spelling" of the original means
    strip_params: tuple[str, ...]
    permission_sentence: str | None      # the footer's text when no licence applies
    license: License | None              # the Creative Commons licence named in the footer
    image_credit: str | None = None      # the featured image's credit as pushed
    image_credit_url: str | None = None

    @cached_property
    def site(self) -> SiteIdentity:
        """The source's own URLs, with the parameters a partner's CMS adds ignored too."""
        return SiteIdentity(self.site_url, self.aliases, self.strip_params + OUTBOUND_PARAMS)


def _words(text: str) -> str:
    """Text compared as a reader sees it: case and runs of white space do not matter."""
    return " ".join(text.split()).casefold()


def _same_post(href: str, credits: Credits) -> bool:
    mine = credits.site.key(href)
    return mine is not None and mine == credits.site.key(credits.original_url)


def _same_url(href: str, wanted: str, strip: tuple[str, ...]) -> bool:
    """Two URLs naming the same page up to scheme, ``www.``, a trailing slash and tracking parameters."""
    return url_key(href, strip + OUTBOUND_PARAMS) == url_key(wanted, strip + OUTBOUND_PARAMS)


def page_problems(page: str, credits: Credits) -> list[str]:
    """Every way ``page`` (the copy's public HTML) fails to credit the author; empty when it is ok."""
    tree = LexborHTMLParser(page)
    strip = credits.strip_params
    links = [(a.attributes.get("href") or "", a.text(separator=" ")) for a in tree.css("a[href]")]
    body = tree.body
    text = _words(body.text(separator=" ") if body is not None else "")
    problems: list[str] = []

    if not any(_same_post(href, credits) for href, _ in links):
        problems.append("byline link missing")

    if credits.license is not None:
        deed = [label for href, label in links if _same_url(href, credits.license.deed_url, strip)]
        names = {_words(credits.license.title), _words(credits.license.short)}
        if not deed or not any(name in text for name in names):
            problems.append("licence line missing")
    elif credits.permission_sentence and _words(credits.permission_sentence) not in text:
        problems.append("licence line missing")

    if credits.image_credit:
        shown = _words(credits.image_credit) in text
        linked = credits.image_credit_url is None or any(
            _same_url(href, credits.image_credit_url, strip) for href, _ in links)
        if not (shown and linked):
            problems.append("image credit missing")

    canonicals = canonical_links(tree)
    if not canonicals:
        problems.append("canonical link missing")
    else:
        elsewhere = [href for href in canonicals if not _same_post(href, credits)]
        if elsewhere:
            problems.append(f"canonical points at {elsewhere[0]}, not the original")
    return problems


def canonical_links(page: str | LexborHTMLParser) -> list[str]:
    """The ``href`` of every ``<link rel="canonical">`` of a page, in document order (a page may have several:
    WordPress core prints its own beside a plugin's)."""
    tree = LexborHTMLParser(page) if isinstance(page, str) else page
    return [node.attributes.get("href") or "" for node in tree.css("link[rel]")
            if "canonical" in re.split(r"\s+", (node.attributes.get("rel") or "").lower())]


def _pushed_verdict(entry: Entry, delivery: Delivery, config: Config, rules: Rules) -> Verdict:
    """The permission the copy went out under, as the ledger records it (``Permission.describe``), with
    the licence the config and the entry name: what ``render.footer`` made the copy's licence line from.

    Today's verdict is not used: an expired grant or a revoked permission changes nothing on a live
    copy until a sync updates or withdraws it, and the audit checks the copy as it stands."""
    from .decide import Verdict
    from .models import Permission

    license, _ = rules.license_of(config.sources[entry.source], entry)
    recorded = delivery.permission or ""
    evidence = None
    if recorded.startswith("licence "):
        license = parse_license(recorded.removeprefix("licence ")) or license
    elif recorded.startswith("grant: "):
        evidence = recorded.removeprefix("grant: ")
    permission = Permission(grant_evidence=evidence, license_spdx=license.spdx if license else None)
    return Verdict(True, permission=permission, license=license)


def credits_for(entry: Entry, delivery: Delivery, config: Config, rules: Rules) -> Credits:
    """What the copy of ``entry`` that ``delivery`` records must show, from the same functions that
    rendered it: the byline's URL (``article_context``), the licence line (``footer``) and the featured
    image's credit (``Rules.featured_image`` → ``credit_line``)."""
    from .render import credit_line, footer, web_href

    source = config.sources[entry.source]
    partner = config.partners[delivery.partner]
    line = footer(_pushed_verdict(entry, delivery, config, rules), partner)
    credit = credit_line(rules.featured_image(entry, partner.id))
    credit_words = (credit["credit"] or credit["note"]) if credit else None
    # The template links the credit's words only when there are some and the URL is a web URL.
    credit_url = credit["credit_url"] if credit and credit["credit"] else None
    return Credits(
        original_url=web_href(entry.url) or source.site_url,  # the byline falls back to the site
        site_url=source.site_url,
        aliases=tuple(source.aliases),
        strip_params=tuple(config.rewrite.strip_params),
        permission_sentence=line["text"] if line["kind"] == "permission" else None,
        license=line["license"],
        image_credit=credit_words,
        image_credit_url=credit_url,
    )
