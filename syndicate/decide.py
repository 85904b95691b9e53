"""Permission: grants, licences, embargoes, categories and editors' overrides → a verdict with a reason.

Deny by default. A post goes to a partner only under a grant in force or under a Creative Commons
licence whose terms the partner meets. This module is pure: it sees the config, the entry and the
clock, never the network or the store. ``pipeline`` combines its verdict with the ledger (has this
partner a copy? was it withdrawn or held?) into the action ``check`` reports.

Dates: every instant is UTC. An embargo ends at publication + N days (that instant is allowed); a
grant with ``expires = D`` is in force through the whole UTC day D and expired from D + 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from . import dates
from .config import Config, GrantConfig, OverrideConfig, PartnerConfig, SourceConfig
from .licenses import License, license_from_url, parse_license
from .models import Entry, Image, Permission
from .urls import SiteIdentity, url_key


@dataclass(frozen=True)
class Verdict:
    """May this partner have this entry now?"""

    allowed: bool
    reason: str | None = None
    not_before: dt.datetime | None = None       # set when waiting for an embargo
    permission: Permission | None = None
    no_derivatives: bool = False
    license: License | None = None              # for the footer
    #: A denial that takes permission away from an existing copy (grant removed, override skip,
    #: licence changed). An expired grant or an embargo never does.
    revokes: bool = True

    @property
    def waiting(self) -> bool:
        return self.not_before is not None


def _folded(values: Iterable[str]) -> dict[str, str]:
    return {v.casefold(): v for v in values}


def _first_match(entry: Entry, wanted: Iterable[str]) -> str | None:
    """The first of the entry's categories/tags named in ``wanted`` (case-insensitive), as the entry spells it."""
    folded = {w.casefold() for w in wanted}
    for category in entry.categories:
        if category.casefold() in folded:
            return category
    return None


