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
from typing import Any

from ..config import PartnerConfig, SiteURL
from ..models import Article
from .base import Check, PartnerEdited, PublishContext, PublishError, RemoteCopy


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

    def __init__(self, config: Config, context: PublishContext, folder: Path | None = None) -> None:
        self.config = config
        self.context = context
        self.folder = folder or (context.base_dir / config.path)
        self._renderer: Any = None

    @property
    def renderer(self) -> Any:
        """The template environment (a templates/ folder beside the config overrides the packaged page)."""
        if self._renderer is None:
            from ..render import Renderer

            self._renderer = Renderer(self.context.base_dir)
        return self._renderer

    def prepare_html(self, html: str) -> str:
        """Files receive the body as rendered."""
        return html

    def url_for(self, slug: str) -> str:
        """The copy's public URL."""
        return f"{self.config.base_url}/{slug}/"

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
            return json.loads(self._paths(slug)[1].read_text(encoding="utf-8")).get("marker")
        except (OSError, ValueError):
            return None

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
        return RemoteCopy(remote_id=slug, url=self.url_for(slug), slug=slug, status=article.status,
                          fields_hash=hashlib.sha256(page).hexdigest())

    def refresh(self, remote_ids: list[str]) -> dict[str, RemoteCopy | None]:
        """Read the copies back from the folder."""
        return {rid: self._read(rid) for rid in remote_ids}

    def find(self, article: Article, marker: str) -> RemoteCopy | None:
        """A copy written by an earlier run that crashed before recording it."""
        for n in range(1, 50):
            slug = article.slug if n == 1 else f"{article.slug}-{n}"
            found = self._marker_of(slug)
            if found is None and not self._paths(slug)[0].exists():
                return None
            if found == marker:
                return self._read(slug)
        return None

    def create(self, article: Article, marker: str) -> RemoteCopy:
        """Write a new copy under the first free slug of the article's slug family."""
        for n in range(1, 1000):
            slug = article.slug if n == 1 else f"{article.slug}-{n}"
            html_path, json_path = self._paths(slug)
            if not html_path.exists() and not json_path.exists():
                return self._write(article, slug, marker)
            if self._marker_of(slug) == marker:
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
        return None

    def test(self) -> list[Check]:
        """Is the folder writable?"""
        folder = self.folder
        probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), folder)
        writable = os.access(probe, os.W_OK)
        return [Check(writable, "folder writable", str(folder))]

    def close(self) -> None:
        """Nothing to release."""
