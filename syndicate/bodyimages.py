"""Body images (``images = "upload"``): the images a body shows, copied into the partner's media library,
and the body pointed at the copies.

Two pure steps and one edge, split by what they depend on:

* ``image_urls`` reads a body (already ``rewrite.clean``-ed: every URL absolute, only http(s) left) and
  names every image file it shows: ``img`` ``src`` and ``srcset`` candidates, ``picture`` ``source``
  ``srcset`` candidates, and the ``href`` of an ``<a>`` that points at one of those files or wraps an
  ``img`` and names an image file (WordPress's "link to media file": the full size around a smaller one).
* ``relocate`` points those attributes at the partner's copies and changes nothing else: alt, width,
  height, sizes and captions (``figure``/``figcaption``) stay as they are. Under an ND licence too: the
  same image from another address does not change the work.
* ``BodyImages`` (the edge) finds each image's copy in the ledger's media table — by its URL, else,
  once fetched, by its bytes (sha256), so the same image under another URL is uploaded once — and
  uploads the rest through the publisher. An image that cannot be copied keeps its original URL; the
  delivery carries the warning and the next run tries again. A run that changes nothing (preview,
  check, ``--dry-run``) only looks: what it would upload is listed, never fetched.

The uploads happen while the article is rendered, before the post's create/update intent is written:
a crash during them leaves at most an unused file in the media library (its ledger row never written,
the next run uploads it again), never a post.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .publishers.base import FetchedImage, PartnerDown, PublishError, UploadedImage
from .redact import redact
from .store import Store
from .urls import web_url

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser

log = logging.getLogger("syndicate")

#: The path endings that make a link (around an image) a link to an image file.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".avif")
#: How many images of one body a warning names (the rest are counted).
WARNING_NAMES = 3


# --- srcset -------------------------------------------------------------------------------------------

def parse_srcset(value: str) -> list[tuple[str, str]]:
    """A ``srcset``'s candidates as (URL, descriptors), as the HTML standard splits them.

    A URL is a run of non-space characters (it may hold commas: only trailing ones end it); its
    descriptors run to the next comma outside parentheses."""
    candidates: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        if not url:
            break
        if url.endswith(","):
            candidates.append((url.rstrip(","), ""))
            continue
        start, depth = i, 0
        while i < n and (value[i] != "," or depth):
            depth += {"(": 1, ")": -1}.get(value[i], 0)
            depth = max(depth, 0)
            i += 1
        candidates.append((url, " ".join(value[start:i].split())))
    return [(url, descriptors) for url, descriptors in candidates if url]


def format_srcset(candidates: Iterable[tuple[str, str]]) -> str:
    """The inverse of ``parse_srcset``: ``url descriptors, url descriptors``."""
    return ", ".join(f"{url} {descriptors}".strip() for url, descriptors in candidates)


# --- which images a body shows, and pointing them elsewhere ----------------------------------------

def _web(value: str | None) -> str | None:
    """``value`` as a checked, serialised http(s) URL, or None."""
    url = web_url(value) if value else None
    return url.href if url is not None else None


def _is_image_path(url: str) -> bool:
    return unquote(urlsplit(url).path).lower().endswith(IMAGE_EXTENSIONS)


def _parse(html: str) -> LexborHTMLParser:
    from selectolax.lexbor import LexborHTMLParser  # loaded by runs that read bodies, not by every run

    return LexborHTMLParser("<body>" + html)


def _shown(tree: LexborHTMLParser) -> list[str]:
    """The image files ``img`` and ``picture > source`` show, in document order."""
    found: list[str] = []
    for node in tree.css("img, picture > source"):
        attrs = node.attrs
        if node.tag == "img":
            found.append(attrs.get("src") or "")
        found += [url for url, _ in parse_srcset(attrs.get("srcset") or "")]
    return found


def _linked(tree: LexborHTMLParser, shown: set[str]) -> list[str]:
    """The ``<a href>`` that point at an image file: one the body shows, or any image file around an img."""
    found = []
    for node in tree.css("a[href]"):
        href = _web(node.attrs.get("href"))
        if href is not None and (href in shown or (node.css_first("img") is not None and _is_image_path(href))):
            found.append(href)
    return found


def image_urls(html: str) -> tuple[str, ...]:
    """Every image file a (cleaned) body shows or links to, once each, in document order (http(s) only)."""
    if "<img" not in html and "<source" not in html:
        return ()
    tree = _parse(html)
    shown = [u for u in (_web(v) for v in _shown(tree)) if u is not None]
    return tuple(dict.fromkeys(shown + _linked(tree, set(shown))))


def relocate(html: str, copies: Mapping[str, str]) -> str:
    """The body with every image URL that has a copy (``copies``: original → copy) pointing at it.

    Only ``src``, ``srcset`` candidates and image ``href``s change; a copy URL is data from a partner's
    API, so it is checked and serialised first (an unusable one leaves the original)."""
    checked = {original: href for original, copy in copies.items() if (href := _web(copy)) is not None}
    if not checked:
        return html
    tree = _parse(html)
    shown = {u for u in (_web(v) for v in _shown(tree)) if u is not None}
    changed = False

    def moved(value: str | None) -> str | None:
        href = _web(value)
        return checked.get(href) if href is not None else None

    for node in tree.css("img, picture > source, a[href]"):
        attrs = node.attrs
        if node.tag == "a":
            href = _web(attrs.get("href"))
            if href is not None and href in checked and (href in shown or node.css_first("img") is not None):
                attrs["href"] = checked[href]
                changed = True
            continue
        if node.tag == "img" and (target := moved(attrs.get("src"))) is not None:
            attrs["src"] = target
            changed = True
        srcset = attrs.get("srcset")
        if srcset:
            candidates = parse_srcset(srcset)
            new = [(moved(url) or url, descriptors) for url, descriptors in candidates]
            if new != candidates:
                attrs["srcset"] = format_srcset(new)
                changed = True
    if not changed:
        return html
    body = tree.body
    return (body.inner_html or "") if body is not None else html


# --- the edge: the partner's media library, through the ledger ----------------------------------------

@dataclass(frozen=True)
class Relocation:
    """Where one body's images point on one partner, and what could not be copied."""

    #: (original URL, the partner's copy), for every image that has a copy.
    copies: tuple[tuple[str, str], ...] = ()
    #: Images without a copy that this run does not upload (a run that changes nothing, a held copy).
    to_upload: tuple[str, ...] = ()
    #: (original URL, why it could not be copied): these keep their original URL, and are tried next run.
    failed: tuple[tuple[str, str], ...] = ()

    def fingerprint(self) -> list[tuple[str, str]]:
        """What of the relocation shapes the article (for its render key)."""
        return sorted(self.copies)

    def warning(self) -> str | None:
        """The delivery's warning when some images could not be copied, else None."""
        if not self.failed:
            return None
        # the reason names the image already when it is the fetcher's ("body image URL could not …")
        named = "; ".join(why if url.split("?", 1)[0] in why else f"{url} ({why})"
                          for url, why in self.failed[:WARNING_NAMES])
        more = len(self.failed) - WARNING_NAMES
        count = len(self.failed)
        return redact(f"{count} body image{'s' if count > 1 else ''} could not be copied into the media library "
                      f"and keep{'' if count > 1 else 's'} the original URL (tried again next run): {named}"
                      + (f"; and {more} more" if more > 0 else ""))

    def upload_note(self) -> str | None:
        """What a run that changes nothing says about the images a sync would upload, else None."""
        if not self.to_upload:
            return None
        count = len(self.to_upload)
        return (f"{count} body image{'s' if count > 1 else ''} to upload into the partner's media library: "
                + ", ".join(self.to_upload))


