"""``check`` over several sources and partners, from real feed files, as an editor runs it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from .conftest import CLI

NOW = dt.datetime.now(dt.timezone.utc)


def rss(items: list[tuple[str, str, tuple[str, ...]]], channel: str = "", ns: str = "") -> str:
    body = ""
    for slug, date, categories in items:
        cats = "".join(f"<category>{c}</category>" for c in categories)
        body += (f"<item><title>{slug}</title><link>https://SITE/{slug}/</link><guid>SITE-{slug}</guid>"
                 f"<pubDate>{date}</pubDate>{cats}<description>x</description></item>")
    return f'<?xml version="1.0"?><rss version="2.0" {ns}><channel><title>t</title>{channel}{body}</channel></rss>'


def rfc822(when: dt.datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S +0000")


def test_scenario(tmp_path: Path) -> None:
    old, recent = rfc822(NOW - dt.timedelta(days=30)), rfc822(NOW - dt.timedelta(days=2))
    (tmp_path / "perm.xml").write_text(rss([("p-old", old, ("Essays",)), ("p-new", recent, ("Essays",)),
                                            ("p-members", old, ("Members only",))]).replace("SITE", "perm.example"))
    (tmp_path / "nc.xml").write_text(rss([("nc-post", old, ())]).replace("SITE", "nc.example"))
    cc_ns = 'xmlns:creativeCommons="http://backend.userland.com/creativeCommonsRssModule"'
    (tmp_path / "fromfeed.xml").write_text(rss(
        [("ff-post", old, ())], "<creativeCommons:license>https://creativecommons.org/licenses/by-nd/4.0/"
        "</creativeCommons:license>", cc_ns).replace("SITE", "ff.example"))
    (tmp_path / "syndicate.toml").write_text(f"""
[sources.perm]
name = "perm"
site_url = "https://perm.example"
feed = "perm.xml"
[sources.nc]
name = "nc"
site_url = "https://nc.example"
feed = "nc.xml"
license = "CC-BY-NC-4.0"
[sources.ff]
name = "ff"
site_url = "https://ff.example"
feed = "fromfeed.xml"
license = "feed"

[partners.bigmag]
name = "Big Mag"
kind = "files"
path = "big"
base_url = "https://big.example"
[partners.coop]
name = "Coop"
kind = "files"
path = "coop"
base_url = "https://coop.example"
commercial = false

[[grants]]
source = "perm"
partner = "bigmag"
evidence = "contract 12"
embargo_days = 7
exclude_categories = ["members only"]
[[grants]]
source = "perm"
partner = "coop"
evidence = "email"
expires = {(NOW - dt.timedelta(days=1)).date().isoformat()}

[[overrides]]
source = "nc"
entry = "nc.example-nc-post"
partner = "coop"
skip = true
""")
    result = CLI(tmp_path / "syndicate.toml")("check", "--json")
    assert result.exit_code == 0, result.output
    got = {(d["guid"], d["partner"]): (d["action"], d["reason"], d["not_before"]) for d in json.loads(result.output)}
    expiry = (NOW - dt.timedelta(days=1)).date().isoformat()
    not_before = (NOW - dt.timedelta(days=2) + dt.timedelta(days=7)).replace(microsecond=0)
    assert got == {
        ("perm.example-p-old", "bigmag"): ("create", None, None),
        ("perm.example-p-old", "coop"): ("skip", f"grant expired {expiry}", None),
        ("perm.example-p-new", "bigmag"): ("wait", f"embargo: not before {not_before:%Y-%m-%d %H:%M} UTC",
                                           not_before.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("perm.example-p-new", "coop"): ("skip", f"grant expired {expiry}", None),
        ("perm.example-p-members", "bigmag"): ("skip", "category excluded: Members only", None),
        ("perm.example-p-members", "coop"): ("skip", f"grant expired {expiry}", None),
        ("nc.example-nc-post", "bigmag"): ("skip", "licence CC-BY-NC-4.0 forbids a commercial partner", None),
        ("nc.example-nc-post", "coop"): ("skip", "skipped by an editor's override", None),
        ("ff.example-ff-post", "bigmag"): ("create", None, None),
        ("ff.example-ff-post", "coop"): ("create", None, None),
    }
    order = [(d["guid"], d["partner"]) for d in json.loads(result.output)]
    assert order[:2] == [("perm.example-p-old", "bigmag"), ("perm.example-p-old", "coop")]  # grouped by entry

    only = json.loads(CLI(tmp_path / "syndicate.toml")("check", "--json", "--source", "nc", "--partner", "coop").output)
    assert [(d["guid"], d["partner"]) for d in only] == [("nc.example-nc-post", "coop")]
    table = CLI(tmp_path / "syndicate.toml")("check")
    assert "grant expired" in table.output and "not before" in table.output
