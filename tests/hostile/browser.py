"""Headless Chromium as a witness: load pages, record everything hostile that happens in them.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL on file descriptors 3 and 4), so no websocket client, driver or browser download is
needed: only Debian's ``chromium``. Every request the pages make is intercepted (``Fetch``): our own
pages are answered from memory, everything else is recorded and failed, so nothing leaves the machine.

What counts as hostile (a :class:`Finding`), per page:

* ``script``: any script compiled in a page (``Debugger.scriptParsed``): inline scripts, event
  handlers when they fire, ``javascript:`` URLs, ``eval``… Our own probes carry a sourceURL marker.
* ``dialog``: alert/confirm/prompt/beforeunload (``Page.javascriptDialogOpening``) and ``print()``.
* ``navigation``: a frame that goes anywhere but the page we loaded into it.
* ``request``: a request other than our pages, images/media from http(s), and frames of allowed
  embed hosts (as Chromium itself parsed the URL: the request log is the browser's own reading).
* ``element``/``attribute``/``url``: in the live DOM (``DOM.getDocument`` with ``pierce``: frames,
  template contents and open or closed shadow roots included), any element or attribute outside the
  allowlist, a URL attribute whose scheme as the browser resolves it is not http(s)/mailto, an iframe
  whose host as the browser resolves it is not an allowed embed host.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The flags every run uses (the preview test's set), plus the pipe. Site isolation is off so that a
#: cross-site iframe stays in the page's renderer, where our session sees its requests and scripts.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-site-isolation-trials", "--disable-features=IsolateOrigins,site-per-process",
         "--mute-audio", "--remote-debugging-pipe")
#: Our probes' scripts carry this sourceURL, so that only the page's own scripts count as findings.
HARNESS_URL = "syndicate-harness.js"
#: The origin our pages are served from (``.test`` is reserved: it can never be a real host).
ORIGIN = "http://partner.test"
#: Resource types a sanitised page may request from any http(s) host (images, video/audio, tracks).
MEDIA_TYPES = {"Image", "Media", "TextTrack"}
URL_ATTRIBUTES = {"href", "src", "poster", "cite", "srcset"}
SAFE_SCHEMES = {"http:", "https:", "mailto:"}
#: A page may hold several parts (entries), each in ``<div data-syndicate-part="NAME">`` directly in
#: <body>: findings in the DOM name the part; a script or request names the page (see ``parts_of``).
PART_ATTRIBUTE = "data-syndicate-part"


class BrowserUnavailable(Exception):
    """Chromium is not installed or could not start."""


def find_chromium() -> str | None:
    """The path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass(frozen=True)
class Finding:
    """One hostile thing seen in one page."""

    page: str
    kind: str
    detail: str


@dataclass(frozen=True)
class Allowlist:
    """What a sanitised page may contain: elements → attributes, and the embed hosts iframes may load."""

    tags: Mapping[str, frozenset[str]]
    embed_hosts: frozenset[str]
    #: Elements allowed only where the page template puts them: (parent tag, tag) → attributes.
    scaffolding: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)


