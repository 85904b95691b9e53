"""What a copy shows: licence lines, ND bodies, credits, template sets and overrides, escaping."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import CLI

FEED = """<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>B</title><link>https://blog.example/</link>
<item><title>Part one &lt;script&gt;</title><link>https://blog.example/one/</link><guid>g1</guid>
<pubDate>Mon, 01 Jun 2026 08:00:00 +0000</pubDate><category>S</category>
<description>&lt;p&gt;See &lt;a href="https://blog.example/two/?utm_source=x"&gt;two&lt;/a&gt;.&lt;/p&gt;</description>
<media:content url="https://blog.example/one.jpg" medium="image"><media:credit>Photo: Jo</media:credit></media:content></item>
<item><title>Part two</title><link>https://blog.example/two/</link><guid>g2</guid>
<pubDate>Tue, 02 Jun 2026 08:00:00 +0000</pubDate><category>S</category>
<description>&lt;p&gt;Back to &lt;a href="/one/"&gt;one&lt;/a&gt;.&lt;/p&gt;</description></item>
</channel></rss>"""


def setup(tmp_path: Path, license: str, partner_extra: str = "") -> Path:
    (tmp_path / "feed.xml").write_text(FEED)
    config = tmp_path / "syndicate.toml"
    config.write_text(f"""
[sources.blog]
name = "blog.example"
site_url = "https://blog.example"
feed = "feed.xml"
license = "{license}"
[[sources.blog.series]]
name = "S"
category = "S"
label = "Chapter {{n}}: {{title}}"
[partners.mag]
name = "Mag"
kind = "files"
path = "out"
base_url = "https://mag.example"
commercial = false
{partner_extra}
""")
    return config


def html_of(tmp_path: Path, slug: str) -> str:
    return json.loads((tmp_path / "out" / f"{slug}.json").read_text())["html"]


def test_creative_commons_footer_names_the_licence_and_links_its_deed(tmp_path: Path) -> None:
    assert CLI(setup(tmp_path, "CC-BY-NC-4.0"))("sync").exit_code == 0
    html = html_of(tmp_path, "one")
    assert ('Republished under <a href="https://creativecommons.org/licenses/by-nc/4.0/">Creative Commons '
            "Attribution-NonCommercial 4.0 International</a> (CC BY-NC 4.0).") in html
    assert "Republished with permission" not in html


def test_cross_links_retargeted_and_series_labelled(tmp_path: Path) -> None:
    CLI(setup(tmp_path, "CC-BY-4.0"))("sync")
    one, two = html_of(tmp_path, "one"), html_of(tmp_path, "two")
    assert '<a href="https://mag.example/two/">two</a>' in one
    assert '<a href="https://mag.example/one/">one</a>' in two
    assert "Mag's republication of <a href=\"https://mag.example/two/\">Chapter 2: Part two</a> is here." in one


def test_nd_body_goes_out_as_written(tmp_path: Path) -> None:
    CLI(setup(tmp_path, "CC-BY-ND-4.0"))("sync")
    one = html_of(tmp_path, "one")
    # links made absolute and tracking removed, but not retargeted
    assert '<a href="https://blog.example/two/">two</a>' in one
    assert '<a href="https://blog.example/one/">one</a>' in html_of(tmp_path, "two")
    # the series note stands outside the body and is allowed
    assert "Chapter 2: Part two</a> is here." in one


def test_titles_and_credits_are_text(tmp_path: Path) -> None:
    CLI(setup(tmp_path, "CC-BY-4.0"))("sync")
    data = json.loads((tmp_path / "out" / "one.json").read_text())
    assert data["title"] == "Part one <script>"
    page = (tmp_path / "out" / "one.html").read_text()
    assert "<title>Part one &lt;script&gt; · Mag</title>" in page and "<script>" not in page
    assert "<p><em>Photo: Jo</em></p>" in data["html"]


def test_partner_template_set_falls_back_file_by_file(tmp_path: Path) -> None:
    config = setup(tmp_path, "CC-BY-4.0", 'template = "house"')
    house = tmp_path / "templates" / "house"
    house.mkdir(parents=True)
    (house / "article.html").write_text("<p>HOUSE {{ title }}</p>{{ body }}")
    assert CLI(config)("sync").exit_code == 0
    assert html_of(tmp_path, "one").startswith("<p>HOUSE Part one &lt;script&gt;</p>")
    assert (tmp_path / "out" / "one.html").read_text().startswith("<!DOCTYPE html>")  # default files_page.html


def test_user_templates_override_the_default_set(tmp_path: Path) -> None:
    config = setup(tmp_path, "CC-BY-4.0")
    (tmp_path / "templates" / "default").mkdir(parents=True)
    (tmp_path / "templates" / "default" / "article.html").write_text("<p>Ours: {{ source.name }}</p>{{ body }}")
    CLI(config)("sync")
    assert html_of(tmp_path, "one").startswith("<p>Ours: blog.example</p>")


def test_a_template_change_updates_the_copies(tmp_path: Path) -> None:
    config = setup(tmp_path, "CC-BY-4.0")
    CLI(config)("sync")
    (tmp_path / "templates" / "default").mkdir(parents=True)
    (tmp_path / "templates" / "default" / "article.html").write_text("<p>v2</p>{{ body }}")
    assert "2 updated" in CLI(config)("sync").output


def test_no_author_anywhere(tmp_path: Path) -> None:
    CLI(setup(tmp_path, "CC-BY-4.0"))("sync")
    assert html_of(tmp_path, "one").startswith(
        '<p><em>Originally published on <a href="https://blog.example/one/">blog.example</a></em></p>')
