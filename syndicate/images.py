"""Featured images: fetched through the guarded fetcher, their type told by their bytes, never SVG."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit

from .publishers.base import FetchedImage, ImageError

_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
]


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) from an image's first bytes; None for anything else (SVG included)."""
    for magic, kind, ext in _MAGIC:
        if data.startswith(magic):
            return kind, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif", ".avif"
    return None


def filename_for(url: str, ext: str) -> str:
    """A safe file name for the upload, from the URL's last path segment."""
    name = posixpath.basename(unquote(urlsplit(url).path)) or "image"
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.rsplit(".", 1)[0]).strip("-")[:80]
    return (stem or "image") + ext


def checked_image(url: str, data: bytes, what: str = "featured image") -> FetchedImage:
    """The image if its bytes are a raster type we accept, else ImageError.

    SVG is refused, by its bytes whatever its name or Content-Type: it is a document that can carry
    script, and a copy in a partner's media library (or a files partner's folder) is served from the
    partner's own origin, where such a script would run with the partner's cookies. Raster images
    cannot run anything."""
    found = sniff(data)
    if found is None:
        head = data[:200].lstrip().lower()
        kind = "an SVG" if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head else "not an image we accept"
        raise ImageError(f"{what} {url} is {kind} (JPEG, PNG, GIF, WebP or AVIF only)")
    kind, ext = found
    return FetchedImage(url=url, data=data, content_type=kind, filename=filename_for(url, ext))
