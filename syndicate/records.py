"""The rows of the state store as plain objects: the delivery ledger's rows, each feed's state, the media copies.

These dataclasses are the one declaration of the ledger's and the feeds' fields: a store builds its
tables from them (``sqlite_store`` does), so a field is added here and nowhere else; ``KEYS`` names
each row's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Delivery states.
PENDING = "pending"       # due: no copy yet, or an update still to push; retried every run
INTENT = "intent"         # a remote write was about to be sent; its outcome is unknown until reconciled
OK = "ok"                 # the copy exists and holds what we last pushed
HELD = "held"             # the partner edited the copy; our update waits for an editor
WITHDRAWN = "withdrawn"   # unpublished; sticks
FAILED = "failed"         # kept failing past [delivery] give_up_after_hours: shown loudly, still retried every run


@dataclass
class Delivery:
    """One row of the ledger: entry × partner."""

    partner: str
    source: str
    guid: str
    state: str = PENDING
    intent: str | None = None              # create | update | withdraw, while a remote write is in flight
    slug: str | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    remote_status: str | None = None
    remote_version: str | None = None      # modified_gmt / updated_at at our last write or read
    remote_hash: str | None = None         # hash of the remote's pushed fields as read back after our write
    pushed_hash: str | None = None         # Article.content_hash of what we pushed
    render_key: str | None = None          # fingerprint of every input of the rendered article
    entry_url: str | None = None
    title: str | None = None
    permission: str | None = None
    created_at: str | None = None
    pushed_at: str | None = None
    attempts: int = 0
    last_error: str | None = None
    failing_since: str | None = None
    note: str | None = None
    updated_at: str | None = None

    @property
    def has_copy(self) -> bool:
        """A copy exists (or may exist) on the partner and is not withdrawn."""
        return self.remote_id is not None and self.state != WITHDRAWN

    def as_json(self) -> dict[str, Any]:
        """One object of ``status --json``."""
        return {
            "partner": self.partner, "source": self.source, "guid": self.guid, "entry": self.entry_url,
            "title": self.title, "state": self.state, "slug": self.slug, "remote_id": self.remote_id,
            "url": self.remote_url, "remote_status": self.remote_status, "attempts": self.attempts,
            "last_error": self.last_error, "pushed_at": self.pushed_at, "permission": self.permission,
            "note": self.note,
        }


@dataclass
class FeedState:
    """What we know of one source's feed."""

    source: str
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: str | None = None
    ok_at: str | None = None
    last_error: str | None = None
    failures: int = 0
    warning: str | None = None
    license: str | None = None
    bad_version: bool = False              # the validators are of a broken version
    body_hash: str | None = None           # the last body read (and its Content-Type): not parsed again
    parse_key: str | None = None           # what that body was parsed with (source settings, our version)


@dataclass
class MediaCopy:
    """An image copied into a partner's media library (a featured image, or a body image).

    Keyed by the image's URL; ``sha256`` (of its bytes, where known) lets the same image under another
    URL reuse the upload."""

    partner: str
    source_url: str
    remote_id: str | None = None
    remote_url: str | None = None
    created_at: str | None = None
    sha256: str | None = None


#: The key fields of each row kind.
KEYS: dict[type, tuple[str, ...]] = {Delivery: ("partner", "source", "guid"), FeedState: ("source",),
                                     MediaCopy: ("partner", "source_url")}
