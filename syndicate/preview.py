"""``preview``: what each partner would receive for one entry, as JSON, text, or a page for a browser."""

from __future__ import annotations

from typing import Any

from .config import Config
from .models import Article, Decision, Entry, iso
from .render import Renderer


def _partner_json(decision: Decision, article: Article | None) -> dict[str, Any]:
    data: dict[str, Any] = {"partner": decision.partner, "action": decision.action, "reason": decision.reason}
    if article is None:
        data.update({"title": decision.entry.title, "slug": None, "html": None,
                     "canonical_url": decision.entry.url, "tags": list(decision.entry.categories),
                     "status": None, "featured_image": None})
    else:
        data.update(article.as_json())
    return data


def preview_json(entry: Entry, results: list[tuple[Decision, Article | None]]) -> dict[str, Any]:
    """The object of ``preview --format json`` (SPEC.md)."""
    return {
        "entry": {"url": entry.url, "guid": entry.current_guid, "title": entry.title, "author": entry.author,
                  "published": iso(entry.published)},
        "partners": [_partner_json(d, a) for d, a in results],
    }


def preview_text(entry: Entry, results: list[tuple[Decision, Article | None]], config: Config) -> str:
    """A plain-text preview for a terminal."""
    from selectolax.lexbor import LexborHTMLParser

    lines = [entry.title, f"  original: {entry.url or entry.guid}", f"  author: {entry.author or '-'}",
             f"  published: {iso(entry.published) or '-'}", ""]
    for decision, article in results:
        name = config.partners[decision.partner].name
        head = f"== {name} ({decision.partner}): {decision.action}"
        if decision.reason:
            head += f" — {decision.reason}"
        if decision.not_before:
            head += f" (not before {iso(decision.not_before)})"
        lines.append(head)
        if article is None:
            lines.append("")
            continue
        lines += [f"  title: {article.title}", f"  slug: {article.slug}", f"  status: {article.status}",
                  f"  canonical URL: {article.canonical_url}", f"  tags: {', '.join(article.tags) or '-'}"]
        image = article.featured_image
        if image:
            lines.append(f"  featured image: {image.url}")
            lines.append(f"    alt: {image.alt or '-'}; caption: {image.caption or '-'}; "
                         f"credit: {' '.join(x for x in (image.note, image.credit) if x) or '-'}"
                         + (f" <{image.credit_url}>" if image.credit_url else ""))
        lines.append("")
        for block in LexborHTMLParser("<body>" + article.html).css("body > *"):
            text = " ".join(block.text(separator=" ").split())
            if text:
                lines.append("  " + text)
        lines.append("")
    return "\n".join(lines).rstrip()


def preview_html(entry: Entry, results: list[tuple[Decision, Article | None]], config: Config) -> str:
    """A self-contained page for an author: for each partner the decision, the article, its metadata."""
    from markupsafe import Markup

    renderer = Renderer(config.base_dir)
    template = renderer.env.get_template("default/preview.html")
    partners = []
    for decision, article in results:
        partners.append({"decision": decision, "partner": config.partners[decision.partner],
                         "article": article, "html": Markup(article.html) if article else None,
                         "not_before": iso(decision.not_before)})
    return template.render(entry=entry, published=iso(entry.published), partners=partners)
