"""Plain typed data passed between the stages: Entry, Image, Decision, Article."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: ``[rewrite]``'s defaults: the hosts whose embeds are kept, the tracking parameters dropped from URLs.
DEFAULT_EMBED_HOSTS = ("www.youtube.com", "youtube.com", "www.youtube-nocookie.com", "player.vimeo.com")
DEFAULT_STRIP_PARAMS = (
    "utm_*", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "igshid", "yclid",
)

#: Every action ``check`` can report for an entry × partner.
ACTIONS = ("create", "update", "unchanged", "skip", "wait", "held", "withdraw", "withdrawn")


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``: ``2019-03-25T08:00:00Z``."""
    if value is None:
        return None
    return utc(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]


def from_iso(value: str | None) -> dt.datetime | None:
    """The inverse of ``iso`` (also accepts ``+00:00``)."""
    if not value:
        return None
    return utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))


def sha256(*parts: Any) -> str:
    """A stable hex digest of JSON-serialisable parts."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RewriteRules:
    """The partner-independent rules of ``[rewrite]`` (the same defaults as the config's)."""

    embed_hosts: tuple[str, ...] = DEFAULT_EMBED_HOSTS
    strip_params: tuple[str, ...] = DEFAULT_STRIP_PARAMS


@dataclass(frozen=True)
class Image:
    """A featured image and how it is credited."""

    url: str
    alt: str | None = None
    caption: str | None = None      # what the picture shows (figcaption, media:description)
    credit: str | None = None       # who made it
    credit_url: str | None = None
    note: str | None = None         # the partner's own words before the credit

    def as_json(self) -> dict[str, Any]:
        """The ``featured_image`` object of ``preview --format json``."""
        return {"url": self.url, "alt": self.alt, "caption": self.caption, "credit": self.credit,
                "credit_url": self.credit_url}


@dataclass(frozen=True)
class Entry:
    """One post of a source, normalised from its feed item."""

    source: str
    guid: str
    url: str | None                       # the original's URL, tracking parameters removed
    title: str                            # plain text
    author: str | None
    published: dt.datetime | None         # UTC
    updated: dt.datetime | None           # UTC
    categories: tuple[str, ...] = ()
    content: str = ""                     # HTML: absolute links, tracking removed, sanitised
    summary: str = ""                     # plain text, for excerpts
    images: tuple[Image, ...] = ()        # featured-image candidates, best first
    license: str | None = None            # the licence URL or id declared by the entry, else its channel
    links: tuple[str, ...] = ()           # absolute URLs of links in the content pointing at the source's own site
    content_hash: str = ""
    #: The guid the feed gives the post now, when it is not ``guid`` (the post's stable key in the
    #: ledger: the guid it was first known by). See identity.py.
    feed_guid: str | None = None

    @property
    def current_guid(self) -> str:
        """The guid the feed names the post by now (what ``check`` and ``preview`` show)."""
        return self.feed_guid or self.guid

    @property
    def when(self) -> dt.datetime | None:
        """The publication date, else the update date."""
        return self.published or self.updated

    def compute_hash(self) -> str:
        """A hash over what a reader sees of the original; a change means the original changed."""
        return sha256(self.url, self.title, self.author, self.categories, " ".join(self.content.split()),
                      [i.url for i in self.images], self.license, iso(self.published))

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict for the store."""
        data = asdict(self)
        data["published"], data["updated"] = iso(self.published), iso(self.updated)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """The inverse of ``to_json``."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["published"], data["updated"] = from_iso(data.get("published")), from_iso(data.get("updated"))
        data["categories"] = tuple(data.get("categories") or ())
        data["links"] = tuple(data.get("links") or ())
        data["images"] = tuple(Image(**i) for i in data.get("images") or ())
        return cls(**data)

    def with_hash(self) -> Entry:
        """The same entry with ``content_hash`` filled in."""
        return replace(self, content_hash=self.compute_hash())


@dataclass(frozen=True)
class Permission:
    """What allows a partner to have an entry: a grant's evidence and/or a licence."""

    grant_evidence: str | None = None
    license_spdx: str | None = None       # "CC-BY-4.0"; None under a grant on a "permission" source

    def describe(self) -> str:
        """For the ledger and ``status``: ``grant: <evidence>`` or ``licence CC-BY-4.0``."""
        if self.grant_evidence is not None:
            return f"grant: {self.grant_evidence}"
        return f"licence {self.license_spdx}"


@dataclass(frozen=True)
class Decision:
    """What happens to one entry on one partner, and why."""

    entry: Entry
    partner: str
    action: str
    reason: str | None = None
    not_before: dt.datetime | None = None
    permission: Permission | None = None
    #: The licence's terms say the body goes out as written: no cross-link retargeting.
    no_derivatives: bool = False

    def as_json(self) -> dict[str, Any]:
        """One object of ``check --json``."""
        return {
            "source": self.entry.source,
            "entry": self.entry.url,
            "guid": self.entry.current_guid,
            "title": self.entry.title,
            "partner": self.partner,
            "action": self.action,
            "reason": self.reason,
            "not_before": iso(self.not_before),
        }


@dataclass(frozen=True)
class Article:
    """An entry rendered for one partner: exactly what is pushed."""

    partner: str
    source: str
    guid: str
    title: str
    slug: str
    html: str
    excerpt: str
    canonical_url: str | None
    tags: tuple[str, ...]
    status: str                           # "draft" | "publish"
    featured_image: Image | None
    source_url: str | None
    published: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def content_hash(self) -> str:
        """A hash of every field we push that a partner edit could change; status is not one."""
        image = self.featured_image.as_json() | {"note": self.featured_image.note} if self.featured_image else None
        return sha256(self.title, self.slug, self.html, self.excerpt, self.canonical_url, self.tags, image)

    def as_json(self) -> dict[str, Any]:
        """The partner object of ``preview --format json`` without ``partner``, ``action``, ``reason``."""
        return {
            "title": self.title,
            "slug": self.slug,
            "html": self.html,
            "canonical_url": self.canonical_url,
            "tags": list(self.tags),
            "status": self.status,
            "featured_image": self.featured_image.as_json() if self.featured_image else None,
        }
