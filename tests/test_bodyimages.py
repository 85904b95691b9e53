"""Body images (``images = "upload"``): which images a body shows, pointing them at the partner's copies,
and the whole sync into a ``files`` partner with images served by a real HTTP server on 127.0.0.1.

What is proven here:

* the srcset grammar round-trips (URLs with commas, descriptors, spacing), for any candidates;
* for any body built from images (``img`` with src/srcset/alt/width/height, ``picture`` with sources, an
  ``<a>`` around an image, ``figure``/``figcaption``, relative URLs made absolute by ``rewrite.clean``),
  every image URL is found, and after ``relocate`` every one points at the copy while alt, width,
  height, captions and non-image links are unchanged;
* hostile image URLs: ``file:``/``javascript:`` never reach the fetcher, and an image on 127.0.0.1 is
  fetched only with ``[network] allow_private`` (the server counts the requests);
* a sync uploads each image once (the same bytes under another URL reuse it), a second sync uploads
  nothing and changes nothing; an image that cannot be copied (404, SVG, HTML) keeps its URL with a
  warning in the summary and in ``status``; the next sync copies it once it can and updates the copy;
* ND licences get the copies too; ``preview`` lists what a sync uploads
  (text, and ``--format json`` in the shape SPEC gives);
* the media table's migration (schema 3 → 4) on a real SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from syndicate.bodyimages import (
    BodyImages,
    format_srcset,
    image_urls,
    media_name,
    parse_srcset,
    relocate,
)
from syndicate.publishers.base import FetchedImage, ImageError, UploadedImage
from syndicate.rewrite import clean
from syndicate.sqlite_store import SQLiteStore

from .conftest import CLI
from .fakes import FileServer, png

BASE = "https://author.example/2024/05/a-post/"
MAG = "https://mag.example"



# --- srcset --------------------------------------------------------------------------------------------

url_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=1, max_size=12)
srcset_url = st.builds(lambda a, b, comma: f"https://cdn.example/{a}{',' if comma else ''}{b}.jpg",
                       url_part, url_part, st.booleans())
descriptor = st.one_of(st.just(""), st.integers(1, 4000).map(lambda n: f"{n}w"),
                       st.sampled_from(["1x", "1.5x", "2x", "3x"]))


@given(st.lists(st.tuples(srcset_url, descriptor), min_size=1, max_size=6),
       st.sampled_from([", ", ",", " ,  ", ",\n\t"]))
def test_srcset_round_trips_whatever_the_spacing(candidates: list[tuple[str, str]], separator: str) -> None:
    """A URL may hold commas (only a trailing one ends it); descriptors run to the next comma."""
    text = separator.join(f"{u} {d}".strip() if d else f"{u} " for u, d in candidates)
    assert parse_srcset(text) == candidates
    assert parse_srcset(format_srcset(candidates)) == candidates


def test_srcset_grammar_edge_cases() -> None:
    assert parse_srcset("a.jpg, b.jpg 2x") == [("a.jpg", ""), ("b.jpg", "2x")]
    assert parse_srcset("a.jpg,, b.jpg 100w,") == [("a.jpg", ""), ("b.jpg", "100w")]
    assert parse_srcset("  ") == []
    assert parse_srcset("https://x.example/a,b.jpg 1x") == [("https://x.example/a,b.jpg", "1x")]


# --- the shapes a body's images come in ----------------------------------------------------------------

@dataclass
class Shape:
    """A body built from image blocks, with what it must keep."""

    html: str
    images: list[str] = field(default_factory=list)     # absolute URLs of every image file it shows or links
    alts: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    page_links: list[str] = field(default_factory=list)  # links that are not to images: never changed


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=20).map(lambda s: s.strip() or "x")


@st.composite
def image_ref(draw: st.DrawFn) -> tuple[str, str]:
    """(as written in the feed — relative, root-relative or absolute —, the absolute URL it means)."""
    name = draw(names) + draw(st.sampled_from([".jpg", ".png", ".webp", ".gif"]))
    form = draw(st.sampled_from(["absolute", "root", "relative", "cdn"]))
    if form == "absolute":
        return f"https://author.example/uploads/{name}", f"https://author.example/uploads/{name}"
    if form == "root":
        return f"/uploads/{name}", f"https://author.example/uploads/{name}"
    if form == "relative":
        return f"img/{name}", f"https://author.example/2024/05/a-post/img/{name}"
    return f"https://cdn.example/{name}", f"https://cdn.example/{name}"


@st.composite
def block(draw: st.DrawFn) -> Shape:
    kind = draw(st.sampled_from(["img", "srcset", "picture", "link", "figure", "page-link"]))
    alt = draw(words)
    src, src_abs = draw(image_ref())
    width, height = draw(st.integers(1, 3000)), draw(st.integers(1, 3000))
    img = f'<img src="{src}" alt="{alt}" width="{width}" height="{height}">'
    shape = Shape("", [src_abs], [alt])
    if kind == "srcset" or kind == "picture":
        extra = draw(st.lists(image_ref(), min_size=1, max_size=3))
        srcset = ", ".join(f"{u} {300 * (n + 1)}w" for n, (u, _) in enumerate(extra))
        shape.images += [a for _, a in extra]
        if kind == "srcset":
            img = f'<img src="{src}" srcset="{srcset}" sizes="100vw" alt="{alt}" width="{width}" height="{height}">'
        else:
            webp = draw(st.lists(image_ref(), min_size=1, max_size=2))
            shape.images += [a for _, a in webp]
            img = (f'<picture><source type="image/webp" srcset="{", ".join(u for u, _ in webp)}">'
                   f'<source srcset="{srcset}" media="(min-width: 600px)">{img}</picture>')
    if kind == "link":
        same = draw(st.booleans())
        if same:
            img = f'<a href="{src}">{img}</a>'
        else:  # WordPress's "link to media file": the full size around a smaller one
            full, full_abs = draw(image_ref())
            shape.images.append(full_abs)
            img = f'<a href="{full}">{img}</a>'
    if kind == "figure":
        caption = draw(words)
        shape.captions.append(caption)
        img = f"<figure>{img}<figcaption>{caption}</figcaption></figure>"
    if kind == "page-link":
        page = f"https://author.example/{draw(names)}/"
        shape.page_links.append(page)
        img = f'<p><a href="{page}">read on</a> {img}</p>'
    shape.html = img
    return shape


@st.composite
def body(draw: st.DrawFn) -> Shape:
    blocks = draw(st.lists(block(), min_size=1, max_size=5))
    joined = Shape("<p>Intro.</p>" + "".join(b.html for b in blocks))
    for b in blocks:
        joined.images += b.images
        joined.alts += b.alts
        joined.captions += b.captions
        joined.page_links += b.page_links
    return joined


def copy_of(url: str) -> str:
    return f"{MAG}/media/{abs(hash(url)) % 10**8}.jpg"


def image_attributes(html: str) -> list[str]:
    """Every URL an image attribute holds: img src/srcset, source srcset, href of a link to an image."""
    tree = LexborHTMLParser("<body>" + html)
    found: list[str] = []
    for node in tree.css("img, picture > source"):
        if node.tag == "img":
            found.append(node.attrs.get("src") or "")
        found += [u for u, _ in parse_srcset(node.attrs.get("srcset") or "")]
    found += [a.attrs.get("href") or "" for a in tree.css("a[href]") if a.css_first("img") is not None]
    return found


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(body())
def test_every_image_of_any_body_shape_points_at_the_copy_and_nothing_else_changes(shape: Shape) -> None:
    cleaned = clean(shape.html, BASE).html  # what the pipeline stores: absolute, sanitised
    found = image_urls(cleaned)
    assert set(found) == set(shape.images)
    assert len(found) == len(set(found))
    moved = relocate(cleaned, {u: copy_of(u) for u in found})
    assert sorted(image_attributes(moved)) == sorted(copy_of(u) for u in image_attributes(cleaned))
    tree = LexborHTMLParser("<body>" + moved)
    before = LexborHTMLParser("<body>" + cleaned)
    assert [i.attrs.get("alt") for i in tree.css("img")] == shape.alts
    for name in ("width", "height", "sizes"):
        assert [i.attrs.get(name) for i in tree.css("img")] == [i.attrs.get(name) for i in before.css("img")]
    assert [f.text() for f in tree.css("figcaption")] == shape.captions
    assert [s.attrs.get("media") for s in tree.css("source")] == [s.attrs.get("media") for s in before.css("source")]
    links = [a.attrs.get("href") for a in tree.css("a[href]") if a.css_first("img") is None]
    assert links == shape.page_links
    assert tree.body is not None and before.body is not None
    assert tree.body.text() == before.body.text()


@settings(max_examples=100)
@given(body())
def test_relocating_with_no_copies_changes_nothing(shape: Shape) -> None:
    cleaned = clean(shape.html, BASE).html
    assert relocate(cleaned, {}) == cleaned


@pytest.mark.parametrize("src", ["file:///etc/passwd", "javascript:alert(1)", "data:image/png;base64,iVBORw0KGgo=",
                                 "ftp://author.example/a.jpg", "//", "http://", "java\tscript:alert(1)"])
def test_hostile_image_urls_never_reach_the_fetcher(src: str) -> None:
    cleaned = clean(f'<p><img src="{src}" srcset="{src} 2x"><a href="{src}"><img src="{src}"></a></p>', BASE).html
    # (clean's srcset reading splits a data: URL at its comma: what is left is a path on the author's site)
    assert all(u.startswith(BASE) for u in image_urls(cleaned))
    assert image_urls(clean(f'<p><img src="{src}"><a href="{src}"><img src="{src}"></a></p>', BASE).html) == ()
    # and even uncleaned markup names only http(s) URLs
    assert image_urls(f'<img src="{src}"><picture><source srcset="{src} 1x"></picture>') == ()


def test_a_copy_url_that_is_not_http_is_never_written() -> None:
    html = '<img src="https://author.example/a.jpg">'
    assert relocate(html, {"https://author.example/a.jpg": "javascript:alert(1)"}) == html


def test_media_names_are_safe_and_carry_the_hash() -> None:
    assert media_name("photo.jpg", "ab" * 32) == "photo-abababababab.jpg"
    assert media_name(".png", "cd" * 32) == "image-cdcdcdcdcdcd.png"


# --- the media table: one upload per image, by URL or by bytes -----------------------------------------

class Uploads:
    """A publisher's ``upload_image`` that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, image: FetchedImage) -> UploadedImage:
        self.calls.append(image.url)
        return UploadedImage(f"id-{len(self.calls)}", f"{MAG}/media/{len(self.calls)}.png")


