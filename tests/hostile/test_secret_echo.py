"""A partner that echoes our requests back (a misconfigured proxy) never gets a secret printed or stored.

A real HTTP server on 127.0.0.1 answers every request with an error whose JSON repeats the request
line, headers and body (in WordPress's and Ghost's error shapes). ``partners test``, ``sync`` and
``status --json`` run as the real CLI; neither their output nor the bytes of state.db may hold the
secret, its base64 (alone or as Basic auth), its URL-encoded or JSON-escaped forms, a piece of it
long enough to matter, the Ghost key's parts or the JWT signed with it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO

FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://s.example/</link>'
        b"<item><title>One</title><link>https://s.example/one</link><guid>https://s.example/one</guid>"
        b"<pubDate>Sun, 01 Mar 2026 09:30:00 +0000</pubDate><category>Essays</category>"
        b"<description>&lt;p&gt;Hello&lt;/p&gt;</description></item></channel></rss>")
USER = "syndication"


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _EchoServer

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        auth = self.headers.get("Authorization") or ""
        decoded = ""
        if auth.startswith("Basic "):  # what a debugging proxy shows: the credentials, in several spellings
            plain = base64.b64decode(auth[6:]).decode("utf-8", "replace")
            password = plain.partition(":")[2]
            decoded = (f"credentials: {plain}\nurl-encoded: {quote(plain)}\nform: {quote_plus(password)}\n"
                       f"base64 of the password: {base64.b64encode(password.encode()).decode()}\n")
        # The padding moves the credentials across the 300-character cut of an error message.
        dump = ("." * self.server.padding + decoded + f"{self.command} {self.path}\n"
                + "".join(f"{k}: {v}\n" for k, v in self.headers.items()) + body)
        with self.server.lock:
            self.server.authorizations.append(self.headers.get("Authorization") or "")
        answer = {"code": "rest_forbidden", "message": dump, "data": {"status": self.server.status,
                                                                      "params": {"status": "x", "echo": dump}},
                  "errors": [{"code": "VALIDATION", "message": dump, "context": dump, "details": dump}]}
        data = json.dumps(answer).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _echo  # noqa: N815

    def log_message(self, *args: Any) -> None:  # quiet
        pass


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int, padding: int) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.status = status
        self.padding = padding
        self.lock = threading.Lock()
        self.authorizations: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


def _config(folder: Path, url: str) -> Path:
    (folder / "feed.xml").write_bytes(FEED)
    path = folder / "syndicate.toml"
    path.write_text(f"""
[delivery]
max_retry_seconds = 0

[sources.s]
name = "S"
site_url = "https://s.example"
feed = "feed.xml"

[partners.wp]
name = "WP"
kind = "wordpress"
url = "{url}"
username = "{USER}"
password = {{ env = "SYN_ECHO_WP" }}

[partners.gh]
name = "GH"
kind = "ghost"
url = "{url}"
admin_api_key = {{ env = "SYN_ECHO_GHOST" }}

[[grants]]
source = "s"
partner = "wp"
evidence = "email"

[[grants]]
source = "s"
partner = "gh"
evidence = "email"
""")
    return path


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], base64.b64encode(raw).decode(),
             base64.b64encode(f"{USER}:{secret}".encode()).decode()}
    return {f for f in forms if len(f) >= 6}


def _leaks(text: str, secrets: list[str], tokens: list[str]) -> list[str]:
    found = []
    for secret in secrets:
        found += [f"form {form!r}" for form in _forms(secret) if form in text]
        window = 10  # any ten characters in a row of the secret: what a cut-then-mask would leave
        found += [f"piece {secret[i:i + window]!r}" for i in range(len(secret) - window + 1)
                  if secret[i:i + window] in text]
    found += [f"token {t[:12]}…" for t in tokens if t and t.split(" ")[-1] in text]
    return found


# Hypothesis also draws strings it finds in our own code ("Ghost reachable"): a password made of ten
# plain characters in a row could be found in any output without having leaked, so none has such a run.
_PLAIN_RUN = re.compile(r"[A-Za-z0-9 .:/()'_,-]{10}")
passwords = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=12, max_size=40).filter(
    lambda s: s == s.strip() and len(set(s)) >= 8 and not _PLAIN_RUN.search(s))
ghost_keys = st.tuples(st.binary(min_size=12, max_size=12), st.binary(min_size=32, max_size=32)).map(
    lambda p: (p[0].hex(), p[1].hex()))


# Each example runs the CLI four times against a real server: few examples, no shrinking (a failure
# prints its secret and the leaked form, which is enough to reproduce it).
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(password=passwords, key=ghost_keys, status=st.sampled_from([400, 403, 422]), split=st.none() | st.integers(1, 39))
@example(password="hunter2-correct-horse-battery", key=("ab" * 12, "cd" * 32), status=403, split=12)  # issue 14
def test_an_echoing_partner_never_gets_a_secret_printed_or_stored(password: str, key: tuple[str, str],
                                                                  status: int, split: int | None) -> None:
    key_id, key_secret = key
    # None: everything fits in one message (the encodings show); else the 300-character cut of a
    # WordPress error message falls ``split`` characters into the password ("credentials: user:" is 25).
    padding = 0 if split is None else 300 - 25 - min(split, len(password) - 1)
    server = _EchoServer(status, padding)
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = _config(Path(folder), server.url)
            env = {**os.environ, "SYN_ECHO_WP": password, "SYN_ECHO_GHOST": f"{key_id}:{key_secret}",
                   "PYTHONPATH": str(REPO), "COLUMNS": "200"}
            outputs = []
            for args in (["partners", "test"], ["-q", "sync"], ["-v", "sync"], ["status", "--json"]):
                result = subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), *args],
                                        capture_output=True, env=env, cwd=folder, timeout=120)
                outputs.append(result.stdout.decode("utf-8", "replace") + result.stderr.decode("utf-8", "replace"))
                assert "Traceback" not in outputs[-1], outputs[-1]
            stored = "".join(p.read_bytes().decode("utf-8", "replace")
                             for p in (Path(folder) / ".syndicate").glob("state.db*") if p.is_file())
            with server.lock:
                tokens = list(server.authorizations)
            assert any(t.startswith("Basic ") for t in tokens) and any(t.startswith("Ghost ") for t in tokens)
            for text in (*outputs, stored):
                leaks = _leaks(text, [password, key_id, key_secret], tokens)
                assert not leaks, (leaks, text[:3000])
            assert "***" in "".join(outputs)  # the echo did reach the output, masked
    finally:
        server.stop()