class Chromium:
    """One headless Chromium process with a DevTools session on one tab."""

    def __init__(self, binary: str | None = None, timeout: float = 30.0) -> None:
        binary = binary or find_chromium()
        if binary is None:
            raise BrowserUnavailable("no Chromium here (tests/run.sh installs Debian's chromium)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="syndicate-chromium-")
        to_chrome_r, self._to_chrome = _high_pipe()
        self._from_chrome, from_chrome_w = _high_pipe()
        # The pipe must be fds 3 and 4 in Chromium: bash moves them there before exec (dash cannot name fds > 9).
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.process = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", script, binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=_stderr(), start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.handlers: list[Callable[[dict[str, Any]], None]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        try:
            self.call("Browser.getVersion")
        except Exception as exc:
            self.close()
            raise BrowserUnavailable(f"Chromium did not start: {exc}") from None

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self._messages.put(None)
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            for raw in complete:
                self._messages.put(json.loads(raw))

    def send(self, method: str, params: Mapping[str, Any] | None = None, session: str | None = None) -> int:
        """Send a command without waiting for its answer; returns its id."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": dict(params or {})}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_chrome, data):]
        return self._next_id

    def call(self, method: str, params: Mapping[str, Any] | None = None, session: str | None = None) -> Any:
        """Send a command and wait for its result (handling events meanwhile)."""
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while wanted not in self._replies:
            if not self.pump(deadline - time.monotonic()):
                raise TimeoutError(f"{method}: no answer from Chromium in {self.timeout} s")
        reply = self._replies.pop(wanted)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def pump(self, timeout: float) -> bool:
        """Handle one message (an event or a reply); False when none came in ``timeout`` seconds."""
        try:
            message = self._messages.get(timeout=max(timeout, 0))
        except queue.Empty:
            return False
        if message is None:
            raise BrowserUnavailable("Chromium closed the DevTools pipe")
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            for handler in list(self.handlers):
                handler(message)
        return True

    def run_for(self, seconds: float) -> None:
        """Handle events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(left)

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        for fd in (self._to_chrome,):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            os.close(self._from_chrome)
        except OSError:
            pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_INIT_SCRIPT = f"""(() => {{
  const report = globalThis.__syndicateReport;
  // print() opens no DevTools dialog: report it the way a dialog would be.
  window.print = () => report("print");
}})();
//# sourceURL={HARNESS_URL}"""


class Witness:
    """Loads batches of pages in one tab and reports what each page did."""

    def __init__(self, browser: Chromium, settle: float = 0.3) -> None:
        self.browser = browser
        self.settle = settle
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.handlers.append(self._event)
        self._served: dict[str, bytes] = {}
        self._frame_page: dict[str, str] = {}      # frame id → the page it belongs to
        self._frame_parent: dict[str, str] = {}
        self._context_frame: dict[int, str] = {}
        self._top_frame: str | None = None
        self.findings: list[Finding] = []
        self.requests: list[tuple[str, str, str]] = []   # (page, resource type, url) of every request made
        self.allow_embeds: frozenset[str] = frozenset()
        for method, params in (("Page.enable", {}), ("Runtime.enable", {}), ("Debugger.enable", {}),
                               ("DOM.enable", {}),
                               ("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}),
                               ("Runtime.addBinding", {"name": "__syndicateReport"}),
                               ("Page.addScriptToEvaluateOnNewDocument", {"source": _INIT_SCRIPT})):
            browser.call(method, params, self.session)

    # --- attribution ------------------------------------------------------------------------------

    def _page_of_frame(self, frame: str | None) -> str:
        seen = 0
        while frame is not None and seen < 100:
            if frame in self._frame_page:
                return self._frame_page[frame]
            frame = self._frame_parent.get(frame)
            seen += 1
        return "(batch)"

    def _record(self, frame: str | None, kind: str, detail: str) -> None:
        self.findings.append(Finding(self._page_of_frame(frame), kind, detail[:300]))

    # --- events -------------------------------------------------------------------------------------

    def _event(self, message: dict[str, Any]) -> None:
        if message.get("sessionId") != self.session:
            return
        method = message["method"]
        params = message.get("params", {})
        if method == "Fetch.requestPaused":
            self._request(params)
        elif method == "Page.frameAttached":
            self._frame_parent[params["frameId"]] = params["parentFrameId"]
        elif method == "Page.frameNavigated":
            frame = params["frame"]
            if frame.get("parentId"):
                self._frame_parent[frame["id"]] = frame["parentId"]
            url = frame.get("url", "")
            expected = self._frame_page.get(frame["id"])
            if frame["id"] == self._top_frame or (expected is not None and url == ORIGIN + expected):
                return
            if frame.get("parentId") == self._top_frame and url.startswith(ORIGIN + "/page/"):
                self._frame_page[frame["id"]] = url[len(ORIGIN):]
                return
            if url.startswith("chrome-error://"):
                return  # a request we failed (recorded there, if it was not allowed)
            if url in ("about:blank", "about:srcdoc") and expected is None:
                return  # a nested frame's initial document (its iframe element is checked in the DOM)
            self._record(frame["id"], "navigation", f"a frame navigated to {url}")
        elif method == "Page.frameRequestedNavigation":
            if params.get("reason") == "initialFrameNavigation":
                return  # an iframe loading its src: the request log and the DOM check judge those
            self._record(params["frameId"], "navigation", f"{params.get('reason')}: {params.get('url')}")
        elif method == "Page.javascriptDialogOpening":
            self._record(params.get("frameId") or self._frame_by_url(params.get("url", "")),
                         "dialog", f"{params.get('type')}: {params.get('message')}")
            self.browser.send("Page.handleJavaScriptDialog", {"accept": False}, self.session)
        elif method == "Runtime.executionContextCreated":
            context = params["context"]
            self._context_frame[context["id"]] = (context.get("auxData") or {}).get("frameId", "")
        elif method == "Runtime.bindingCalled":
            self._record(self._context_frame.get(params["executionContextId"]), "dialog", params["payload"])
        elif method == "Debugger.scriptParsed":
            if params.get("url") == HARNESS_URL or params.get("url", "").startswith("chrome-error://"):
                return  # our probes, and Chromium's own error page for a request we failed
            frame = (params.get("executionContextAuxData") or {}).get("frameId") \
                or self._context_frame.get(params.get("executionContextId", -1))
            self._record(frame, "script", f"script compiled: url={params.get('url')!r} "
                                          f"length={params.get('length')}")

    def _frame_by_url(self, url: str) -> str | None:
        for frame, page in self._frame_page.items():
            if ORIGIN + page == url:
                return frame
        return None

    def _request(self, params: dict[str, Any]) -> None:
        request = params["request"]
        url: str = request["url"]
        kind: str = params.get("resourceType", "")
        frame = params.get("frameId")
        body = self._served.get(url)
        if url == ORIGIN + "/favicon.ico":
            self.browser.send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "Aborted"},
                              self.session)
            return
        if body is not None and kind == "Document":
            headers = [{"name": "Content-Type", "value": "text/html; charset=utf-8"}]
            self.browser.send("Fetch.fulfillRequest", {"requestId": params["requestId"], "responseCode": 200,
                                                     "responseHeaders": headers,
                                                     "body": base64.b64encode(body).decode()}, self.session)
            return
        self.browser.send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                          self.session)
        page = self._page_of_frame(frame)
        self.requests.append((page, kind, url))
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower() if rest else ""
        if kind in MEDIA_TYPES and scheme in ("http", "https"):
            return
        if kind == "Document" and scheme in ("http", "https") and host in self.allow_embeds:
            return
        self._record(frame, "request", f"{kind} {url}")

    # --- loading ------------------------------------------------------------------------------------

    def load(self, pages: Mapping[str, str], allowlists: Mapping[str, Allowlist],
             scripts: bool = True) -> list[Finding]:
        """Load ``pages`` (name → HTML) as iframes of one batch page; the findings of each, by name.

        ``allowlists`` maps each page name to the allowlist its live DOM is checked against. A finding
        in the DOM of a part names ``page#part``. ``scripts=False`` runs no script at all (for raw,
        unsanitised pages, whose scripts could hang the tab): only the DOM is checked then.
        """
        self.findings = []
        self.requests = []
        self._served = {}
        self._frame_page = {}
        self._frame_parent = {}
        self._context_frame = {}
        self.allow_embeds = frozenset().union(*(a.embed_hosts for a in allowlists.values()))
        names = {}
        frames = []
        for number, (name, html) in enumerate(pages.items()):
            path = f"/page/{number}"
            names[path] = name
            self._served[ORIGIN + path] = html.encode("utf-8")
            frames.append(f'<iframe src="{path}" width="800" height="200"></iframe>')
        batch_url = f"{ORIGIN}/batch/{time.monotonic_ns()}"
        self._served[batch_url] = ("<!DOCTYPE html><html><head><meta charset=utf-8><title>batch</title></head><body>"
                                   + "".join(frames) + "</body></html>").encode()
        self.browser.call("Emulation.setScriptExecutionDisabled", {"value": not scripts}, self.session)
        navigated = self.browser.call("Page.navigate", {"url": batch_url}, self.session)
        self._top_frame = navigated["frameId"]
        done: list[bool] = []

        def on_load(message: dict[str, Any]) -> None:
            if message.get("sessionId") == self.session and message.get("method") == "Page.loadEventFired":
                done.append(True)

        self.browser.handlers.append(on_load)
        try:
            deadline = time.monotonic() + self.browser.timeout
            while not done and (left := deadline - time.monotonic()) > 0:
                self.browser.pump(left)
        finally:
            self.browser.handlers.remove(on_load)
        if not done:
            # Something keeps the pages from loading (a script that never ends?): every page of the
            # batch is a finding, and the tab is taken back for the next batch.
            self.browser.send("Runtime.terminateExecution", {}, self.session)
            self.browser.call("Page.navigate", {"url": "about:blank"}, self.session)
            self.browser.run_for(0.5)
            return [Finding(name, "script", "the page did not finish loading in "
                                            f"{self.browser.timeout:.0f} s") for name in pages]
        self.browser.run_for(self.settle)  # handlers that fire after load (autofocus, ontoggle, timers)
        findings = self._check_dom(names, allowlists)
        self.browser.run_for(0.05)
        # Events were attributed to "/page/N"; give them the caller's names (the DOM check already did).
        named = [Finding(names.get(f.page, f.page), f.kind, f.detail) for f in self.findings] + findings
        # The next batch starts from a blank page, so nothing of this one lingers.
        self.browser.call("Page.navigate", {"url": "about:blank"}, self.session)
        self.browser.run_for(0.02)
        return named

    # --- the live DOM -------------------------------------------------------------------------------

    def _check_dom(self, names: Mapping[str, str], allowlists: Mapping[str, Allowlist]) -> list[Finding]:
        root = self.browser.call("DOM.getDocument", {"depth": -1, "pierce": True}, self.session)["root"]
        findings: list[Finding] = []
        urls: list[tuple[str, str, str, str, str, str]] = []  # (page, label, tag, attribute, value, base)
        top_body = _find(root, "body")
        for frame in (top_body or {}).get("children", []):
            if frame.get("localName") != "iframe":
                continue
            path = _attrs(frame).get("src", "")
            document = frame.get("contentDocument")
            name = names.get(path)
            if name is None or document is None:
                findings.append(Finding(name or path, "element", "the page did not load in its frame"))
                continue
            if document.get("documentURL") != ORIGIN + path:
                # Navigated away (the navigation is reported); what replaced it is not ours to check.
                findings.append(Finding(name, "navigation", f"the page's frame shows {document.get('documentURL')}"))
                continue
            _walk_document(document, path, name, allowlists[name], findings, urls)
        findings += self._check_urls(urls, {path: allowlists[name] for path, name in names.items()})
        return findings

    def _check_urls(self, urls: list[tuple[str, str, str, str, str, str]],
                    allowlists: Mapping[str, Allowlist]) -> list[Finding]:
        """Resolve each URL attribute as the browser does (its own URL parser) and check scheme and host."""
        if not urls:
            return []
        pairs = [[value, base] for *_, value, base in urls]
        expression = (
            "JSON.stringify(" + json.dumps(pairs) + ".map(([v, b]) => {"
            " try { const u = new URL(v, b); return [u.protocol, u.hostname, u.href]; }"
            " catch (e) { return null; } }))\n//# sourceURL=" + HARNESS_URL)
        result = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                   self.session)
        parsed = json.loads(result["result"]["value"])
        findings = []
        for (page, label, tag, attribute, value, _), reading in zip(urls, parsed):
            if reading is None:
                continue  # not a URL to a browser: nothing would be loaded or followed
            protocol, host, href = reading
            if tag == "iframe":
                if protocol not in ("http:", "https:") or host not in allowlists[page].embed_hosts:
                    findings.append(Finding(label, "url", f"<iframe src> loads {href} (host {host!r} as the "
                                                         f"browser reads {value!r})"))
            elif protocol not in SAFE_SCHEMES:
                findings.append(Finding(label, "url", f"<{tag} {attribute}> is {href[:120]} ({protocol})"))
        return findings


