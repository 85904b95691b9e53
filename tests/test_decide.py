"""The decision matrix: grants, licences, embargoes, categories, overrides, and the date boundaries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from syndicate.config import parse_config
from syndicate.decide import Rules
from syndicate.models import Entry
from syndicate.plan import ledger_action
from syndicate.records import HELD, OK, WITHDRAWN, Delivery

UTC = dt.timezone.utc
PUBLISHED = dt.datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def entry(source: str = "perm", *, guid: str = "https://blog.example/?p=1",
          url: str = "https://www.blog.example/a-post/", categories: tuple[str, ...] = ("Essays",),
          license: str | None = None, published: dt.datetime | None = PUBLISHED) -> Entry:
    return Entry(source=source, guid=guid, url=url, title="A post", author="Jo", published=published,
                 updated=None, categories=categories, content="<p>x</p>", license=license).with_hash()


def config(**extra: Any) -> Any:
    data: dict[str, Any] = {
        "sources": {
            "perm": {"name": "blog", "site_url": "https://www.blog.example", "feed": "f.xml",
                     "aliases": ["blog.example", "old-blog.example"]},
            "by": {"name": "by", "site_url": "https://by.example", "feed": "f.xml", "license": "CC-BY-4.0"},
            "nc": {"name": "nc", "site_url": "https://nc.example", "feed": "f.xml", "license": "CC-BY-NC-4.0"},
            "nd": {"name": "nd", "site_url": "https://nd.example", "feed": "f.xml", "license": "CC-BY-ND-3.0"},
            "ncsa3": {"name": "ncsa", "site_url": "https://ncsa.example", "feed": "f.xml", "license": "cc-by-nc-sa-3.0"},
            "zero": {"name": "zero", "site_url": "https://zero.example", "feed": "f.xml", "license": "CC0-1.0"},
            "fromfeed": {"name": "ff", "site_url": "https://ff.example", "feed": "f.xml", "license": "feed"},
            "strict": {"name": "strict", "site_url": "https://strict.example", "feed": "f.xml", "license": "CC-BY-4.0",
                       "embargo_days": 3, "exclude_categories": ["Private"]},
        },
        "partners": {
            "com": {"name": "Commercial Mag", "kind": "files", "path": "o1", "base_url": "https://com.example"},
            "nonprofit": {"name": "Nonprofit Mag", "kind": "files", "path": "o2", "base_url": "https://np.example",
                          "commercial": False},
        },
    }
    data.update(extra)
    return parse_config(data, Path("/tmp/syndicate.toml"))


def grant(source: str = "perm", partner: str = "com", **kw: Any) -> dict[str, Any]:
    return {"source": source, "partner": partner, "evidence": "Email from Jo, 2026-01-02", **kw}


# (case id, config extras, entry kwargs, partner, now, expected action, expected reason, expected not_before)
CASES = [
    ("deny by default", {}, {}, "com", PUBLISHED, "skip", "no grant", None),
    ("grant permits", {"grants": [grant()]}, {}, "com", PUBLISHED, "create", None, None),
    ("grant for another partner only", {"grants": [grant(partner="nonprofit")]}, {}, "com", PUBLISHED,
     "skip", "no grant", None),
    ("grant excludes a category, case-insensitively",
     {"grants": [grant(exclude_categories=["members only"])]}, {"categories": ("Next", "Members Only")}, "com",
     PUBLISHED, "skip", "category excluded: Members Only", None),
    ("grant excludes by tag too", {"grants": [grant(exclude_categories=["draft-ish"])]},
     {"categories": ("Draft-ish",)}, "com", PUBLISHED, "skip", "category excluded: Draft-ish", None),
    ("grant includes only some categories", {"grants": [grant(include_categories=["Leadership", "Service"])]},
     {"categories": ("Essays",)}, "com", PUBLISHED, "skip", "category not included: Leadership, Service", None),
    ("include matches", {"grants": [grant(include_categories=["essays"])]}, {}, "com", PUBLISHED, "create", None, None),
    ("embargo: one second early waits", {"grants": [grant(embargo_days=7)]}, {}, "com",
     PUBLISHED + dt.timedelta(days=7, seconds=-1), "wait", "embargo: not before 2026-03-08 09:30 UTC",
     PUBLISHED + dt.timedelta(days=7)),
    ("embargo: ends exactly at publication + N days", {"grants": [grant(embargo_days=7)]}, {}, "com",
     PUBLISHED + dt.timedelta(days=7), "create", None, None),
    ("grant in force through its expiry day",
     {"grants": [grant(expires="2026-03-31")]}, {}, "com",
     dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC), "create", None, None),
    ("grant expired the day after", {"grants": [grant(expires="2026-03-31")]}, {}, "com",
     dt.datetime(2026, 4, 1, 0, 0, tzinfo=UTC), "skip", "grant expired 2026-03-31", None),
    ("CC BY: every partner, no grant", {}, {"source": "by"}, "com", PUBLISHED, "create", None, None),
    ("CC BY-NC forbids a commercial partner", {}, {"source": "nc"}, "com", PUBLISHED, "skip",
     "licence CC-BY-NC-4.0 forbids a commercial partner", None),
    ("CC BY-NC allows a non-commercial partner", {}, {"source": "nc"}, "nonprofit", PUBLISHED, "create", None, None),
    ("CC BY-NC + grant to a commercial partner", {"grants": [grant(source="nc")]}, {"source": "nc"}, "com",
     PUBLISHED, "create", None, None),
    ("CC BY-NC-SA 3.0 (lower case id) forbids commercial", {}, {"source": "ncsa3"}, "com", PUBLISHED, "skip",
     "licence CC-BY-NC-SA-3.0 forbids a commercial partner", None),
    ("CC0", {}, {"source": "zero"}, "com", PUBLISHED, "create", None, None),
    ("a grant on a CC source adds its embargo", {"grants": [grant(source="by", embargo_days=2)]}, {"source": "by"},
     "com", PUBLISHED + dt.timedelta(days=1), "wait", "embargo: not before 2026-03-03 09:30 UTC",
     PUBLISHED + dt.timedelta(days=2)),
    ("a grant on a CC source adds its categories", {"grants": [grant(source="by", exclude_categories=["Essays"])]},
     {"source": "by"}, "com", PUBLISHED, "skip", "category excluded: Essays", None),
    ("an expired grant on a CC source: the licence still permits",
     {"grants": [grant(source="by", expires="2026-01-01")]}, {"source": "by"}, "com", PUBLISHED, "create", None, None),
    ("source embargo applies under a licence", {}, {"source": "strict"}, "nonprofit",
     PUBLISHED + dt.timedelta(days=2), "wait", "embargo: not before 2026-03-04 09:30 UTC",
     PUBLISHED + dt.timedelta(days=3)),
    ("source exclusion applies to every partner", {"grants": [grant(source="strict")]},
     {"source": "strict", "categories": ("private",)}, "com", PUBLISHED + dt.timedelta(days=9), "skip",
     "category excluded by the author: private", None),
    ("feed licence on the entry (URL)", {}, {"source": "fromfeed", "license": "CC-BY-SA-4.0"}, "com", PUBLISHED,
     "create", None, None),
    ("feed licence NC declared by URL", {}, {"source": "fromfeed",
                                           "license": "https://creativecommons.org/licenses/by-nc/4.0/"},
     "com", PUBLISHED, "skip", "licence CC-BY-NC-4.0 forbids a commercial partner", None),
    ("feed declares no licence", {}, {"source": "fromfeed"}, "com", PUBLISHED, "skip",
     "no grant (the feed declares no licence)", None),
    ("feed declares a licence that is not CC", {}, {"source": "fromfeed", "license": "https://example.com/terms"},
     "com", PUBLISHED, "skip", "no grant (the feed's licence https://example.com/terms is not Creative Commons)", None),
    ("override skip by guid", {"grants": [grant()], "overrides": [
        {"source": "perm", "entry": "https://blog.example/?p=1", "skip": True}]}, {}, "com", PUBLISHED,
     "skip", "skipped by an editor's override", None),
    ("override skip by another spelling of the URL", {"grants": [grant()], "overrides": [
        {"source": "perm", "entry": "http://old-blog.example/a-post?utm_source=x&fbclid=1", "skip": True}]}, {}, "com",
     PUBLISHED, "skip", "skipped by an editor's override", None),
    ("override for another partner only", {"grants": [grant()], "overrides": [
        {"source": "perm", "entry": "https://www.blog.example/a-post/", "partner": "nonprofit", "skip": True}]},
     {}, "com", PUBLISHED, "create", None, None),
    ("override naming another entry", {"grants": [grant()], "overrides": [
        {"source": "perm", "entry": "https://www.blog.example/another-post/", "skip": True}]}, {}, "com", PUBLISHED,
     "create", None, None),
]


@pytest.mark.parametrize(("extra", "entry_kw", "partner", "now", "action", "reason", "not_before"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decision(extra: dict[str, Any], entry_kw: dict[str, Any], partner: str, now: dt.datetime, action: str,
                  reason: str | None, not_before: dt.datetime | None) -> None:
    rules = Rules(config(**extra))
    e = entry(**entry_kw)
    verdict = rules.verdict(e, rules.config.partners[partner], now, PUBLISHED)
    assert ledger_action(None, verdict, updates="push", overwrite=False) == (action, reason)
    assert verdict.not_before == not_before


def copy(state: str = OK, note: str | None = None) -> Delivery:
    return Delivery(partner="com", source="perm", guid="https://blog.example/?p=1", state=state, remote_id="a-post",
                    remote_url="https://com.example/a-post/", slug="a-post", pushed_hash="h", note=note)


LEDGER_CASES = [
    ("grant removed: the copy is withdrawn", {}, copy(), "withdraw", "no grant"),
    ("override now skips: withdrawn", {"grants": [grant()], "overrides": [
        {"source": "perm", "entry": "https://blog.example/?p=1", "skip": True}]}, copy(), "withdraw",
     "skipped by an editor's override"),
    ("an expired grant alone never withdraws", {"grants": [grant(expires="2026-01-01")]}, copy(), "skip",
     "grant expired 2026-01-01"),
    ("a withdrawal sticks", {"grants": [grant()]}, copy(WITHDRAWN, "withdrawn by an editor"), "withdrawn",
     "withdrawn by an editor"),
    ("held stays held", {"grants": [grant()]}, copy(HELD, "the partner edited its copy"), "held",
     "the partner edited its copy"),
]


@pytest.mark.parametrize(("extra", "delivery", "action", "reason"), [c[1:] for c in LEDGER_CASES],
                         ids=[c[0] for c in LEDGER_CASES])
def test_decision_with_a_copy(extra: dict[str, Any], delivery: Delivery, action: str, reason: str) -> None:
    now = PUBLISHED + dt.timedelta(days=200)
    rules = Rules(config(**extra))
    verdict = rules.verdict(entry(), rules.config.partners["com"], now, PUBLISHED)
    assert ledger_action(delivery, verdict, updates="push", overwrite=False) == (action, reason)


def test_updates_ignore_owns_the_copy() -> None:
    cfg = config(grants=[grant()])
    partner = cfg.partners["com"].model_copy(update={"updates": "ignore"})
    verdict = Rules(cfg).verdict(entry(), partner, PUBLISHED)
    assert ledger_action(copy(), verdict, updates=partner.updates, overwrite=False) == ("unchanged", None)


def test_permission_recorded_is_the_grant_evidence_or_the_licence() -> None:
    rules = Rules(config(grants=[grant(source="nc")]))
    cfg = rules.config
    assert rules.verdict(entry(), cfg.partners["com"], PUBLISHED).permission is None
    by_grant = rules.verdict(entry("nc"), cfg.partners["com"], PUBLISHED).permission
    assert by_grant is not None and by_grant.describe() == "grant: Email from Jo, 2026-01-02"
    by_licence = rules.verdict(entry("nc"), cfg.partners["nonprofit"], PUBLISHED).permission
    assert by_licence is not None and by_licence.describe() == "licence CC-BY-NC-4.0"


def test_nd_licence_marks_no_derivatives() -> None:
    rules = Rules(config())
    verdict = rules.verdict(entry("nd"), rules.config.partners["com"], PUBLISHED)
    assert verdict.allowed and verdict.no_derivatives and verdict.license and verdict.license.spdx == "CC-BY-ND-3.0"


def test_an_entry_without_a_date_is_embargoed_from_when_it_was_first_seen() -> None:
    rules = Rules(config(grants=[grant(embargo_days=1)]))
    first_seen = dt.datetime(2026, 5, 1, tzinfo=UTC)
    verdict = rules.verdict(entry(published=None), rules.config.partners["com"], first_seen + dt.timedelta(hours=1),
                            first_seen)
    assert verdict.not_before == first_seen + dt.timedelta(days=1)
