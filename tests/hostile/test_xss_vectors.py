"""The public XSS vector sets, through the pipeline, loaded in headless Chromium: nothing gets through.

Each of the 2,285 payloads of ``../shared/corpus/xss-vectors`` (DOMPurify, html5sec, PortSwigger,
OWASP, html5lib, bleach, ammonia, SonarSource mXSS) is one entry's content, summary and title, in an
RSS feed and in an Atom feed. The entries go through the public stages (parse → rewrite → render →
each publisher's ``prepare_html``) and what each partner kind receives — a files partner's page as
written, the body a WordPress or Ghost partner is sent — is loaded in Chromium, which records any
script, dialog, navigation, request to a host we did not allow, and element, attribute or URL outside
the allowlist in the live DOM (see ``browser.py``). The test asserts the promise, not a string.

The witness is checked too: positive controls (each kind of hole, unsanitised) must all be seen, a
canary in every batch must be seen, and the raw vectors, unsanitised, must mostly be seen, so that a
browser that silently reports nothing cannot make this test pass.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from syndicate.models import RewriteRules

from ..conftest import shared_path
from .browser import PART_ATTRIBUTE, Allowlist, BrowserUnavailable, Chromium, Finding, Witness, batches
from .delivered import FILES_SCAFFOLDING, Delivery, Item, atom, body_allowlist, parse_or_none, rss

pytestmark = pytest.mark.browser

FRAGMENT_SCAFFOLDING = {("head", "meta"): frozenset({"charset"}), ("head", "title"): frozenset()}
#: Frames per batch page, parts (entries) per shared page (see ``_run``).
FRAMES_PER_BATCH = 60
PARTS_PER_PAGE = 60
WHOLE_FILES_EVERY = 16
RAW_SAMPLE_EVERY = 16
FEED_CHUNK = 200
#: Kinds of finding that the DOM names per part; the others are seen per frame (page).
DOM_KINDS = {"element", "attribute", "url"}


@pytest.fixture(scope="module")
def witness() -> Iterator[Witness]:
    try:
        browser = Chromium()
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield Witness(browser)
    finally:
        browser.close()


def _allowlists() -> tuple[Allowlist, Allowlist]:
    tags, embeds = body_allowlist(RewriteRules().embed_hosts)
    return (Allowlist(tags, embeds, FILES_SCAFFOLDING),
            Allowlist(tags, embeds, {**FRAGMENT_SCAFFOLDING, ("body", "div"): frozenset({PART_ATTRIBUTE})}))


FILES_ALLOW, FRAGMENT_ALLOW = _allowlists()


def fragment_page(parts: Mapping[str, str]) -> str:
    """Bodies as a CMS theme shows them: each in its own container in one page's <body>."""
    inner = "".join(f'<div {PART_ATTRIBUTE}="{name}">{html}</div>' for name, html in parts.items())
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>partner</title></head><body>{inner}</body></html>'


CANARY = '<img src="x" onerror="alert(1)">'

#: Each kind of hole, unsanitised, with the kinds of finding the witness must report for it.
CONTROLS: dict[str, tuple[str, set[str]]] = {
    "inline-script": ("<script>document.title = 1</script>", {"script", "element"}),
    "event-handler": (CANARY, {"script", "dialog", "attribute"}),
    "javascript-link": ('<a href="javascript:alert(1)">x</a>', {"url"}),
    "entity-javascript-link": ('<a href="&#106;ava&#x09;script&colon;alert(1)">x</a>', {"url"}),
    "cite-javascript": ('<blockquote cite="javascript:alert(1)">q</blockquote>', {"url"}),
    "backslash-embed": ('<iframe src="https://evil.example\\@www.youtube.com/embed/x"></iframe>', {"url", "request"}),
    "meta-refresh": ('<meta http-equiv="refresh" content="0;url=http://evil.example/">', {"navigation"}),
    "stylesheet": ('<link rel="stylesheet" href="http://evil.example/x.css">', {"request", "element"}),
    "closed-shadow-root": ("<div><template shadowrootmode=closed><b onclick=x>s</b></template></div>",
                           {"element", "attribute"}),
    "template-content": ("<template><img src=x onerror=1></template>", {"element"}),
    "print": ("<script>print()</script>", {"dialog"}),
    "srcdoc-frame": ('<iframe srcdoc="&lt;b onclick=1&gt;x&lt;/b&gt;"></iframe>', {"element", "attribute"}),
    "after-load": ("<details open ontoggle=alert(2)><summary>x</summary></details>", {"script", "dialog"}),
    "timer": ('<img src=x onerror="setTimeout(() => confirm(3), 100)">', {"dialog"}),
    "svg": ('<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>', {"element"}),
    "style-attribute": ('<p style="background:url(http://evil.example/x.png)">x</p>', {"attribute"}),
    "form": ('<form action="http://evil.example/"><input name=p type=password></form>', {"element"}),
    "data-image": ('<img src="data:image/svg+xml,&lt;svg/&gt;">', {"url"}),
}