def test_the_same_bytes_under_another_url_reuse_the_upload_across_runs(tmp_path: Path) -> None:
    data = {"https://a.example/x.png": png(2, 2, (1, 2, 3)), "https://b.example/y.png": png(2, 2, (1, 2, 3)),
            "https://a.example/z.png": png(3, 3, (9, 9, 9))}
    url = f"sqlite:///{tmp_path / 'state.db'}"

    def fetch(u: str) -> FetchedImage:
        return FetchedImage(u, data[u], "image/png", "x.png")

    uploads = Uploads()
    for _ in range(2):  # two runs, one store file
        store = SQLiteStore(url)
        store.lock()
        images = BodyImages(store, "mag", fetch, uploads)
        first = images.relocation(list(data), may_upload=True)
        again = images.relocation(list(data), may_upload=True)
        store.close()
        assert first == again and not first.failed
        copies = dict(first.copies)
        assert copies["https://a.example/x.png"] == copies["https://b.example/y.png"]
    assert uploads.calls == ["https://a.example/x.png", "https://a.example/z.png"]


def test_an_image_that_cannot_be_had_is_tried_once_per_run_and_again_next_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fetches: list[str] = []
    served: dict[str, bytes] = {}

    def fetch(u: str) -> FetchedImage:
        fetches.append(u)
        if u not in served:
            raise ImageError(f"body image {u} could not be fetched: HTTP 404")
        return FetchedImage(u, served[u], "image/png", "x.png")

    store = SQLiteStore(url)
    store.lock()
    images = BodyImages(store, "mag", fetch, Uploads())
    for _ in range(3):
        relocation = images.relocation(["https://a.example/x.png"], may_upload=True)
        assert relocation.failed and not relocation.copies
        assert relocation.warning() is not None and "HTTP 404" in (relocation.warning() or "")
    assert len(fetches) == 1
    served["https://a.example/x.png"] = png(1, 1, (0, 0, 0))
    images = BodyImages(store, "mag", fetch, Uploads())  # the next run
    relocation = images.relocation(["https://a.example/x.png"], may_upload=True)
    assert relocation.copies and not relocation.failed and relocation.warning() is None
    store.close()