class Rules:
    """The config's permission rules, indexed for fast lookups."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.grants: dict[tuple[str, str], GrantConfig] = {(g.source, g.partner): g for g in config.grants}
        self.sites = {
            sid: SiteIdentity(s.site_url, s.aliases, config.rewrite.strip_params) for sid, s in config.sources.items()
        }
        #: source → the number of its site: sources whose hosts meet (directly or through another) share one.
        self.site_groups: dict[str, int] = {}
        for n, sid in enumerate(self.sites):
            meets = {self.site_groups[other] for other in self.site_groups
                     if self.sites[other].hosts & self.sites[sid].hosts}
            group = min(meets, default=n)
            for other, g in self.site_groups.items():
                if g in meets:
                    self.site_groups[other] = group
            self.site_groups[sid] = group
        self._overrides: dict[str, list[OverrideConfig]] = {}
        for override in config.overrides:
            self._overrides.setdefault(override.source, []).append(override)

    # --- overrides -----------------------------------------------------------------------------

    def post_key(self, source: str, url: str) -> tuple[int, str] | None:
        """A post's key across the sources of one site (sources whose site_url/aliases share a host):
        (the site's number, the URL's path and query), or None for a URL off the source's site."""
        site = self.sites[source]
        key = site.key(url)
        return (self.site_groups[source], key[len(site.host):]) if key is not None else None

    def matches(self, override_entry: str, entry: Entry) -> bool:
        """Does an override's ``entry`` (an original URL in any spelling, or a guid) name this entry?"""
        if override_entry in (entry.guid, entry.current_guid):  # its key, or the guid its feed gives now
            return True
        site = self.sites[entry.source]
        want = site.key(override_entry) or url_key(override_entry, self.config.rewrite.strip_params)
        for candidate in (entry.url, entry.guid, entry.current_guid):
            if candidate and (site.key(candidate) or url_key(candidate, self.config.rewrite.strip_params)) == want:
                return True
        return False

    def overrides_for(self, entry: Entry, partner: str) -> list[OverrideConfig]:
        """The overrides that apply to this entry on this partner; partner-specific ones last (they win)."""
        found = [o for o in self._overrides.get(entry.source, ()) if
                 (o.partner is None or o.partner == partner) and self.matches(o.entry, entry)]
        return sorted(found, key=lambda o: o.partner is not None)

    def override_field(self, entry: Entry, partner: str, name: str) -> object | None:
        """The value an editor set for ``name`` on this entry and partner, or None."""
        value = None
        for override in self.overrides_for(entry, partner):
            if getattr(override, name) is not None:
                value = getattr(override, name)
        return value

    def featured_image(self, entry: Entry, partner: str) -> Image | None:
        """The override's image (with its credit), else the entry's own first candidate."""
        overrides = self.overrides_for(entry, partner)
        chosen: dict[str, str | None] = {}
        for override in overrides:
            for name in ("featured_image", "featured_image_alt", "featured_image_caption",
                         "featured_image_credit", "featured_image_credit_url", "featured_image_note"):
                if getattr(override, name) is not None:
                    chosen[name] = getattr(override, name)
        base = entry.images[0] if entry.images else None
        if chosen.get("featured_image"):
            return Image(
                url=chosen["featured_image"] or "",
                alt=chosen.get("featured_image_alt"),
                caption=chosen.get("featured_image_caption"),
                credit=chosen.get("featured_image_credit"),
                credit_url=chosen.get("featured_image_credit_url"),
                note=chosen.get("featured_image_note"),
            )
        if base is None:
            return None
        # An editor may credit or describe the entry's own image without replacing it.
        return Image(
            url=base.url,
            alt=chosen.get("featured_image_alt", base.alt),
            caption=chosen.get("featured_image_caption", base.caption),
            credit=chosen.get("featured_image_credit", base.credit),
            credit_url=chosen.get("featured_image_credit_url", base.credit_url),
            note=chosen.get("featured_image_note", base.note),
        )

    # --- licences ------------------------------------------------------------------------------

    def license_of(self, source: SourceConfig, entry: Entry) -> tuple[License | None, str | None]:
        """(the licence that applies, the declared value when it is not one we know)."""
        if source.license == "permission":
            return None, None
        if source.license != "feed":
            return parse_license(source.license), None
        declared = entry.license
        if not declared:
            return None, None
        lic = parse_license(declared) or license_from_url(declared)
        return lic, (None if lic else declared)

    # --- the verdict ---------------------------------------------------------------------------

    def verdict(self, entry: Entry, partner: PartnerConfig, now: dt.datetime,
                first_seen: dt.datetime | None = None) -> Verdict:
        """May ``partner`` have ``entry`` at ``now``, and under which permission?"""
        source = self.config.sources[entry.source]
        if self.override_field(entry, partner.id, "skip"):
            return Verdict(False, "skipped by an editor's override")
        excluded = _first_match(entry, source.exclude_categories)
        if excluded:
            return Verdict(False, f"category excluded by the author: {excluded}")

        lic, unknown_license = self.license_of(source, entry)
        grant = self.grants.get((entry.source, partner.id))
        expired = None
        if grant is not None and grant.expires is not None and now.date() > grant.expires:
            expired, grant = grant, None

        if grant is not None:
            excluded = _first_match(entry, grant.exclude_categories)
            if excluded:
                return Verdict(False, f"category excluded: {excluded}")
            if grant.include_categories and not _first_match(entry, grant.include_categories):
                return Verdict(False, "category not included: " + ", ".join(grant.include_categories))
            permission = Permission(grant_evidence=grant.evidence, license_spdx=lic.spdx if lic else None)
        elif lic is not None:
            if lic.noncommercial and partner.commercial:
                if expired is not None:
                    return Verdict(False, f"grant expired {expired.expires.isoformat()}", revokes=False)  # type: ignore[union-attr]
                return Verdict(False, f"licence {lic.spdx} forbids a commercial partner")
            permission = Permission(license_spdx=lic.spdx)
        elif expired is not None:
            return Verdict(False, f"grant expired {expired.expires.isoformat()}", revokes=False)  # type: ignore[union-attr]
        elif unknown_license:
            return Verdict(False, f"no grant (the feed's licence {unknown_license} is not Creative Commons)")
        elif source.license == "feed":
            return Verdict(False, "no grant (the feed declares no licence)")
        else:
            return Verdict(False, "no grant")

        days = max(source.embargo_days, grant.embargo_days if grant is not None else 0)
        when = entry.when or first_seen
        if days and when is not None:
            not_before = dates.add(when, days=days)  # saturates: an entry dated 9999-12-31 stays embargoed
            if now < not_before:
                return Verdict(False, f"embargo: not before {not_before:%Y-%m-%d %H:%M} UTC", not_before=not_before,
                               permission=permission, revokes=False)
        return Verdict(True, permission=permission, no_derivatives=bool(lic and lic.noderivatives), license=lic)