def test_the_witness_sees_every_kind_of_hole(witness: Witness) -> None:
    """Positive controls: each hole, unsanitised, in a page of its own and as a part of a shared page."""
    pages = {f"alone:{name}": fragment_page({name: html}) for name, (html, _) in CONTROLS.items()}
    pages["shared"] = fragment_page({name: html for name, (html, _) in CONTROLS.items() if name != "meta-refresh"})
    pages["clean"] = fragment_page({"clean": '<p>Hello <a href="https://example.com/a?b=1">a link</a> <img '
                                             'src="https://img.example/a.png" alt="x"></p><iframe '
                                             'src="https://www.youtube.com/embed/x" width="560"></iframe>'})
    findings = witness.load(pages, {name: FRAGMENT_ALLOW for name in pages})
    seen: dict[str, set[str]] = defaultdict(set)
    for finding in findings:
        seen[finding.page].add(finding.kind)
        seen[finding.page.split("#", 1)[0]].add(finding.kind)  # a page's findings include its parts'
    missed = {name: sorted(expected - seen[f"alone:{name}"]) for name, (_, expected) in CONTROLS.items()
              if not expected <= seen[f"alone:{name}"]}
    assert not missed, f"the witness missed these holes: {missed}"
    # In a shared page, the DOM findings still name the part they are in.
    for name, (_, expected) in CONTROLS.items():
        if name != "meta-refresh" and expected & DOM_KINDS:
            assert expected & DOM_KINDS & seen[f"shared#{name}"], f"{name}: not attributed in a shared page"
    assert not [f for f in findings if f.page.startswith("clean")], "a clean page is not a finding"


def _payloads() -> list[dict[str, Any]]:
    path = shared_path("corpus", "xss-vectors", "payloads.json")
    payloads: list[dict[str, Any]] = json.loads(path.read_text("utf-8"))
    return payloads


def _item(payload: dict[str, Any]) -> Item:
    text = payload["payload"]
    return Item(guid=f"xss-{payload['id']}", title=text, link=f"https://source.example/post-{payload['id']}/",
                summary=text, content=text)


def _delivered(delivery: Delivery, payloads: list[dict[str, Any]]) -> tuple[dict[str, dict[str, str]], list[int]]:
    """Unique delivered HTML per (kind) → {html: first payload label}; and the payloads with no entry."""
    out: dict[str, dict[str, str]] = {"files": {}, "fragment": {}}
    unpublished: list[int] = []
    for flavour, build in (("rss", rss), ("atom", atom)):
        for chunk in batches(payloads, FEED_CHUNK):
            entries = parse_or_none(delivery, build(_item(p) for p in chunk))
            if entries is None or len(entries) != len(chunk):
                # A payload broke its feed: each one alone, so only that one is left out.
                entries = []
                for payload in chunk:
                    alone = parse_or_none(delivery, build([_item(payload)]))
                    if not alone:
                        unpublished.append(payload["id"])
                    entries += alone or []
            for entry in entries:
                label = f"{flavour}:{entry.guid}"
                for kind, html in delivery.delivered(entry).items():
                    bucket = out["files" if kind == "files" else "fragment"]
                    bucket.setdefault(html, f"{label}:{kind}")
    return out, unpublished


def _run(witness: Witness, files: Mapping[str, str], fragments: Mapping[str, str]) -> list[Finding]:
    """Load every page (a canary in each batch) and return the findings; a batch whose canary is not
    seen fails the test (the witness stopped seeing).

    A frame costs Chromium tens of milliseconds on a busy machine, so pages share frames: CMS bodies
    as a theme shows them (parts of one page), and files pages as parts too — the HTML parser
    tokenises a whole page in a part as it would alone (a <title> is RCDATA wherever it stands); it
    only puts head elements in the part instead of <head>. Every ``WHOLE_FILES_EVERY``-th files page
    is also loaded alone, as the whole document it is on the partner's site.
    """
    frames: list[tuple[str, str, Allowlist]] = []
    for number, (html, label) in enumerate(files.items()):
        if number % WHOLE_FILES_EVERY == 0:
            frames.append((label, html, FILES_ALLOW))
    for pages, allow in ((files, FILES_ALLOW), (fragments, FRAGMENT_ALLOW)):
        for group in batches(list(pages.items()), PARTS_PER_PAGE):
            parts = {label: html for html, label in group}
            frames.append((f"shared[{group[0][1]}…]", fragment_page(parts), allow))
    findings: list[Finding] = []
    for number, batch in enumerate(batches(frames, FRAMES_PER_BATCH)):
        pages = {label: html for label, html, _ in batch}
        allowlists = {label: allow for label, _, allow in batch}
        pages["canary"] = fragment_page({"canary": CANARY})
        allowlists["canary"] = FRAGMENT_ALLOW
        seen = witness.load(pages, allowlists)
        canary = {f.kind for f in seen if f.page.startswith("canary")}
        assert {"script", "dialog", "attribute"} <= canary, f"batch {number}: the canary was not seen ({canary})"
        findings += [f for f in seen if not f.page.startswith("canary")]
    return findings