def sha256_of(data: bytes) -> str:
    """The hex sha256 of an image's bytes: the same image under two URLs is one upload."""
    return hashlib.sha256(data).hexdigest()


def media_name(filename: str, digest: str) -> str:
    """A file name for an image in a folder: its own (safe) name with a piece of its hash, so two
    different images of the same name never overwrite each other, and the same bytes land on one file."""
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    return f"{stem[:60] or 'image'}-{digest[:12]}" + (f".{ext}" if ext else "")


class BodyImages:
    """One partner's body images in one run: each image's copy, from the ledger or uploaded now.

    ``fetch``: the guarded image fetcher (ImageError when it cannot be had or is not an image);
    ``upload``: the publisher's ``upload_image``, or None in a run that changes nothing (then images
    without a copy are only listed). Each image is tried at most once per run."""

    def __init__(self, store: Store, partner: str, fetch: Callable[[str], FetchedImage] | None = None,
                 upload: Callable[[FetchedImage], UploadedImage] | None = None) -> None:
        self.store, self.partner, self.fetch, self.upload = store, partner, fetch, upload
        self._copies: dict[str, str] = {}
        self._failed: dict[str, str] = {}
        self._down: str | None = None  # the partner went down: no more uploads this run

    def relocation(self, urls: Iterable[str], *, may_upload: bool) -> Relocation:
        """Each image's copy; with ``may_upload`` (a copy about to be created or updated), images
        without one are fetched and uploaded now."""
        copies: list[tuple[str, str]] = []
        to_upload: list[str] = []
        failed: list[tuple[str, str]] = []
        for url in urls:
            copy = self._copies.get(url)
            if copy is None:
                known = self.store.media(self.partner, url)
                if known is not None and known[1]:
                    copy = self._copies[url] = known[1]
            if copy is not None:
                copies.append((url, copy))
            elif not may_upload or self.upload is None or self.fetch is None:
                to_upload.append(url)
            elif url in self._failed:
                failed.append((url, self._failed[url]))
            else:
                copy, why = self._copy(url)
                if copy is not None:
                    copies.append((url, copy))
                else:
                    failed.append((url, why))
        return Relocation(tuple(copies), tuple(to_upload), tuple(failed))

    def _copy(self, url: str) -> tuple[str | None, str]:
        """(the copy's URL, "") once uploaded or found by its bytes, else (None, why)."""
        assert self.fetch is not None and self.upload is not None
        if self._down is not None:
            return self._fail(url, self._down)
        try:
            image = self.fetch(url)
            digest = sha256_of(image.data)
            same = self.store.media_by_hash(self.partner, digest)
            if same is not None and same[1]:
                remote_id, copy = same
            else:
                uploaded = self.upload(image)
                remote_id, copy = uploaded.remote_id, uploaded.url
        except PartnerDown as exc:
            self._down = f"the partner is unreachable: {exc}"
            return self._fail(url, self._down)
        except PublishError as exc:  # ImageError (fetch, not an image) or the upload refused: keep the original
            return self._fail(url, str(exc))
        # Recorded at once (durable): a crash after this line never uploads the image again.
        self.store.put_media(self.partner, url, remote_id, copy, sha256=digest)
        self._copies[url] = copy
        log.info("%s: copied body image %s → %s", self.partner, url, copy)
        return copy, ""

    def _fail(self, url: str, why: str) -> tuple[None, str]:
        why = redact(why)
        self._failed[url] = why
        log.warning("%s: body image %s could not be copied: %s", self.partner, url, why)
        return None, why