def test_a_run_that_changes_nothing_only_lists_what_it_would_upload(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.lock()
    store.put_media("mag", "https://a.example/known.png", "7", f"{MAG}/media/known.png", sha256="00")
    images = BodyImages(store, "mag")  # no fetch, no upload
    relocation = images.relocation(["https://a.example/known.png", "https://a.example/new.png"], may_upload=True)
    assert relocation.copies == (("https://a.example/known.png", f"{MAG}/media/known.png"),)
    assert relocation.to_upload == ("https://a.example/new.png",)
    assert "https://a.example/new.png" in (relocation.upload_note() or "")
    store.close()


def test_schema_3_stores_get_the_media_hash_column(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(f"sqlite:///{path}")
    store.lock()
    store.put_media("mag", "https://a.example/old.png", "1", f"{MAG}/old.png")
    store.close()
    with sqlite3.connect(path) as db:  # as a store written before body images
        db.execute("DROP INDEX media_by_sha256")
        db.execute("ALTER TABLE media DROP COLUMN sha256")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    readonly = SQLiteStore(f"sqlite:///{path}", readonly=True)
    assert readonly.media_by_hash("mag", "ab") is None  # read as it is, never migrated
    assert readonly.media("mag", "https://a.example/old.png") == ("1", f"{MAG}/old.png")
    readonly.close()
    store = SQLiteStore(f"sqlite:///{path}")
    store.lock()
    store.put_media("mag", "https://a.example/new.png", "2", f"{MAG}/new.png", sha256="ab")
    assert store.media_by_hash("mag", "ab") == ("2", f"{MAG}/new.png")
    assert store.media("mag", "https://a.example/old.png") == ("1", f"{MAG}/old.png")
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)
        assert "media_by_sha256" in {r[1] for r in db.execute("PRAGMA index_list(media)")}


# --- the whole sync into a files partner, images from a real server on 127.0.0.1 -----------------------

@pytest.fixture()
def image_server() -> Iterator[FileServer]:
    server = FileServer()
    try:
        yield server
    finally:
        server.close()


FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Author</title><link>https://author.example/</link><description>d</description>
<item><title>First post</title><link>https://author.example/first/</link><guid>https://author.example/first/</guid>
<pubDate>Mon, 06 May 2024 08:00:00 +0000</pubDate>
<content:encoded><![CDATA[{first}]]></content:encoded></item>
<item><title>Second post</title><link>https://author.example/second/</link><guid>https://author.example/second/</guid>
<pubDate>Tue, 07 May 2024 08:00:00 +0000</pubDate>
<content:encoded><![CDATA[{second}]]></content:encoded></item>
</channel></rss>
"""


def write_site(folder: Path, server: FileServer, *, first: str, second: str = "<p>No images.</p>",
               allow_private: bool = True, license: str = "permission") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feed.xml").write_text(FEED.format(first=first.replace("{img}", server.url),
                                                 second=second.replace("{img}", server.url)), encoding="utf-8")
    config = folder / "syndicate.toml"
    config.write_text(f"""
[network]
allow_private = {'true' if allow_private else 'false'}

[sources.author]
name = "author.example"
site_url = "https://author.example"
feed = "feed.xml"
author = "An Author"
license = "{license}"

[partners.mag]
name = "The Magazine"
kind = "files"
path = "out/mag"
base_url = "{MAG}"
status = "publish"
images = "upload"

[[grants]]
source = "author"
partner = "mag"
evidence = "email"
""", encoding="utf-8")
    return config


def page_of(config: Path, slug: str) -> str:
    return json.loads((config.parent / "out" / "mag" / f"{slug}.json").read_text(encoding="utf-8"))["html"]


def media_files(config: Path) -> list[str]:
    folder = config.parent / "out" / "mag" / "media"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def status_of(config: Path) -> dict[str, dict[str, Any]]:
    result = CLI(config)("status", "--json")
    assert result.exit_code == 0, result.output
    return {d["entry"]: d for d in json.loads(result.stdout)}


FIRST = ('<figure><a href="{img}/full.png"><img src="{img}/small.png" srcset="{img}/small.png 300w, '
         '{img}/full.png 1200w" alt="A field" width="300" height="200"></a><figcaption>The field</figcaption></figure>'
         '<picture><source srcset="{img}/wide.png 2x"><img src="{img}/dup.png" alt="Same bytes"></picture>')


def serve_first(server: FileServer) -> None:
    server.files.update({"/small.png": ("image/png", png(3, 2, (1, 1, 1))),
                         "/full.png": ("image/png", png(12, 8, (2, 2, 2))),
                         "/wide.png": ("image/png", png(6, 4, (3, 3, 3))),
                         "/dup.png": ("image/png", png(3, 2, (1, 1, 1)))})  # the same bytes as small.png


def test_sync_copies_every_body_image_once_and_a_second_sync_changes_nothing(
        tmp_path: Path, image_server: FileServer) -> None:
    serve_first(image_server)
    config = write_site(tmp_path / "site", image_server, first=FIRST,
                        second='<p><img src="{img}/small.png" alt="Again"></p>')
    run = CLI(config)
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    html = page_of(config, "first")
    assert image_server.url not in html
    files = media_files(config)
    assert len(files) == 3  # small.png and dup.png are the same bytes: one file
    tree = LexborHTMLParser("<body>" + html)
    img = tree.css_first("figure img")
    assert img is not None and img.attrs.get("alt") == "A field" and img.attrs.get("width") == "300"
    assert (tree.css_first("figcaption") or img).text() == "The field"
    for value in image_attributes(html):
        assert value.startswith(f"{MAG}/media/") and value.rsplit("/", 1)[1] in files
    assert image_server.url not in page_of(config, "second")
    # the folder alone holds what the pages show
    for value in image_attributes(html):
        assert (config.parent / "out" / "mag" / "media" / value.rsplit("/", 1)[1]).is_file()
    hits = len(image_server.hits)
    pages = {p: p.stat().st_mtime_ns for p in (config.parent / "out" / "mag").rglob("*") if p.is_file()}
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert len(image_server.hits) == hits  # nothing fetched again
    assert {p: p.stat().st_mtime_ns for p in (config.parent / "out" / "mag").rglob("*") if p.is_file()} == pages


def test_an_image_that_cannot_be_copied_warns_and_the_next_sync_copies_it(
        tmp_path: Path, image_server: FileServer) -> None:
    image_server.files["/ok.png"] = ("image/png", png(2, 2, (5, 5, 5)))
    image_server.files["/evil.svg.png"] = ("image/png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)'
                                                        b"</script></svg>")
    image_server.files["/page.jpg"] = ("image/jpeg", b"<!doctype html><p>not an image")
    config = write_site(tmp_path / "site", image_server,
                        first='<p><img src="{img}/ok.png"><img src="{img}/later.png" alt="Later">'
                              '<img src="{img}/evil.svg.png"><img src="{img}/page.jpg"></p>')
    run = CLI(config)
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "3 body images could not be copied" in result.output and "later.png" in result.output
    assert "an SVG" in result.output and "not an image we accept" in result.output
    html = page_of(config, "first")
    assert f"{image_server.url}/later.png" in html and f"{image_server.url}/evil.svg.png" in html
    assert f"{image_server.url}/ok.png" not in html
    note = status_of(config)["https://author.example/first/"]["note"]
    assert note and "later.png" in note
    assert "later.png" in run("status").output
    result = run("sync")  # still missing: tried again, warned again
    assert "later.png" in result.output
    image_server.files["/later.png"] = ("image/png", png(4, 4, (6, 6, 6)))
    result = run("sync")
    assert result.exit_code == 0, result.output
    assert "updated 1" in result.output or "1 updated" in result.output, result.output
    html = page_of(config, "first")
    assert f"{image_server.url}/later.png" not in html
    assert 'alt="Later"' in html
    note = status_of(config)["https://author.example/first/"]["note"]
    assert note is not None and "later.png" not in note  # only the SVG and the page are left


def test_images_on_private_addresses_are_not_fetched_unless_allowed(
        tmp_path: Path, image_server: FileServer) -> None:
    image_server.files["/a.png"] = ("image/png", png(2, 2, (5, 5, 5)))
    config = write_site(tmp_path / "site", image_server, first='<p><img src="{img}/a.png"></p>', allow_private=False)
    result = CLI(config)("sync")
    assert result.exit_code == 0, result.output
    assert image_server.hits == []
    assert "could not be copied" in result.output
    assert f"{image_server.url}/a.png" in page_of(config, "first")
    config = write_site(tmp_path / "site", image_server, first='<p><img src="{img}/a.png"></p>', allow_private=True)
    result = CLI(config)("sync")
    assert image_server.hits == ["/a.png"]
    assert f"{image_server.url}/a.png" not in page_of(config, "first")


def test_nd_licences_get_the_copies_too(tmp_path: Path, image_server: FileServer) -> None:
    serve_first(image_server)
    config = write_site(tmp_path / "site", image_server, first=FIRST, license="CC-BY-ND-4.0")
    assert CLI(config)("sync").exit_code == 0
    assert image_server.url not in page_of(config, "first")


def test_preview_lists_the_images_a_sync_would_upload(tmp_path: Path, image_server: FileServer) -> None:
    serve_first(image_server)
    config = write_site(tmp_path / "site", image_server, first=FIRST)
    run = CLI(config)
    assert run("sync", "--dry-run").exit_code == 0
    result = run("preview", "https://author.example/first/", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    partner = data["partners"][0]
    assert set(partner) == {"partner", "action", "reason", "title", "slug", "html", "canonical_url", "tags",
                            "status", "featured_image"}
    assert partner["action"] == "create"
    assert "4 body images to upload" in partner["reason"] and f"{image_server.url}/wide.png" in partner["reason"]
    text = run("preview", "https://author.example/first/").output
    assert "body images: 4, 4 to upload" in text  # small, full (srcset and link), wide, dup
    assert f"upload: {image_server.url}/dup.png" in text
    assert image_server.hits == []  # a preview fetches nothing
    assert run("sync").exit_code == 0
    partner = json.loads(run("preview", "https://author.example/first/", "--format", "json").stdout)["partners"][0]
    assert partner["action"] == "unchanged" and partner["reason"] is None
    assert image_server.url not in partner["html"]
    text = run("preview", "https://author.example/first/").output
    assert "in the media library:" in text and "upload:" not in text


# --- a files partner's page renders with its images from the folder alone (headless Chromium) ----------

def _folder_response(folder: Path, url: str) -> tuple[bytes, str] | None:
    """What ``<base_url>/...`` serves from the files partner's folder: ``/<slug>/`` is ``<slug>.html``."""
    path = url[len(MAG):].split("?", 1)[0]
    if path.startswith("/media/") and "/" not in path[len("/media/"):]:
        file = folder / "media" / path[len("/media/"):]
        kind = "image/png"
    elif path.count("/") == 2 and path.endswith("/"):
        file, kind = folder / f"{path.strip('/')}.html", "text/html; charset=utf-8"
    else:
        return None
    return (file.read_bytes(), kind) if file.is_file() else None


def test_a_files_page_renders_its_images_from_the_folder_alone(tmp_path: Path, image_server: FileServer) -> None:
    import base64

    from .hostile.browser import BrowserUnavailable, Chromium

    serve_first(image_server)
    config = write_site(tmp_path / "site", image_server, first=FIRST)
    assert CLI(config)("sync").exit_code == 0
    image_server.files.clear()  # the author's site is gone: only the folder is left
    folder = config.parent / "out" / "mag"
    try:
        browser = Chromium()
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))
    refused: list[str] = []
    with browser:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        loaded: list[bool] = []

        def on_event(message: dict[str, Any]) -> None:
            if message.get("sessionId") != session:
                return
            params = message.get("params", {})
            if message["method"] == "Page.loadEventFired":
                loaded.append(True)
            elif message["method"] == "Fetch.requestPaused":  # the network is off: the folder answers, or nothing
                found = _folder_response(folder, params["request"]["url"])
                if found is None:
                    refused.append(params["request"]["url"])
                    browser.send("Fetch.failRequest", {"requestId": params["requestId"],
                                                       "errorReason": "InternetDisconnected"}, session)
                    return
                body, kind = found
                browser.send("Fetch.fulfillRequest", {
                    "requestId": params["requestId"], "responseCode": 200,
                    "responseHeaders": [{"name": "Content-Type", "value": kind}],
                    "body": base64.b64encode(body).decode()}, session)

        browser.handlers.append(on_event)
        browser.call("Page.enable", {}, session)
        browser.call("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}, session)
        browser.call("Page.navigate", {"url": f"{MAG}/first/"}, session)
        deadline = 100
        while not loaded and deadline:
            browser.run_for(0.1)
            deadline -= 1
        browser.run_for(0.5)
        result = browser.call("Runtime.evaluate", {
            "expression": "JSON.stringify(Array.from(document.images).map(i => [i.currentSrc, i.complete, "
                          "i.naturalWidth]))", "returnByValue": True}, session)
    shown = json.loads(result["result"]["value"])
    assert loaded and len(shown) == 2
    for src, complete, width in shown:
        assert src.startswith(f"{MAG}/media/") and complete and width > 0, shown
    assert [u for u in refused if not u.endswith("/favicon.ico")] == []


# --- hostile addresses and a kill -9 among the uploads ---------------------------------------------------

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
                        "[::1]", "[::ffff:127.0.0.1]", "127.0.0.1.nip.io.invalid", "0.0.0.0"]),
       st.sampled_from(["/a.png", "/a.png?size=2", "/redirect-to-a"]))