def _attrs(node: Mapping[str, Any]) -> dict[str, str]:
    flat = node.get("attributes") or []
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _find(node: Mapping[str, Any], local_name: str) -> Mapping[str, Any] | None:
    if node.get("localName") == local_name:
        return node
    for child in node.get("children", []):
        found = _find(child, local_name)
        if found is not None:
            return found
    return None


def srcset_urls(value: str) -> list[str]:
    """The URLs of a srcset, split as the HTML standard's "parse a srcset attribute" does."""
    urls = []
    position = 0
    length = len(value)
    whitespace = " \t\n\f\r"
    while position < length:
        while position < length and (value[position] in whitespace or value[position] == ","):
            position += 1
        if position >= length:
            break
        start = position
        while position < length and value[position] not in whitespace:
            position += 1
        url = value[start:position]
        if url.endswith(","):
            urls.append(url.rstrip(","))
            continue
        urls.append(url)
        depth = 0
        while position < length:  # descriptors, up to a comma outside parentheses
            char = value[position]
            position += 1
            if char == "(":
                depth += 1
            elif char == ")":
                depth = max(depth - 1, 0)
            elif char == "," and depth == 0:
                break
    return [u for u in urls if u]


def _walk_document(document: Mapping[str, Any], page: str, name: str, allow: Allowlist,
                   findings: list[Finding], urls: list[tuple[str, str, str, str, str, str]]) -> None:
    """Check every element under a page's document (and its templates, shadow roots and frames)."""
    base = document.get("baseURL") or document.get("documentURL") or ORIGIN + page

    def visit(node: Mapping[str, Any], parent: str, in_template: bool, label: str) -> None:
        node_type = node.get("nodeType")
        if node_type == 1:
            tag = node.get("localName") or node.get("nodeName", "").lower()
            attrs = _attrs(node)
            if parent == "body" and tag == "div" and not in_template and set(attrs) == {PART_ATTRIBUTE}:
                for child in node.get("children", []):
                    visit(child, "#part", False, f"{name}#{attrs[PART_ATTRIBUTE]}")
                return
            # Where the template puts an element, its attributes there are allowed too.
            scaffolding = None if in_template else allow.scaffolding.get((parent, tag))
            body_allowed = allow.tags.get(tag)
            allowed = body_allowed if scaffolding is None else scaffolding | (body_allowed or frozenset())
            if tag == "iframe" and not in_template:
                allowed = frozenset({"src", "width", "height", "title", "frameborder", "allowfullscreen"})
            if tag in ("html", "head", "body") and parent in ("#document", "html"):
                allowed = frozenset({"lang"}) if tag == "html" else frozenset()
            if allowed is None:
                findings.append(Finding(label, "element", f"<{node.get('nodeName', tag).lower()}> inside "
                                                         f"<{parent}> {_describe(attrs)}"))
            else:
                for attribute, value in attrs.items():
                    if attribute not in allowed:
                        findings.append(Finding(label, "attribute", f"<{tag} {attribute}={value[:80]!r}>"))
                    elif attribute in URL_ATTRIBUTES:
                        values = srcset_urls(value) if attribute == "srcset" else [value]
                        urls.extend((page, label, tag, attribute, v, base) for v in values)
            if tag == "iframe" and "src" not in attrs and not in_template:
                findings.append(Finding(label, "element", "<iframe> without src (an about:blank frame)"))
            for child in node.get("children", []):
                visit(child, tag, in_template, label)
            if "templateContent" in node:
                visit(node["templateContent"], "template", True, label)
            for shadow in node.get("shadowRoots", []):
                if shadow.get("shadowRootType") == "user-agent":
                    continue  # the browser's own (an <img>'s alt text, <details>' slots)
                findings.append(Finding(label, "element", f"a {shadow.get('shadowRootType')} shadow root on <{tag}>"))
                visit(shadow, "#shadow-root", True, label)
            if "contentDocument" in node:
                document_url = node["contentDocument"].get("documentURL", "")
                if not document_url.startswith("chrome-error://"):
                    findings.append(Finding(label, "element", f"a frame document {document_url!r} inside <{tag}>"))
                    visit(node["contentDocument"], "#document", True, label)
        else:
            for child in node.get("children", []):
                visit(child, parent if node_type == 11 else "#document", in_template, label)

    for child in document.get("children", []):
        visit(child, "#document", False, name)


def _describe(attrs: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v[:40]!r}" for k, v in list(attrs.items())[:4])


def batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """``items`` in lists of ``size``."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above fd 9, so that moving them to 3 and 4 never clobbers one of them."""
    import fcntl

    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


def _stderr() -> Any:
    """Chromium's own log: to a file named by SYNDICATE_CHROMIUM_LOG when debugging, else nowhere."""
    path = os.environ.get("SYNDICATE_CHROMIUM_LOG")
    return open(path, "ab") if path else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
