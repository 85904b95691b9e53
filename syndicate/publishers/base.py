"""What every partner kind implements, and what the pipeline gives it.

A publisher turns an ``Article`` into a copy on the partner and reads copies back. It knows nothing of
permissions, the ledger or convergence: ``pipeline`` decides what to do and records what happened.
Built-in kinds are registered exactly like any other (``config.PARTNER_KINDS``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..config import PartnerConfig
from ..models import Article


class PublishError(Exception):
    """A delivery failed; str(e) says why in plain words, naming the partner. It stays due."""

    #: True when trying again later may work (timeouts, 5xx, 429); False for e.g. a 403.
    transient: bool = True


class UnknownOutcome(PublishError):
    """A write was sent and its answer never came (timeout, reset, 5xx): the copy may or may not exist."""


class PartnerDown(PublishError):
    """The partner cannot be used at all this run (unreachable, credentials refused): stop its deliveries."""


class PartnerEdited(PublishError):
    """The copy was changed on the partner since our last push: the update is held for an editor."""

    transient = False


class ImageError(PublishError):
    """The featured image could not be fetched or uploaded; the delivery fails and is retried next run."""


#: At most this many of an entry's categories become tags on a partner. Each new tag costs the partner
#: a request or two (WordPress: a lookup and a create) and stays in its taxonomy for good, so a feed
#: must not be able to make a partner create hundreds from one post. 15 is where WordPress.com stops
#: listing a post in its Reader (more than 15 tags and categories together reads as tag spam), and
#: far above what honest feeds carry (a handful a post).
MAX_TAGS_PER_ENTRY = 15


def capped_tags(article: Article) -> tuple[tuple[str, ...], str | None]:
    """The article's first ``MAX_TAGS_PER_ENTRY`` distinct tags (whitespace folded, case-insensitive),
    and a warning for the run's report when there were more."""
    distinct: dict[str, str] = {}
    for tag in article.tags:
        name = " ".join(tag.split())
        if name:
            distinct.setdefault(name.casefold(), name)
    names = tuple(distinct.values())
    if len(names) <= MAX_TAGS_PER_ENTRY:
        return names, None
    return names[:MAX_TAGS_PER_ENTRY], (
        f"{article.canonical_url or article.title} has {len(names)} tags: only the first {MAX_TAGS_PER_ENTRY} "
        "were sent (each new tag is created on the partner)")


@dataclass(frozen=True)
class RemoteCopy:
    """A copy as the partner reports it."""

    remote_id: str
    url: str | None
    slug: str | None
    status: str | None = None
    #: The CMS's own version of the copy (WordPress ``modified_gmt``, Ghost ``updated_at``).
    version: str | None = None
    #: A hash of the fields we push (title, body, featured image, tags) as the partner holds them now;
    #: it changes when, and only when, someone edits one of those fields.
    fields_hash: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One line of ``partners test``."""

    ok: bool
    what: str
    detail: str = ""
    warning: bool = False   # ok, but something an operator should change


@dataclass(frozen=True)
class FetchedImage:
    """An image's bytes, fetched through the guarded fetcher and checked by its magic bytes."""

    url: str
    data: bytes
    content_type: str      # image/jpeg, image/png, image/gif, image/webp, image/avif
    filename: str


class MediaCache(Protocol):
    """Images already uploaded to this partner, so updates reuse them."""

    def get(self, source_url: str) -> tuple[str, str] | None:
        """(remote id, remote URL) of the uploaded copy of ``source_url``."""

    def put(self, source_url: str, remote_id: str, remote_url: str) -> None:
        """Remember an upload."""

    def forget(self, source_url: str) -> None:
        """The upload is gone from the partner."""


@dataclass
class PublishContext:
    """What the pipeline lends a publisher."""

    fetch_image: Callable[[str], FetchedImage]
    media: MediaCache
    user_agent: str = "syndicate"
    #: The config file's folder: relative paths in a partner's config are relative to it.
    base_dir: Path = Path(".")
    timeout: float = 10
    #: Total seconds this publisher may spend waiting on Retry-After / backoff in one run.
    max_retry_seconds: float = 120
    #: Warnings for the run's report (e.g. "canonical meta key dropped by WordPress").
    warnings: list[str] = field(default_factory=list)
    sleep: Callable[[float], None] | None = None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)


class Publisher(Protocol):
    """One partner kind. ``marker`` is a stable id of entry × partner that the copy carries.

    What the pipeline needs to know about a kind is declared here, so that no code outside
    ``publishers/`` names one: adding a kind is one module and one line in ``config.PARTNER_KINDS``."""

    config: PartnerConfig
    #: Must each write's intent be committed before it is sent? (A CMS: yes. A folder, whose copies
    #: carry our marker where ``find`` reads it cheaply: no, one commit per pass.)
    needs_intent: bool
    #: Do copies change on the partner between runs (URLs, statuses, deletions), so they are read back?
    reads_back: bool

    @staticmethod
    def preload() -> None:
        """Import what pushing needs (e.g. the HTTP client), while the feeds are being parsed."""

    def predicted_url(self, slug: str) -> str | None:
        """The URL a copy with this slug will have, when the partner's URLs can be foretold."""

    def where(self) -> str | None:
        """Where a person can open the copies (a folder), for the run's summary; None for a CMS."""

    def prepare_html(self, html: str) -> str:
        """The body as this CMS must receive it (e.g. WordPress: ``[``/``]`` encoded); used by preview too."""

    def refresh(self, remote_ids: list[str]) -> dict[str, RemoteCopy | None]:
        """Read the current state of our copies (None: gone from the partner)."""

    def find(self, article: Article, marker: str) -> RemoteCopy | None:
        """Look for a copy we may have created (slug family across all statuses, our marker)."""

    def create(self, article: Article, marker: str) -> RemoteCopy:
        """Create the copy; UnknownOutcome when the answer was lost."""

    def update(self, remote_id: str, article: Article, marker: str, expected_hash: str | None,
               force: bool = False) -> RemoteCopy:
        """Update the copy; PartnerEdited when its fields no longer hash to ``expected_hash`` (unless force)."""

    def withdraw(self, remote_id: str, delete: bool = False) -> RemoteCopy | None:
        """Unpublish (draft) or delete the copy."""

    def test(self) -> list[Check]:
        """Check credentials, reachability and capabilities; change nothing."""

    def close(self) -> None:
        """Release connections."""


class PublisherDefaults:
    """What most kinds (a CMS) answer to the questions of ``Publisher``."""

    needs_intent = True
    reads_back = True

    @staticmethod
    def preload() -> None:
        """Nothing to load early."""

    def predicted_url(self, slug: str) -> str | None:
        """A CMS tells a copy's URL only once it exists."""
        return None

    def where(self) -> str | None:
        """A CMS's copies are opened on the CMS."""
        return None


def slug_family(slug: str, size: int) -> list[str]:
    """The first ``size`` members of a slug's family, as a CMS names a taken slug's namesakes:
    ``slug``, ``slug-2``, ``slug-3`` …"""
    return [slug] + [f"{slug}-{n}" for n in range(2, size + 1)]