def test_a_body_image_on_a_private_address_is_never_fetched_unless_allowed(
        tmp_path: Path, image_server: FileServer, host: str, path: str) -> None:
    from syndicate.config import load_config
    from syndicate.pipeline import Pipeline

    image_server.files["/a.png"] = ("image/png", png(2, 2, (5, 5, 5)))
    port = image_server.url.rsplit(":", 1)[1]
    config = write_site(tmp_path / f"site-{abs(hash((host, path)))}", image_server, first="<p>x</p>",
                        allow_private=False)
    pipeline = Pipeline(load_config(config), None)
    hits = len(image_server.hits)
    try:
        with pytest.raises(ImageError):
            pipeline._fetch_image(f"http://{host}:{port}{path}", "body image")
    finally:
        pipeline.close()
    assert len(image_server.hits) == hits


def test_a_kill_during_the_uploads_leaves_no_duplicate_copy(tmp_path: Path, image_server: FileServer) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import REPO

    serve_first(image_server)
    reached, release = threading.Event(), threading.Event()
    image_server.gates["/wide.png"] = (reached, release)  # the third upload hangs until the kill
    config = write_site(tmp_path / "site", image_server, first=FIRST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE")} | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "syndicate", "--config", str(config), "sync"],
                               cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert reached.wait(60), "the sync never asked for the slow image"
        time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
    del image_server.gates["/wide.png"]
    assert len(media_files(config)) == 2  # small.png and full.png were copied before the kill
    folder = config.parent / "out" / "mag"
    assert not (folder / "first.html").exists()  # killed before the copy was written
    result = CLI(config)("sync")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.glob("*.html")) == ["first.html", "second.html"]
    assert len(media_files(config)) == 3
    assert image_server.url not in page_of(config, "first")
