"""Jinja2 rendering: an entry, its permission and its series → the article a partner receives.

Templates: a ``templates/`` folder beside the user's config overrides the packaged ones, set by set
and file by file; a partner's ``template = "name"`` picks ``name/``, falling back to ``default/``.
Autoescape is on: titles, names and credits are text. Only the body, already sanitised by
``rewrite.clean``, is marked safe. Every URL a template writes into an ``href``/``src`` goes through
the ``web_url`` filter: the checked, serialised http(s) URL, or None (so the template writes no link)
— never ``href="None"``, never a guid such as ``javascript:alert(1)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)
from markupsafe import Markup

from .config import PartnerConfig, SourceConfig, packaged_templates
from .decide import Verdict
from .licenses import License
from .models import Article, Entry, Image
from .urls import web_url

PERMISSION_FOOTER = "Republished with permission of the author."
EXCERPT_LIMIT = 300


@dataclass(frozen=True)
class SeriesPart:
    """Another part of the entry's series that this partner has a copy of."""

    number: int
    label: str
    url: str
    title: str


def web_href(value: object) -> str | None:
    """The ``web_url`` template filter: ``value`` as a checked, serialised http(s) URL, or None.

    Templates write ``{% set link = x | web_url %}{% if link %}<a href="{{ link }}">…`` so that only
    a URL a browser reads as http(s) (on the host we read) ever reaches an ``href`` or ``src``.
    """
    url = web_url(value) if isinstance(value, str) else None
    return url.href if url is not None else None


def _environment(user_dir: str | None) -> Environment:
    loaders = []
    if user_dir:
        loaders.append(FileSystemLoader(user_dir))
    loaders.append(FileSystemLoader(str(packaged_templates())))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(default=True,
                      default_for_string=True), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=False)
    env.filters["web_url"] = web_href
    return env


class Renderer:
    """Renders articles for partners with the right template set."""

    def __init__(self, config_dir: Path | None = None) -> None:
        user_dir = config_dir / "templates" if config_dir is not None else None
        self.env = _environment(str(user_dir) if user_dir else None)
        self._cache: dict[tuple[str, str], Template] = {}

    def template(self, set_name: str, name: str) -> Template:
        """``<set>/<name>``, else ``default/<name>``."""
        key = (set_name, name)
        if key not in self._cache:
            self._cache[key] = self.env.select_template([f"{set_name}/{name}", f"default/{name}"])
        return self._cache[key]

    def fingerprint(self, set_name: str) -> str:
        """Changes when any template a partner's articles use changes (for the no-change fast path)."""
        digest = hashlib.sha256()
        for name in ("article.html",):
            template = self.template(set_name, name)
            if template.filename:
                digest.update(Path(template.filename).read_bytes())
        return digest.hexdigest()[:16]

    def article(self, *, entry: Entry, source: SourceConfig, partner: PartnerConfig, verdict: Verdict,
                body: str, series: list[SeriesPart], image: Image | None, slug: str) -> Article:
        """The article exactly as it is pushed to ``partner``."""
        context = article_context(entry=entry, source=source, partner=partner, verdict=verdict, body=body,
                                  series=series, image=image)
        html = self.template(partner.template, "article.html").render(**context).strip() + "\n"
        return Article(
            partner=partner.id,
            source=entry.source,
            guid=entry.guid,
            title=entry.title,
            slug=slug,
            html=html,
            excerpt=excerpt(entry.summary),
            canonical_url=entry.url,
            tags=entry.categories,
            status=partner.status,
            featured_image=image,
            source_url=entry.url,
            published=entry.published,
        )

    def files_page(self, partner: PartnerConfig, article: Article, url: str) -> str:
        """The standalone page the files partner writes around an article."""
        template = self.template(partner.template, "files_page.html")
        return template.render(article=article, partner=partner, url=url, body=Markup(article.html))


def footer(verdict: Verdict, partner: PartnerConfig) -> dict[str, Any]:
    """The licence line: permission, or the Creative Commons licence with its deed."""
    lic: License | None = verdict.license
    permission = verdict.permission
    by_grant = permission is not None and permission.grant_evidence is not None
    if lic is None or (by_grant and lic.noncommercial and partner.commercial):
        return {"kind": "permission", "text": PERMISSION_FOOTER, "license": None}
    return {"kind": "license", "text": f"Republished under {lic.title} ({lic.short}).", "license": lic}


def credit_line(image: Image | None) -> dict[str, str | None] | None:
    """``{note} <a href="{credit_url}">{credit}</a>`` as parts, or None when the image has no credit."""
    if image is None or not (image.credit or image.note):
        return None
    return {"note": image.note, "credit": image.credit, "credit_url": web_href(image.credit_url)}


def excerpt(summary: str, limit: int = EXCERPT_LIMIT) -> str:
    """The summary cut at a word boundary to fit ``limit`` characters (Ghost's custom_excerpt)."""
    text = " ".join(summary.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def article_context(*, entry: Entry, source: SourceConfig, partner: PartnerConfig, verdict: Verdict, body: str,
                    series: list[SeriesPart], image: Image | None) -> dict[str, Any]:
    """Everything a template sees (documented in the README)."""
    return {
        "entry": entry,
        "title": entry.title,
        "author": entry.author,
        # http(s) URLs as checked by urls.parse (None when the entry has none); the byline falls back
        # to the source's site, where the post was first published.
        "original_url": web_href(entry.url),
        "canonical_url": web_href(entry.url),
        "source": source,
        "partner": partner,
        "permission": verdict.permission,
        "license": verdict.license,
        "footer": footer(verdict, partner),
        "series": series,
        "featured_image": image,
        "credit": credit_line(image),
        "body": Markup(body),  # sanitised by rewrite.clean: the one value not escaped
    }