def _attribute(witness: Witness, findings: list[Finding], files: Mapping[str, str],
               fragments: Mapping[str, str]) -> list[Finding]:
    """A script/dialog/request/navigation in a shared page: load its parts alone to name the part."""
    shared = {f.page for f in findings if f.page.startswith("shared[") and f.kind not in DOM_KINDS}
    if not shared:
        return findings
    kept = [f for f in findings if f.page not in shared or f.kind in DOM_KINDS]
    alone = [(label, html, FILES_ALLOW) for html, label in files.items()]
    alone += [(label, fragment_page({label: html}), FRAGMENT_ALLOW) for html, label in fragments.items()]
    for group in batches(alone, FRAMES_PER_BATCH):
        kept += [f for f in witness.load({label: html for label, html, _ in group},
                                         {label: allow for label, _, allow in group}) if f.kind not in DOM_KINDS]
    return kept


def test_public_xss_vectors_do_not_get_through(witness: Witness, tmp_path: Path) -> None:
    payloads = _payloads()
    assert len(payloads) >= 2000, "the vector sets are incomplete"
    started = time.monotonic()
    delivery = Delivery(tmp_path)
    delivered, unpublished = _delivered(delivery, payloads)
    prepared = time.monotonic()
    findings = _run(witness, delivered["files"], delivered["fragment"])
    findings = _attribute(witness, findings, delivered["files"], delivered["fragment"])
    loaded = time.monotonic()
    print(f"\n{len(payloads)} payloads → {len(delivered['files'])} files pages and {len(delivered['fragment'])} "
          f"distinct CMS bodies ({len(unpublished)} payloads refused with their feed); "
          f"pipeline {prepared - started:.1f} s, Chromium {loaded - prepared:.1f} s")
    by_id = {p["id"]: p for p in payloads}
    report = []
    for finding in sorted(set(findings), key=lambda f: (f.page, f.kind, f.detail)):
        name = finding.page.rsplit("#", 1)[-1]  # the part, in a shared page
        guid = next((bit for bit in name.split(":") if bit.startswith("xss-")), None)
        payload = by_id.get(int(guid[4:])) if guid else None
        origin = f"{payload['set']} {payload['name']!r}: {payload['payload'][:160]!r}" if payload else ""
        report.append(f"{finding.page} {finding.kind}: {finding.detail}\n    {origin}")
    assert not report, f"{len(report)} findings:\n" + "\n".join(report[:60])


def test_the_raw_vectors_are_seen_by_the_witness(witness: Witness) -> None:
    """Raw payloads, unsanitised, must nearly all be findings: the witness is not blind to real vectors.

    A sample (every ``RAW_SAMPLE_EVERY``-th), each in a frame of its own (raw markup would spill into
    its neighbours: one <plaintext> swallows the rest of a page), with no script run (a raw payload
    may loop forever); script, dialog and request detection are proven by the controls and canaries.
    """
    payloads = _payloads()[::RAW_SAMPLE_EVERY]
    # Payloads that are only text cannot be holes even raw.
    sample = {f"xss-{p['id']}": p for p in payloads if "<" in p["payload"]}
    findings: list[Finding] = []
    for batch in batches(list(sample.items()), FRAMES_PER_BATCH):
        pages = {label: fragment_page({label: p["payload"]}) for label, p in batch}
        findings += witness.load(pages, {label: FRAGMENT_ALLOW for label in pages}, scripts=False)
    flagged = {f.page.split("#", 1)[0] for f in findings}
    missed = sorted(set(sample) - flagged, key=lambda label: int(label[4:]))
    rate = len(flagged & set(sample)) / len(sample)
    print(f"\nraw vectors seen by the witness: {len(flagged & set(sample))} of {len(sample)} ({rate:.1%}); "
          f"not seen: {[sample[label]['payload'][:80] for label in missed]}")
    # The rest are harmless where they stand: text, allowed markup, a <td> or <frameset> outside its
    # context (the parser drops it), a scheme broken by a control character (a relative URL).
    assert rate > 0.8, f"the witness missed {len(missed)} raw vectors"
