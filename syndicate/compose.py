"""Render stage: each copy's slug, series notes, link map and render key, and the article itself.

A copy's render key fingerprints every input of its article; a copy whose key is the one recorded
with what was pushed is not rendered again (the steady state of a large feed costs no Jinja2).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

from .catalog import Catalog
from .config import Config, PartnerConfig
from .decide import Rules, Verdict
from .models import Article, Entry, sha256
from .publishers.base import Publisher
from .records import OK, WITHDRAWN, Delivery
from .urls import slug_from_url

if TYPE_CHECKING:
    from .render import Renderer, SeriesPart

Ledger = dict[tuple[str, str], Delivery]


def marker_for(source: str, guid: str, partner: str) -> str:
    """A stable id of entry × partner that our copy carries (used to find it after a lost answer)."""
    return "syn-" + hashlib.sha256(f"{source}\n{guid}\n{partner}".encode()).hexdigest()[:16]


class Slugs:
    """The slug of each copy: the one the partner reported, else the original's own, unique on the partner."""

    def __init__(self) -> None:
        self._chosen: dict[str, dict[tuple[str, str], str]] = {}
        self._taken: dict[str, set[str]] = {}
        self._next_suffix: dict[tuple[str, str], int] = {}

    def slug(self, entry: Entry, pid: str, ledger: Ledger) -> str:
        """The copy's slug (chosen once per run and partner)."""
        key = (entry.source, entry.guid)
        own = ledger.get(key)
        if own is not None and own.slug:
            return own.slug
        chosen = self._chosen.setdefault(pid, {})
        if key in chosen:
            return chosen[key]
        from slugify import slugify

        base = slugify(slug_from_url(entry.url) or entry.title or entry.guid, max_length=120) or marker_for(
            entry.source, entry.guid, pid)
        taken = self._taken.get(pid)
        if taken is None:  # built once per partner and run, then kept up to date: not once per entry
            taken = self._taken[pid] = {d.slug for d in ledger.values() if d.slug}
        slug = self._free(pid, base, taken)
        chosen[key] = slug
        taken.add(slug)
        return slug

    def _free(self, pid: str, base: str, taken: set[str]) -> str:
        """The first member of ``base``'s family (``base``, ``base-2``, ``base-3`` …) no copy of the partner has.

        The family has no end: a partner may hold any number of namesakes. The walk resumes where the last
        one for this base stopped, so that a run naming n namesakes does n steps, not n² / 2."""
        if base not in taken:
            return base
        n = self._next_suffix.get((pid, base), 2)
        while f"{base}-{n}" in taken:
            n += 1
        self._next_suffix[(pid, base)] = n + 1
        return f"{base}-{n}"


class Composer:
    """Renders the article each partner receives for an entry."""

    def __init__(self, config: Config, rules: Rules, catalog: Catalog) -> None:
        self.config, self.rules, self.catalog = config, rules, catalog
        self.slugs = Slugs()
        self._renderer: Renderer | None = None
        self._template_fp: dict[str, str] = {}
        self._partner_fp: dict[str, str] = {}

    @property
    def renderer(self) -> Renderer:
        """The template environment (Jinja2 is loaded only by runs that render)."""
        if self._renderer is None:
            from .render import Renderer

            self._renderer = Renderer(self.config.base_dir)
        return self._renderer

    @staticmethod
    def copies(ledger: Ledger, extra: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        """(source, guid) → the URL of this partner's live copy (``extra``: copies about to exist)."""
        copies = {key: d.remote_url for key, d in ledger.items()
                  if d.remote_url and d.remote_id and d.state != WITHDRAWN}
        copies.update(extra)
        return copies

    def compose(self, entry: Entry, verdict: Verdict, partner: PartnerConfig, publisher: Publisher,
                copies: dict[tuple[str, str], str], ledger: Ledger,
                delivery: Delivery | None) -> tuple[Article | None, str]:
        """(the article, its render key); the article is None when ``delivery`` holds what this key
        renders already (nothing that shapes it changed)."""
        series = self._series_notes(entry, partner, copies)
        link_map = self._link_map(entry, verdict, copies)
        image = self.rules.featured_image(entry, partner.id)
        slug = self.slugs.slug(entry, partner.id, ledger)
        key = sha256(entry.content_hash, self._partner_fingerprint(partner), self._template_fingerprint(partner),
                     [(p.number, p.label, p.url) for p in series], sorted(link_map.items()),
                     image.__dict__ if image else None, slug, verdict.license.spdx if verdict.license else None,
                     verdict.permission.grant_evidence if verdict.permission else None, verdict.no_derivatives)
        d = delivery
        if d is not None and d.render_key == key and d.state == OK and d.pushed_hash:
            return None, key
        if link_map:
            from .rewrite import retarget

            body = retarget(entry.content, self.rules.sites[entry.source], link_map)
        else:
            body = entry.content
        article = self.renderer.article(entry=entry, source=self.config.sources[entry.source], partner=partner,
                                        verdict=verdict, body=body, series=series, image=image, slug=slug)
        return replace(article, html=publisher.prepare_html(article.html)), key

    def _series_notes(self, entry: Entry, partner: PartnerConfig,
                      copies: dict[tuple[str, str], str]) -> list[SeriesPart]:
        """The other parts of the entry's series that have a copy on this partner."""
        from .render import SeriesPart

        series: list[SeriesPart] = []
        for name, numbers in self.catalog.series_of(entry):
            for guid, number in sorted(numbers.items(), key=lambda kv: kv[1]):
                if guid == entry.guid or (entry.source, guid) not in copies:
                    continue
                part = self.catalog.by_guid(entry.source, guid)
                if part is None:
                    continue
                label = self.catalog.label(part, partner.id, number, name)
                series.append(SeriesPart(number, label, copies[(entry.source, guid)], part.title))
        return series

    def _link_map(self, entry: Entry, verdict: Verdict, copies: dict[tuple[str, str], str]) -> dict[str, str]:
        """site key of a link in the entry → the URL of the linked entry's copy on this partner."""
        link_map: dict[str, str] = {}
        if not entry.links or verdict.no_derivatives:
            return link_map
        site = self.rules.sites[entry.source]
        by_key = self.catalog.url_index(entry.source)
        for link in entry.links:
            key = site.key(link)
            target = by_key.get(key) if key else None
            if key and target is not None and (entry.source, target) in copies and target != entry.guid:
                link_map[key] = copies[(entry.source, target)]
        return link_map

    def _partner_fingerprint(self, partner: PartnerConfig) -> str:
        """Changes when anything in the partner's config changes (name, template, status…)."""
        if partner.id not in self._partner_fp:
            self._partner_fp[partner.id] = sha256(partner.model_dump(mode="json"))
        return self._partner_fp[partner.id]

    def _template_fingerprint(self, partner: PartnerConfig) -> str:
        if partner.template not in self._template_fp:
            self._template_fp[partner.template] = self.renderer.fingerprint(partner.template)
        return self._template_fp[partner.template]
