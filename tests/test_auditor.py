"""``syndicate audit`` end to end: the founding example's files partner served by a real HTTP server on
127.0.0.1, audited as the public sees it, then broken the ways partners break copies."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.audit import credits_for, page_problems
from syndicate.config import load_config
from syndicate.decide import Rules, Verdict
from syndicate.licenses import parse_license
from syndicate.models import Entry, Image, Permission
from syndicate.records import Delivery
from syndicate.render import Renderer

from .conftest import CLI, sqlite_only

PART1 = "radical-models-of-organising"


class CopyServer:
    """Serves a files partner's folder as its site would: ``/<slug>/`` is ``<slug>.html``."""

    def __init__(self, folder: Path) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                slug = self.path.strip("/")
                page = folder / f"{slug}.html"
                if not re.fullmatch(r"[a-z0-9-]+", slug) or not page.is_file():
                    self.send_error(404)
                    return
                body = page.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture()
def served(example: Path) -> Iterator[tuple[CLI, CopyServer]]:
    """The example synced to a files partner whose base_url is a server on 127.0.0.1."""
    server = CopyServer(example.parent / "out" / "enliveningedge")
    text = example.read_text().replace('base_url = "https://enliveningedge.org"', f'base_url = "{server.url}"')
    example.write_text(text)
    run = CLI(example)
    assert run("sync").exit_code == 0
    try:
        yield run, server
    finally:
        server.stop()


def audit_json(run: CLI, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = run("audit", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_every_live_copy_credits_the_author(served: tuple[CLI, CopyServer], example: Path) -> None:
    sqlite_only("it edits the ledger in its SQLite file")
    run, server = served
    db = example.parent / ".syndicate" / "state.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    code, results = audit_json(run)
    assert code == 0
    assert len(results) == 3 and {r["status"] for r in results} == {"ok"}
    assert {tuple(r) for r in results} == {("partner", "entry", "url", "status", "problems")}
    assert f"{server.url}/{PART1}/" in {r["url"] for r in results}
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # no state changed
    plain = run("audit")
    assert plain.exit_code == 0
    assert f"enliveningedge  {server.url}/{PART1}/  https://www.easierinc.com/{PART1}/  ok" in plain.output


def test_each_way_a_copy_stops_crediting_the_author_is_reported(served: tuple[CLI, CopyServer],
                                                                 example: Path) -> None:
    run, server = served
    out = example.parent / "out" / "enliveningedge"
    page = out / f"{PART1}.html"
    html = page.read_text()
    byline = re.search(r"<p><em>By Andy Brogan.*?</p>", html)
    assert byline is not None
    page.write_text(html.replace(byline.group(0), "").replace("Image by Gerd Altmann from Pixabay", "Pixabay"))
    (out / "radical-models-of-public-service.html").unlink()
    code, results = audit_json(run)
    assert code == 1
    by_url = {r["url"].rsplit("/", 2)[1]: r for r in results}
    assert by_url[PART1]["status"] == "problems"
    assert by_url[PART1]["problems"] == ["byline link missing", "image credit missing"]
    assert by_url["radical-models-of-public-service"]["problems"] == ["not reachable: 404"]
    assert by_url["radical-models-of-leadership"]["status"] == "ok"
    quiet = run("-q", "audit")
    assert quiet.exit_code == 1
    assert "byline link missing; image credit missing" in quiet.output and "  ok" not in quiet.output

    server.stop()
    code, results = audit_json(run, "--partner", "enliveningedge")
    assert code == 1 and {r["status"] for r in results} == {"unreachable"}
    assert all("connection to 127.0.0.1" in r["problems"][0] for r in results)


def test_only_the_partners_own_host_may_be_private(served: tuple[CLI, CopyServer], example: Path) -> None:
    sqlite_only("it edits the ledger in its SQLite file")
    # The ledger is the partner's word about where a copy lives; a URL on another private address is
    # refused as one from a feed would be.
    run, server = served
    import sqlite3

    db = sqlite3.connect(example.parent / ".syndicate" / "state.db")
    other = server.url.replace("127.0.0.1", "127.0.0.2")
    with db:
        db.execute("UPDATE deliveries SET remote_url = replace(remote_url, ?, ?)", (server.url, other))
    db.close()
    code, results = audit_json(run)
    assert code == 1
    assert {r["status"] for r in results} == {"unreachable"}
    assert all("private address refused" in r["problems"][0] for r in results)


def test_a_draft_is_not_public_and_not_fetched(example: Path) -> None:
    example.write_text(example.read_text().replace('status = "publish"', 'status = "draft"'))
    run = CLI(example)
    assert run("sync").exit_code == 0
    # base_url is https://enliveningedge.org: a fetch would fail here (no network), so none is made.
    code, results = audit_json(run)
    assert code == 0 and {r["status"] for r in results} == {"not public"}
    assert "not public (draft)" in run("audit").output


def test_usage_errors_exit_2(example: Path) -> None:
    result = CLI(example)("audit", "--partner", "nobody")
    assert result.exit_code == 2 and "unknown partner 'nobody'" in result.output


# --- what a copy must show is what the render stage wrote ------------------------------------------

ORIGINAL = "https://www.easierinc.com/another-post/"  # no override: the entry's own image
CANONICAL = f'<link rel="canonical" href="{ORIGINAL}">'


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(permission=st.sampled_from(["grant: Email, 2019", "licence CC-BY-4.0", "licence CC-BY-NC-ND-4.0", None]),
       author=st.sampled_from(["Andy Brogan", None]),
       note=st.sampled_from([None, "Featured Image/graphic link added by Enlivening Edge Magazine."]),
       credit=st.sampled_from([None, "Image by Gerd Altmann from Pixabay", "Photo: Easier Inc."]),
       credit_url=st.sampled_from([None, "https://pixabay.com/users/geralt-9301/", "javascript:alert(1)"]))
def test_the_copy_as_rendered_passes_its_own_audit(example: Path, permission: str | None, author: str | None,
                                                   note: str | None, credit: str | None,
                                                   credit_url: str | None) -> None:
    # Whatever the licence, the byline's author and the image's credit, the article the render stage
    # makes passes the audit derived from the ledger row: both use the same functions.
    config = load_config(str(example))
    rules = Rules(config)
    image = Image(url="https://cdn.example/i.png", credit=credit, credit_url=credit_url, note=note)
    entry = Entry(source="easierinc", guid="g1", url=ORIGINAL, title="Radical Models", author=author,
                  published=None, updated=None, images=(image,))
    delivery = Delivery(partner="enliveningedge", source="easierinc", guid="g1", permission=permission)
    credits = credits_for(entry, delivery, config, rules)
    license = parse_license(permission.removeprefix("licence ")) if permission and "licence" in permission else None
    verdict = Verdict(True, permission=Permission(
        grant_evidence=permission.removeprefix("grant: ") if permission and "grant" in permission else None,
        license_spdx=license.spdx if license else None), license=license)
    article = Renderer(config.base_dir).article(
        entry=entry, source=config.sources["easierinc"], partner=config.partners["enliveningedge"],
        verdict=verdict, body="<p>Body.</p>", series=[], image=rules.featured_image(entry, "enliveningedge"),
        slug=PART1)
    page = f"<html><head>{CANONICAL}</head><body>{article.html}</body></html>"
    assert page_problems(page, credits) == []
    assert page_problems(f"<html><head>{CANONICAL}</head><body><p>Body.</p></body></html>", credits)
