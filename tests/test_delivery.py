"""Delivery reliability without a real CMS: fast, run on every push.

The founding example (config/, the ``example`` fixture) with its ``files`` partner, plus, where a CMS
is needed, a WordPress partner pointed at a port nothing listens on, at a name that does not resolve,
or at a small server of ours on 127.0.0.1 that refuses every call or answers with the credentials it
was sent. What is proven here:

* a partner that is down is reported once per run, its remaining deliveries are not tried (the
  requests are counted), the other partners go on, and its deliveries stay due;
* a delivery that keeps failing stays due and is retried on the next run, until
  ``[delivery] give_up_after_hours``: then it is ``failed``, with its reason, in ``status`` and in
  the exit code; once the cause is fixed, the next run delivers it;
* ``status --json`` shows, per delivery, its state, remote id and URL, attempts, last error, when it
  was pushed and under which permission;
* at ``-vv`` (and with JSON logs) canary credentials appear nowhere: not in the output, the debug log
  with its request URLs, error messages or a traceback;
* one ``sync`` per state store: the second exits 75 at once or, with ``--wait``, waits; a lock left
  by a ``kill -9``-ed holder never blocks.

The fault proxy the WordPress fault suite uses (tests/integration/fault_proxy.py) is checked here too.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner, Result

from .conftest import REPO, sqlite_only
from .fakes import LoopbackServer
from .integration.fault_proxy import FaultProxy

PART1 = "https://www.easierinc.com/radical-models-of-organising/"
PART2 = "https://www.easierinc.com/radical-models-of-public-service/"
PART4 = "https://www.easierinc.com/radical-models-of-leadership/"
PART4_IMAGE = "https://www.easierinc.com/wp-content/uploads/2019/04/leadership.jpg"
PART1_IMAGE = "https://www.easierinc.com/wp-content/uploads/2019/03/conway-hall.jpg"
EVIDENCE = "Republished with permission of the author (email, March 2019)"
PASSWORD_ENV = "SYNDICATE_TEST_DELIVERY_PASSWORD"
CANARY = "canaryPW-7f3a 9Qz1 Xk2p Lm4n"   # shaped like an Application Password
USERNAME = "syndication"
TOKEN = base64.b64encode(f"{USERNAME}:{CANARY}".encode()).decode()
SYNDICATE = Path(sys.executable).with_name("syndicate")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00"
       b"\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")


# ------------------------------------------------------------------------------------------------
# helpers


def invoke(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """``syndicate --config CONFIG ARGS`` in this process (logging restored afterwards)."""
    from syndicate.cli import cli

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        return CliRunner().invoke(cli, ["--config", str(config), *args], env={PASSWORD_ENV: CANARY, **(env or {})},
                                  catch_exceptions=False)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def run_cli(config: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """The installed command as cron runs it (a traceback would be printed by Python itself)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE")}
    full_env.update({PASSWORD_ENV: CANARY, "PYTHONPATH": str(REPO), **(env or {})})
    command = [str(SYNDICATE)] if SYNDICATE.exists() else [sys.executable, "-m", "syndicate"]
    return subprocess.run([*command, "--config", str(config), *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=config.parent)


def status(config: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``status --json`` by (partner, original URL)."""
    result = invoke(config, "status", "--json")
    assert result.exit_code == 0, result.output
    return {(d["partner"], d["entry"]): d for d in json.loads(result.stdout)}


def summary(result: Result | subprocess.CompletedProcess[str], partner: str) -> str:
    out = result.stdout
    return next((line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(partner + ":")), "")


def add_wordpress(config: Path, url: str, *, password: str | None = None, extra: str = "") -> None:
    """A WordPress partner "magazine", granted like Enlivening Edge, beside the founding example."""
    secret = password or f'{{ env = "{PASSWORD_ENV}" }}'
    config.write_text(config.read_text(encoding="utf-8") + f"""
[partners.magazine]
name = "Partner Magazine"
kind = "wordpress"
url = "{url}"
username = "{USERNAME}"
password = {secret}
status = "publish"
{extra}
[[grants]]
source = "easierinc"
partner = "magazine"
evidence = "Email from Andy Brogan"
exclude_categories = ["Members only"]
""", encoding="utf-8")


class Counting:
    """Counts (and lets through) every HTTP request syndicate's CMS clients make, by host."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        self.sleeps: list[float] = []
        real = requests.Session.request
        calls = self.calls

        def request(session: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            calls.append((method, url))
            return real(session, method, url, *args, **kwargs)

        monkeypatch.setattr(requests.Session, "request", request)
        # The CMS clients' backoff between attempts is real in production; here it is only recorded.
        from syndicate.publishers.http import CMSClient

        real_init, sleeps = CMSClient.__init__, self.sleeps

        def init(client: CMSClient, *args: Any, **kwargs: Any) -> None:
            real_init(client, *args, **kwargs)
            client._sleep = sleeps.append

        monkeypatch.setattr(CMSClient, "__init__", init)

    def to(self, host: str) -> list[tuple[str, str]]:
        return [c for c in self.calls if urlsplit(c[1]).netloc == host]


class FakeCMS(LoopbackServer):
    """A tiny server on 127.0.0.1: ``handler(request) -> (status, headers, body)``; counts what it saw."""

    def __init__(self, handler: Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append((self.command, self.path, dict(self.headers)))
                code, headers, payload = handler(self, body)
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)


def wp_json(status: int, data: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}, json.dumps(data).encode()


@pytest.fixture()
def fake_cms() -> Iterator[Callable[..., FakeCMS]]:
    servers: list[FakeCMS] = []

    def start(handler: Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]) -> FakeCMS:
        server = FakeCMS(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def error_lines(result: Result | subprocess.CompletedProcess[str], partner: str) -> list[str]:
    """How the run reported the partner's failure: at most once in its summary (stdout) and at most once
    in its log (stderr); at least once in all."""
    summary_lines = [line for line in result.stdout.splitlines() if line.startswith(f"error: {partner}: ")]
    log_lines = [line for line in result.stderr.splitlines()
                 if re.match(rf"(ERROR \S+: |{{.*\"level\": \"error\".*){re.escape(partner)}: ", line)]
    assert len(summary_lines) <= 1 and len(log_lines) <= 1, (result.stdout, result.stderr)
    return (summary_lines or log_lines)[:1]


# ------------------------------------------------------------------------------------------------
# a partner that is down


@pytest.mark.parametrize("where", ["refused", "dns"])
def test_an_unreachable_partner_is_reported_once_and_not_hammered(example: Path, where: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{closed_port()}" if where == "refused" else "http://wordpress.invalid"
    add_wordpress(example, url)
    counting = Counting(monkeypatch)
    host = urlsplit(url).netloc
    for run in (1, 2):  # every run: reported once, tried a bounded number of times, the rest left alone
        before = len(counting.to(host))
        result = invoke(example, "sync")
        assert result.exit_code == 1, result.output
        lines = error_lines(result, "magazine")
        assert len(lines) == 1, result.stderr
        assert "cannot reach" in lines[0] and ("connection refused" if where == "refused" else "host name") in lines[0]
        tried = counting.to(host)[before:]
        assert 1 <= len(tried) <= 4, tried  # the first request, retried with backoff; no other delivery tried
        assert len({u for _, u in tried}) == 1, tried
        assert summary(result, "enliveningedge").startswith("3 created" if run == 1 else "0 created, 0 updated, 3 unchanged")
        assert "1 failed" in summary(result, "magazine")
    assert sum(counting.sleeps) <= 10  # capped backoff
    ledger = status(example)
    assert {d["state"] for (p, _), d in ledger.items() if p == "magazine"} <= {"pending"}  # still due
    assert {d["state"] for (p, _), d in ledger.items() if p == "enliveningedge"} == {"ok"}


def test_a_partner_refusing_every_call_is_asked_once_per_run(example: Path, fake_cms: Callable[..., FakeCMS]) -> None:
    cms = fake_cms(lambda h, body: wp_json(401, {"code": "rest_not_logged_in", "data": {"status": 401},
                                                 "message": "You are not currently logged in."}))
    add_wordpress(example, cms.url)
    for run in (1, 2):
        result = invoke(example, "sync")
        assert result.exit_code == 1, result.output
        [line] = error_lines(result, "magazine")
        assert "refused the credentials of user 'syndication'" in line
        assert len(cms.seen) == run  # one call per run, then the partner is left alone
        assert "1 failed" in summary(result, "magazine")
        assert summary(result, "enliveningedge").startswith("3 created" if run == 1 else "0 created, 0 updated, 3 unchanged")
    assert {d["state"] for (p, _), d in status(example).items() if p == "magazine"} <= {"pending"}


# ------------------------------------------------------------------------------------------------
# failing deliveries: retried every run, given up after give_up_after_hours, delivered once fixed


def test_a_failing_delivery_is_retried_then_marked_failed_and_delivered_once_fixed(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example.write_text(example.read_text(encoding="utf-8") + "\n[delivery]\ngive_up_after_hours = 0.0003\n",
                       encoding="utf-8")  # a little over a second
    folder = example.parent / "out" / "enliveningedge"
    folder.parent.mkdir(parents=True)
    folder.write_text("a file where the partner's folder should be")

    first = invoke(example, "sync")
    assert first.exit_code == 1, first.output
    assert "3 failed" in summary(first, "enliveningedge"), first.output
    assert "Traceback" not in first.output + first.stderr
    ledger = status(example)
    assert len(ledger) == 3
    for d in ledger.values():
        assert d["state"] == "pending" and d["attempts"] == 1, d  # due again next run
        assert d["last_error"] and "enliveningedge" in d["last_error"] and str(folder) in d["last_error"], d
        assert d["remote_id"] is None and d["url"] is None and d["pushed_at"] is None, d
    decisions = [d for d in json.loads(invoke(example, "check", "--json").stdout) if d["action"] != "skip"]
    assert [d["action"] for d in decisions] == ["create"] * 3
    assert all(d["reason"].startswith("retrying: ") for d in decisions), decisions

    # The runs' clock, not the wall's: the next run is two seconds later.
    from syndicate import pipeline

    later = pipeline._system_clock() + dt.timedelta(seconds=2)
    monkeypatch.setattr(pipeline, "_system_clock", lambda: later)
    second = invoke(example, "sync")
    assert second.exit_code == 1 and "3 failed" in summary(second, "enliveningedge"), second.output
    ledger = status(example)
    for d in ledger.values():
        assert d["state"] == "failed" and d["attempts"] == 2 and str(folder) in d["last_error"], d
    text = invoke(example, "status")
    assert text.exit_code == 0
    assert len([line for line in text.stdout.splitlines() if line.startswith("failed ")]) == 3, text.stdout
    assert str(folder) in text.stdout  # the reason is shown

    third = invoke(example, "sync")  # still failing: still tried, still failed, still exit 1
    assert third.exit_code == 1 and "3 failed" in summary(third, "enliveningedge")
    assert {d["state"] for d in status(example).values()} == {"failed"}

    folder.unlink()  # the operator fixes the cause
    fixed = invoke(example, "sync")
    assert fixed.exit_code == 0, fixed.output
    assert summary(fixed, "enliveningedge").startswith("3 created, 0 updated"), fixed.output
    for d in status(example).values():
        assert (d["state"], d["attempts"], d["last_error"]) == ("ok", 0, None), d
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"radical-models-of-{s}.{ext}" for s in ("leadership", "organising", "public-service") for ext in ("html", "json"))


def test_status_json_shows_each_delivery_in_full(example: Path) -> None:
    before = time.time()
    assert invoke(example, "sync").exit_code == 0
    ledger = status(example)
    assert sorted(entry for _, entry in ledger) == sorted([PART1, PART2, PART4])
    for (partner, entry), d in ledger.items():
        slug = entry.rstrip("/").rsplit("/", 1)[1]
        assert partner == "enliveningedge"
        assert {"state", "remote_id", "url", "attempts", "last_error", "pushed_at", "permission"} <= set(d)
        assert d["state"] == "ok" and d["remote_id"] == slug and d["url"] == f"https://enliveningedge.org/{slug}/"
        assert d["attempts"] == 0 and d["last_error"] is None
        pushed = d["pushed_at"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", pushed), pushed
        import datetime as dt

        assert dt.datetime.fromisoformat(pushed.replace("Z", "+00:00")).timestamp() >= before - 1
        assert EVIDENCE in d["permission"], d


# ------------------------------------------------------------------------------------------------
# secrets


def hostile(mode: str, images: dict[str, bytes]) -> Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]:
    """A "WordPress" that throws the credentials it receives back at us, in every way it can."""

    def handle(h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        auth = h.headers.get("Authorization") or ""
        decoded = base64.b64decode(auth.split(" ", 1)[1]).decode() if " " in auth else ""
        password = decoded.split(":", 1)[-1]
        path, query = urlsplit(h.path).path, parse_qs(urlsplit(h.path).query)
        echo = f"you sent {auth!s} which is {decoded} (password {password})"
        if path in images:
            return 200, {"Content-Type": "image/png"}, images[path]
        if path.endswith("/tags") and h.command == "GET":
            return wp_json(200, [{"id": 7, "name": (query.get("search") or [""])[0]}])
        if path.endswith("/media") and h.command == "POST":
            return wp_json(500, {"code": "upload_failed", "message": echo, "data": {"status": 500}})
        if path.endswith("/posts") and h.command == "POST":
            if mode == "redirect":
                location = f"http://{USERNAME}:{password}@127.0.0.1:1/wp-json/wp/v2/posts?password={password}&t={auth}"
                return 301, {"Location": location}, b""
            if mode == "lost":
                return wp_json(502, {"code": "bad_gateway", "message": echo})
            if mode == "bad-data":  # a "post" whose tag ids are the password: something will trip over it
                return wp_json(201, {"id": 41, "status": "publish", "slug": "x", "link": f"http://x.example/{password}/",
                                     "title": {"raw": echo}, "content": {"raw": echo}, "excerpt": {"raw": echo},
                                     "tags": [password], "featured_media": password})
            return wp_json(403, {"code": "rest_forbidden_whatever", "message": echo, "data": {"status": 403}})
        if path.endswith("/posts") and h.command == "GET":
            return wp_json(500, {"code": "internal", "message": echo})
        return wp_json(404, {"code": "rest_no_route", "message": echo})

    return handle


@pytest.mark.parametrize(("mode", "source"), [("forbidden", "env"), ("redirect", "file"), ("lost", "env"),
                                              ("bad-data", "file")])
def test_canary_credentials_never_appear_even_at_debug(example: Path, fake_cms: Callable[..., FakeCMS],
                                                       mode: str, source: str) -> None:
    images = {"/leadership.png": PNG, "/conway-hall.png": PNG}
    cms = fake_cms(hostile(mode, images))
    feed = example.parent / "easierinc-feed.xml"
    feed.write_text(feed.read_text(encoding="utf-8").replace(PART4_IMAGE, cms.url + "/leadership.png")
                    .replace(PART1_IMAGE, cms.url + "/conway-hall.png"), encoding="utf-8")
    example.write_text(example.read_text(encoding="utf-8").replace("allow_private = false", "allow_private = true"),
                       encoding="utf-8")
    password = None
    if source == "file":
        secret = example.parent / "wp-password"
        secret.write_text(CANARY + "\n")
        secret.chmod(0o600)
        password = '{ file = "wp-password" }'
    add_wordpress(example, cms.url, password=password)
    example.write_text(example.read_text(encoding="utf-8") + "\n[delivery]\nmax_retry_seconds = 1\n",
                       encoding="utf-8")  # the hostile server's 5xx are not waited out for long

    outputs = []
    for args in (["-vv", "sync"], ["-vv", "--log-format", "json", "sync"], ["-vv", "partners", "test"]):
        result = run_cli(example, *args, env={} if source == "env" else {PASSWORD_ENV: ""})
        outputs.append(result.stdout + result.stderr)
        if args[-1] == "sync":
            assert result.returncode == 1, result.stderr
    everything = "\n".join(outputs)
    # the runs did speak at debug level, with request URLs, and did get the hostile answers
    assert "DEBUG" in everything and '"level": "debug"' in everything
    assert re.search(r'"(GET|POST) /wp-json/wp/v2/\w+', everything)
    assert any(m == "POST" for m, _, _ in cms.seen) or mode == "bad-data"
    assert all(h.get("Authorization", "").startswith("Basic ") for _, p, h in cms.seen if "/wp-json/" in p)
    for secret in (CANARY, CANARY.replace(" ", ""), TOKEN, f"{USERNAME}:{CANARY}"):
        assert secret not in everything, (secret, mode)
    if mode in ("forbidden", "redirect"):
        assert "***" in everything  # what the server echoed was masked, not dropped silently


# ------------------------------------------------------------------------------------------------
# one sync per state store


def hold_lock(example: Path) -> subprocess.Popen[bytes]:
    code = ("import sys, time; from syndicate.config import load_config; from syndicate.sqlite_store import SQLiteStore as Store; "
            f"s = Store(load_config({str(example)!r}).state_url); s.lock(); print('locked', flush=True); "
            "time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
    return holder


def test_a_second_sync_exits_75_at_once_or_waits_with_wait(example: Path) -> None:
    sqlite_only('its single-run lock (exit 75)')
    holder = hold_lock(example)
    waiter = None
    try:
        started = time.monotonic()
        refused = run_cli(example, "sync", timeout=30)
        assert refused.returncode == 75, refused.stderr
        assert "another syndicate sync is running on this state store" in refused.stderr
        assert f"(pid {holder.pid})" in refused.stderr and "--wait" in refused.stderr
        withdraw = run_cli(example, "withdraw", PART1, timeout=30)
        assert withdraw.returncode == 75, withdraw.stderr
        assert time.monotonic() - started < 20  # "at once": no waiting
        assert run_cli(example, "status", timeout=30).returncode == 0  # status takes no lock
        assert run_cli(example, "sync", "--dry-run", timeout=30).returncode == 0  # nor does a dry run

        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE")}
        waiter = subprocess.Popen([sys.executable, "-m", "syndicate", "--config", str(example), "sync", "--wait"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                  env={**env, "PYTHONPATH": str(REPO)})
        time.sleep(2.5)
        assert waiter.poll() is None  # it waits its turn
        assert not (example.parent / "out" / "enliveningedge").exists()
        os.kill(holder.pid, signal.SIGKILL)  # the holder dies without releasing anything
        holder.wait(10)
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        assert out.startswith("enliveningedge: 3 created"), out
    finally:
        holder.kill()
        holder.wait(10)
        if waiter is not None and waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    again = run_cli(example, "sync", timeout=60)  # the killed holder's lock is gone for good
    assert again.returncode == 0 and summary(again, "enliveningedge").startswith("0 created, 0 updated, 3 unchanged")


# ------------------------------------------------------------------------------------------------
# the fault proxy itself


def test_fault_proxy_forwards_drops_answers_resets_and_delays(fake_cms: Callable[..., FakeCMS]) -> None:
    received: list[tuple[str, str, bytes]] = []

    def upstream(h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        received.append((h.command, h.path, body))
        return wp_json(201 if h.command == "POST" else 200, {"path": h.path, "host": h.headers.get("Host")},
                       {"X-Upstream": "yes"})

    cms = fake_cms(upstream)
    before = threading.active_count()
    with FaultProxy(cms.url) as proxy:
        ok = requests.get(proxy.url + "/a?x=1", timeout=10)
        assert ok.status_code == 200 and ok.headers["X-Upstream"] == "yes"
        assert ok.json() == {"path": "/a?x=1", "host": cms.url.split("//")[1]}

        dropped = proxy.drop_after_forward("POST", r"^/posts/?(\?|$)", times=2)
        for n in (1, 2):
            with pytest.raises(requests.ConnectionError):
                requests.post(proxy.url + "/posts", json={"n": n}, timeout=10)
        assert requests.post(proxy.url + "/posts", json={"n": 3}, timeout=10).status_code == 201
        assert requests.post(proxy.url + "/posts/5", json={"n": 4}, timeout=10).status_code == 201
        assert dropped.hits == 2 and [json.loads(b)["n"] for m, p, b in received if m == "POST"] == [1, 2, 3, 4]

        busy = proxy.answer(503, "GET", "^/busy", times=2, retry_after=3)
        for _ in range(2):
            r = requests.get(proxy.url + "/busy", timeout=10)
            assert r.status_code == 503 and r.headers["Retry-After"] == "3"
        assert requests.get(proxy.url + "/busy", timeout=10).status_code == 200
        assert busy.hits == 2 and sum(p == "/busy" for _, p, _ in received) == 1  # the 503s never reached it
        proxy.answer(429, "*", "^/limited", retry_after="Wed, 21 Oct 2037 07:28:00 GMT")
        assert requests.get(proxy.url + "/limited", timeout=10).headers["Retry-After"].startswith("Wed")

        proxy.reset("POST", "^/reset", skip=1)
        assert requests.post(proxy.url + "/reset", data=b"first", timeout=10).status_code == 201  # skipped
        with pytest.raises(requests.ConnectionError):
            requests.post(proxy.url + "/reset", data=b"second", timeout=10)
        assert [b for _, p, b in received if p == "/reset"] == [b"first"]

        proxy.delay(0.3, "GET", "^/slow")
        started = time.monotonic()
        assert requests.get(proxy.url + "/slow", timeout=10).status_code == 200
        assert time.monotonic() - started >= 0.3

        assert proxy.count("POST", r"^/posts", outcome="dropped") == 2
        assert proxy.count("GET", "^/busy", outcome="status") == 2
        assert proxy.count(outcome="reset") == 1
        proxy.clear()
        assert requests.post(proxy.url + "/posts", json={"n": 5}, timeout=10).status_code == 201
        # a delayed request still in the proxy when it stops ends at once
        proxy.delay(30, "GET", "^/stuck")
        stuck = threading.Thread(target=lambda: pytest.raises(requests.ConnectionError, requests.get,
                                                              proxy.url + "/stuck", timeout=60), daemon=True)
        stuck.start()
        time.sleep(0.3)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5
    stuck.join(10)
    assert not stuck.is_alive()
    assert threading.active_count() <= before
