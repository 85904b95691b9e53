"""``preview``: JSON exactly as SPEC.md, text for a terminal, a page for an author (checked in Chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import CLI

PART1 = "https://www.easierinc.com/radical-models-of-organising/"
PART3 = "https://www.easierinc.com/radical-models-of-commissioning-and-regulation/"


def test_preview_json_shape(example: Path, run: CLI) -> None:
    result = run("preview", "http://easierinc.com/radical-models-of-organising?utm_source=x", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["entry"] == {"url": PART1, "guid": "https://www.easierinc.com/?p=2087",
                             "title": "Radical Models of Organising", "author": "Andy Brogan",
                             "published": "2019-03-25T08:00:00Z"}
    [partner] = data["partners"]
    assert set(partner) == {"partner", "action", "reason", "title", "slug", "html", "canonical_url", "tags", "status",
                            "featured_image"}
    assert partner["partner"] == "enliveningedge" and partner["action"] == "create" and partner["reason"] is None
    assert partner["html"].startswith("<p><em>By Andy Brogan and originally published on")
    assert partner["html"].rstrip().endswith("<p><em>Republished with permission of the author.</em></p>")
    assert partner["featured_image"]["credit"] == "Image by Gerd Altmann from Pixabay"
    assert partner["canonical_url"] == PART1 and partner["status"] == "publish"
    # what preview shows is what sync pushes
    run("sync")
    pushed = json.loads((example.parent / "out/enliveningedge/radical-models-of-organising.json").read_text())
    assert pushed["html"] == partner["html"]
    assert not (example.parent / "out/enliveningedge/x").exists()


def test_preview_of_a_skipped_entry_by_guid(run: CLI) -> None:
    data = json.loads(run("preview", "https://www.easierinc.com/?p=2098", "--format", "json").output)
    [partner] = data["partners"]
    assert (partner["action"], partner["reason"], partner["html"]) == ("skip", "category excluded: Members only", None)
    assert data["entry"]["url"] == PART3


def test_preview_changes_no_state(example: Path, run: CLI) -> None:
    run("preview", PART1)
    assert not (example.parent / ".syndicate").exists() and not (example.parent / "out").exists()


def test_preview_text(run: CLI) -> None:
    result = run("preview", PART1, "--format", "text")
    assert "== Enlivening Edge (enliveningedge): create" in result.output
    assert "By Andy Brogan and originally published on easierinc.com" in result.output
    assert "credit: Featured Image/graphic link added by Enlivening Edge Magazine. Image by Gerd Altmann from Pixabay" \
        in result.output


def test_preview_html_file(example: Path, run: CLI) -> None:
    page = example.parent / "preview.html"
    result = run("preview", PART1, "-o", str(page))
    assert result.exit_code == 0
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert f'href="{PART1}"' in html
    assert "Image by Gerd Altmann from Pixabay" in html


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here (tests/run.sh installs Debian's chromium)")


@pytest.mark.browser
def test_preview_page_renders_in_chromium(example: Path, run: CLI, tmp_path: Path) -> None:
    browser = _chromium()
    page = tmp_path / "preview.html"
    assert run("preview", PART1, "--format", "html", "-o", str(page)).exit_code == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    assert "By Andy Brogan and originally published on" in rendered
    assert "Image by Gerd Altmann from Pixabay" in rendered
    assert "Republished with permission of the author." in rendered
    shot = tmp_path / "preview.png"
    result = subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
