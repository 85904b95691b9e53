"""The ``files`` partner: a folder of ``<slug>.html`` and ``<slug>.json``, for trying the tool and static sites.

``<slug>.html`` is a small standalone page around the article exactly as pushed; ``<slug>.json`` is
the partner object of ``preview --format json`` (without ``action``/``reason``) plus ``source_url``.
The copy of slug S lives at ``<base_url>/<S>/``. A copy's "remote id" is its slug.

Writes go to a temporary file renamed into place, so a crash never leaves half a file; the JSON
carries our marker so a copy written by a crashed run is recognised and adopted, not duplicated.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import PartnerConfig, SiteURL
from ..models import Article
from .base import (
    Check,
    FetchedImage,
    ImageError,
    PartnerEdited,
    PublishContext,
    PublishError,
    RemoteCopy,
    UploadedImage,
    slug_family,
)

if TYPE_CHECKING:
    from ..render import Renderer


class Config(PartnerConfig):
    kind: str = "files"
    path: str
    base_url: SiteURL


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file renamed into place: a crash never leaves half a file.

    The temporary name is fixed per file (one sync at a time holds the lock), which spares
    mkstemp's random names and retries: thousands of copies are written per run."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Publisher:
    """Writes copies into a folder."""

    #: A crash between writing a copy and recording it is reconciled from the copy's marker: no intent row.
    needs_intent = False
    #: A folder's URLs never change; edits are caught at update time.
    reads_back = False

    def __init__(self, config: Config, context: PublishContext, folder: Path | None = None) -> None:
        self.config = config
        self.context = context
        self.folder = folder or (context.base_dir / config.path)
        self._renderer: Renderer | None = None
        self._by_marker: dict[str, str] | None = None  # marker → slug of every copy in the folder

    @property
    def renderer(self) -> Renderer:
        """The template environment (a templates/ folder beside the config overrides the packaged page)."""
        if self._renderer is None:
            from ..render import Renderer

            self._renderer = Renderer(self.context.base_dir)
        return self._renderer

    def prepare_html(self, html: str) -> str:
        """Files receive the body as rendered."""
        return html

    @staticmethod
    def preload() -> None:
        """Nothing to load early."""

    def url_for(self, slug: str) -> str:
        """The copy's public URL."""
        return f"{self.config.base_url}/{slug}/"

    def predicted_url(self, slug: str) -> str | None:
        """A folder's URLs are known before the copy exists."""
        return self.url_for(slug)

    def where(self) -> str | None:
        """The folder, once it exists."""
        folder = self.folder.resolve()
        return f"{folder}/" if folder.is_dir() else None

    def _paths(self, slug: str) -> tuple[Path, Path]:
        if "/" in slug or slug.startswith(".") or not slug:
            raise PublishError(f"{self.config.id}: unsafe slug {slug!r}")
        return self.folder / f"{slug}.html", self.folder / f"{slug}.json"

    def _read(self, slug: str) -> RemoteCopy | None:
        html_path, json_path = self._paths(slug)
        try:
            page = html_path.read_bytes()
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return RemoteCopy(remote_id=slug, url=self.url_for(slug), slug=slug, status=meta.get("status"),
                          version=None, fields_hash=hashlib.sha256(page).hexdigest())

    def _marker_of(self, slug: str) -> str | None:
        try:
            found = json.loads(self._paths(slug)[1].read_text(encoding="utf-8")).get("marker")
        except (OSError, ValueError, AttributeError):
            return None
        return found if isinstance(found, str) else None

    def _write(self, article: Article, slug: str, marker: str) -> RemoteCopy:
        html_path, json_path = self._paths(slug)
        page = self.renderer.files_page(self.config, article, self.url_for(slug)).encode("utf-8")
        meta = {**article.as_json(), "slug": slug, "source_url": article.source_url, "marker": marker}
        try:  # a folder that cannot be written fails this delivery (it stays due), not the whole run
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(json_path, (json.dumps(meta, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
            _write_atomic(html_path, page)
        except OSError as exc:
            raise PublishError(f"{self.config.id}: cannot write {slug}.html into {self.folder}: "
                               f"{exc.strerror or exc}") from None
        if self._by_marker is not None:
            self._by_marker[marker] = slug
        return RemoteCopy(remote_id=slug, url=self.url_for(slug), slug=slug, status=article.status,
                          fields_hash=hashlib.sha256(page).hexdigest())

    def refresh(self, remote_ids: list[str]) -> dict[str, RemoteCopy | None]:
        """Read the copies back from the folder."""
        return {rid: self._read(rid) for rid in remote_ids}

    def _copies_by_marker(self) -> dict[str, str]:
        """marker → slug of every copy in the folder, read once per run when first needed (a create or
        a reconciliation), then kept up to date by our own writes."""
        if self._by_marker is None:
            self._by_marker = {}
            for json_path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
                found = self._marker_of(json_path.stem)
                if found is not None and json_path.with_suffix(".html").exists():
                    self._by_marker.setdefault(found, json_path.stem)
        return self._by_marker

    def find(self, article: Article, marker: str) -> RemoteCopy | None:
        """A copy of ours written by an earlier run that crashed before recording it, under any slug:
        a copy is known by the marker it carries, not by where its slug landed."""
        slug = self._copies_by_marker().get(marker)
        return self._read(slug) if slug is not None else None

    def create(self, article: Article, marker: str) -> RemoteCopy:
        """Write a new copy under the first free slug of the article's slug family — or, when a crashed
        run already wrote this entry's copy (our marker, any slug), rewrite that one: never a second."""
        existing = self._copies_by_marker().get(marker)
        if existing is not None:
            return self._write(article, existing, marker)
        for slug in slug_family(article.slug, 1000):
            html_path, json_path = self._paths(slug)
            if not html_path.exists() and not json_path.exists():
                return self._write(article, slug, marker)
        raise PublishError(f"{self.config.id}: no free slug for {article.slug!r}")

    def update(self, remote_id: str, article: Article, marker: str, expected_hash: str | None,
               force: bool = False) -> RemoteCopy:
        """Rewrite the copy, unless someone edited its page since our last write."""
        current = self._read(remote_id)
        if current is not None and expected_hash and current.fields_hash != expected_hash and not force:
            raise PartnerEdited(f"{self.config.id}: {remote_id}.html was edited since our last push")
        return self._write(article, remote_id, marker)

    def withdraw(self, remote_id: str, delete: bool = False) -> RemoteCopy | None:
        """Remove the two files."""
        for path in self._paths(remote_id):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self._by_marker is not None:
            self._by_marker = {m: s for m, s in self._by_marker.items() if s != remote_id}
        return None

    def upload_image(self, image: FetchedImage) -> UploadedImage:
        """A body image into ``<path>/media/<name>``, served at ``<base_url>/media/<name>``. The name
        carries a piece of the bytes' hash: the same image is one file, two images never share one."""
        from ..bodyimages import media_name, sha256_of

        name = media_name(image.filename, sha256_of(image.data))
        path = self.folder / "media" / name
        try:
            if not path.is_file():  # the name says its bytes: an existing file is this image already
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(path, image.data)
        except OSError as exc:
            raise ImageError(f"{self.config.id}: cannot write media/{name} into {self.folder}: "
                             f"{exc.strerror or exc}") from None
        return UploadedImage(f"media/{name}", f"{self.config.base_url}/media/{name}")

    def test(self) -> list[Check]:
        """Is the folder writable?"""
        folder = self.folder
        probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), folder)
        writable = os.access(probe, os.W_OK)
        return [Check(writable, "folder writable", str(folder))]

    def close(self) -> None:
        """Nothing to release."""
