"""A real WordPress on 127.0.0.1 for syndicate's integration tests.

Debian's ``wordpress`` package, a private MariaDB (own datadir and socket
under ``root``, no TCP port at all) and PHP's built-in web server with a
router for pretty permalinks. Nothing listens on anything but 127.0.0.1.

Two releases are known (``RELEASES``), both Debian's package on the system's
PHP 8.2 (bookworm): ``6.1`` is bookworm's own, installed with apt-get;
``7.1`` (current) is Debian unstable's ``wordpress`` .deb and the packages it
links to, downloaded with a private apt state (the system's apt sources stay
as they are) and unpacked into the cache outside the clone
(``$SYNDICATE_TEST_CACHE/wordpress-7.1``, default ``~/.cache/syndicate-tests``),
once, under a lock. The test session runs the ones named by
``$SYNDICATE_TEST_WORDPRESS`` (comma-separated, default ``6.1,7.1``).

Usage from Python::

    import wordpress_server as wp
    wp.ensure_installed("7.1")
    site = wp.start(Path("/tmp/wp"), version="7.1")  # reuses an installed datadir under root
    ...                                   # site.url, site.username, site.app_password, ...
    site.reset()                          # empty posts/media/terms between tests
    wp.stop(site)

From the shell::

    python tests/integration/wordpress_server.py start [--root DIR] [--port N] [--version 7.1]
    python tests/integration/wordpress_server.py stop --root DIR

Layout under ``root``: ``db/`` (datadir ``db/data``, socket, logs), ``wp/``
(private copy of /usr/share/wordpress), ``router.php``, ``setup.php``,
``credentials.json``, ``php.pid``, ``mariadbd.pid``, ``php.log``,
``php-error.log``, ``site.json``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class WordPressRelease:
    """One WordPress release line the suite runs against, and where its files come from."""

    series: str  # what $SYNDICATE_TEST_WORDPRESS names: "7.1"
    #: None: the system's own Debian package (apt-get install); else the Debian suite whose
    #: .debs are downloaded and unpacked into the cache
    debian_suite: str | None
    #: the default theme of the release (wp_install activates it; the public pages need it)
    theme_package: str


RELEASES: dict[str, WordPressRelease] = {
    "6.1": WordPressRelease("6.1", None, "wordpress-theme-twentytwentythree"),
    "7.1": WordPressRelease("7.1", "sid", "wordpress-theme-twentytwentyfive"),
}
DEFAULT_SERIES = "6.1"

# What every release runs on: bookworm's PHP, MariaDB; dpkg-deb/apt-get come with the system.
HOST_PACKAGES = ["php-cli", "php-mysql", "php-gd", "mariadb-server"]
# Debian packages the harness needs for the system's WordPress. The theme is only a
# "Recommends" of wordpress; we install it explicitly because we skip recommends.
APT_PACKAGES = ["wordpress", "wordpress-theme-twentytwentythree", *HOST_PACKAGES]
WORDPRESS_SRC = Path("/usr/share/wordpress")
# The unpacked WordPress links its bundled libraries to these packages (relative symlinks
# into /usr/share/php and /usr/share/javascript), so they are unpacked beside it.
_LINKED_DEBS = ["php-getid3", "libphp-phpmailer", "libjs-cropper", "libjs-jquery-ui", "libjs-lodash",
                "libjs-underscore"]
_DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
_MARKER = ".syndicate-install.json"


def release(version: str) -> WordPressRelease:
    """The release a series ("7.1") or an exact version ("7.1.4") belongs to."""
    for r in RELEASES.values():
        if version == r.series or version.startswith(r.series + "."):
            return r
    raise ValueError("unknown WordPress version %r: known are %s" % (version, ", ".join(RELEASES)))


def versions_under_test() -> list[str]:
    """The WordPress series the test session runs against: $SYNDICATE_TEST_WORDPRESS, default 6.1,7.1."""
    raw = os.environ.get("SYNDICATE_TEST_WORDPRESS", ",".join(RELEASES))
    wanted = [v.strip() for v in raw.split(",") if v.strip()]
    return [release(v).series for v in wanted]


def cache_base() -> Path:
    """Where installs are kept between runs (outside the clone): $SYNDICATE_TEST_CACHE."""
    env = os.environ.get("SYNDICATE_TEST_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "syndicate-tests"


def start_timeout() -> float:
    """Seconds MariaDB and PHP may take to answer: generous, a loaded 2-core machine is slow."""
    return float(os.environ.get("SYNDICATE_WP_START_TIMEOUT", "240"))

ADMIN_USER = "admin"
AUTHOR_USER = "author"
DB_NAME = "wordpress"
DB_USER = "wp"
DB_PASSWORD = "wp-local-test"
UPLOAD_LIMIT = "64M"

# Same InnoDB options for mariadb-install-db and mariadbd. Durability is not
# wanted here: this database is thrown away with the test run.
_MARIADB_TUNING = [
    "--innodb-buffer-pool-size=128M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--skip-name-resolve",
    "--performance-schema=OFF",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
]


# --------------------------------------------------------------------------
# site handle


@dataclass
class WordPressSite:
    url: str  # "http://127.0.0.1:<port>"
    username: str  # an Administrator
    app_password: str  # Application Password for that admin
    author_username: str  # a user with the Author role (no unfiltered_html)
    author_app_password: str
    root: Path
    # Extra, all with defaults (not needed by callers).
    version: str = ""  # WordPress's own, e.g. "7.1.4"
    db_socket: Optional[Path] = None
    php_pid: Optional[int] = None
    mariadbd_pid: Optional[int] = None
    _procs: list = field(default_factory=list, repr=False, compare=False)

    @property
    def series(self) -> str:
        """The release line ("7.1") the tests name the site by."""
        return release(self.version).series

    @property
    def docroot(self) -> Path:
        return Path(self.root) / "wp"

    @property
    def uploads_dir(self) -> Path:
        return self.docroot / "wp-content" / "uploads"

    def sql(self, query: str) -> str:
        """Run SQL (one or more ';'-separated statements) against the site's
        database as MariaDB root over the private socket. Returns stdout in
        batch mode: tab separated, no column-name header line (``-B -N``).
        Raises RuntimeError on error."""
        return _mariadb_client(Path(self.db_socket), query, database=DB_NAME)

    @property
    def canonical_plugin_file(self) -> Path:
        return self.docroot / "wp-content" / "mu-plugins" / "syndicate-test-canonical.php"

    def print_canonical(self, enabled: bool = True) -> None:
        """Install (or remove) a must-use plugin that prints each post's canonical from the
        ``syndicate_canonical`` meta key and removes core's own for those posts, as Yoast does with its
        key. Off by default and after ``reset()``; PHP reads mu-plugins on every request, so no restart."""
        if enabled:
            self.canonical_plugin_file.write_text(_CANONICAL_PLUGIN_PHP)
        else:
            self.canonical_plugin_file.unlink(missing_ok=True)

    def reset(self) -> None:
        """Delete every post of every type and status (trash, revisions,
        auto-drafts, pages and attachments included) with its meta and
        comments, every uploaded file, every term except the default
        category, the canonical plugin. Users and application passwords are kept."""
        self.print_canonical(False)
        self.sql(_RESET_SQL)
        uploads = self.uploads_dir
        if uploads.is_dir():
            for child in uploads.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        else:
            uploads.mkdir(parents=True, exist_ok=True)


_RESET_SQL = r"""
DELETE FROM wp_posts;
DELETE FROM wp_postmeta;
DELETE FROM wp_comments;
DELETE FROM wp_commentmeta;
DELETE FROM wp_term_relationships;
SET @dc := (SELECT CAST(option_value AS UNSIGNED) FROM wp_options WHERE option_name = 'default_category');
DELETE FROM wp_term_taxonomy WHERE NOT (taxonomy = 'category' AND term_id = IFNULL(@dc, 1));
DELETE FROM wp_terms WHERE term_id NOT IN (SELECT term_id FROM wp_term_taxonomy);
DELETE FROM wp_termmeta WHERE term_id NOT IN (SELECT term_id FROM wp_terms);
UPDATE wp_term_taxonomy SET count = 0, parent = 0;
UPDATE wp_options SET option_value = 'a:0:{}' WHERE option_name = 'sticky_posts';
DELETE FROM wp_options WHERE option_name IN ('category_children', 'post_tag_children')
   OR option_name LIKE '\_transient\_%' OR option_name LIKE '\_site\_transient\_%';
"""


# --------------------------------------------------------------------------
# packages


def _missing_packages(packages: list[str]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        raise RuntimeError("dpkg-query not found: this harness needs a Debian/Ubuntu machine")
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
    ).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    missing = [p for p in packages if p not in installed]
    # The binaries we actually call, in case a package is half-configured.
    for binary in ("php", "mariadbd", "mariadb", "mariadb-install-db"):
        if shutil.which(binary) is None and not missing:
            missing = list(packages)
    if "wordpress" in packages and not (WORDPRESS_SRC / "wp-settings.php").is_file() \
            and "wordpress" not in missing:
        missing.append("wordpress")
    return missing


def ensure_installed(version: str = DEFAULT_SERIES) -> Path:
    """Install what WordPress ``version`` needs, once; return its WordPress tree (read-only).

    The system's packages are installed with apt-get when missing (idempotent and quick when
    they are present: ~15 ms); a release from another Debian suite is downloaded and unpacked
    into the cache (once, under a lock). Raises RuntimeError with a clear message if it can't."""
    rel = release(version)
    _ensure_system_packages(APT_PACKAGES if rel.debian_suite is None else HOST_PACKAGES)
    tree = WORDPRESS_SRC if rel.debian_suite is None else _ensure_unpacked(rel)
    found = _tree_version(tree)
    if release(found) != rel:
        raise RuntimeError("WordPress %s wanted, but %s holds WordPress %s%s" % (
            rel.series, tree, found, "" if rel.debian_suite is None else
            " (Debian %s moved on: add its release to RELEASES)" % rel.debian_suite))
    return tree


def _tree_version(tree: Path) -> str:
    """``$wp_version`` of a WordPress tree, read from wp-includes/version.php."""
    text = (tree / "wp-includes" / "version.php").read_text(errors="replace")
    m = re.search(r"\$wp_version\s*=\s*'([^']+)'", text)
    if not m:
        raise RuntimeError("no $wp_version in %s/wp-includes/version.php" % tree)
    return m.group(1)


def _ensure_system_packages(packages: list[str]) -> None:
    missing = _missing_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            "WordPress harness needs Debian packages %s; run as root or "
            "`apt-get install %s`" % (" ".join(missing), " ".join(packages))
        )
    if shutil.which("apt-get") is None:
        raise RuntimeError("apt-get not found; cannot install %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Never let the packages start system services (apache2 would bind :80 on
    # all interfaces, mariadb the system datadir): deny them via policy-rc.d
    # for the duration of the install if the image doesn't already.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        created_policy = True
    try:
        apt_opts = ["-o", "DPkg::Lock::Timeout=300", "-q"]
        upd = subprocess.run(["apt-get", *apt_opts, "update"], env=env, capture_output=True, text=True)
        if upd.returncode != 0:
            raise RuntimeError("apt-get update failed:\n" + upd.stdout[-2000:] + upd.stderr[-2000:])
        inst = subprocess.run(
            ["apt-get", *apt_opts, "install", "-y", "--no-install-recommends",
             "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
             *packages],
            env=env,
            capture_output=True,
            text=True,
        )
        if inst.returncode != 0:
            raise RuntimeError(
                "apt-get install %s failed:\n%s%s"
                % (" ".join(packages), inst.stdout[-3000:], inst.stderr[-3000:])
            )
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)
    still = _missing_packages(packages)
    if still:
        raise RuntimeError("packages still missing after apt-get install: " + " ".join(still))


def _ensure_unpacked(rel: WordPressRelease) -> Path:
    """Debian ``rel.debian_suite``'s wordpress (+ theme + linked libraries) unpacked into the cache.

    apt-get runs with a private state (sources, lists, cache) under the cache, so the
    system's apt configuration and package database are untouched; the archive's
    signatures are checked against the system's Debian keyring. Built in a temporary
    directory and renamed into place when complete; a lock makes concurrent runs wait for
    the first one's download instead of racing it."""
    base = cache_base()
    home = base / ("wordpress-" + rel.series)
    tree = home / "prefix" / "usr" / "share" / "wordpress"
    if (home / _MARKER).is_file() and (tree / "wp-settings.php").is_file():
        return tree
    for binary in ("apt-get", "dpkg-deb"):
        if shutil.which(binary) is None:
            raise RuntimeError("%s not found: WordPress %s is unpacked from Debian's .deb" % (binary, rel.series))
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ("wordpress-%s.lock" % rel.series), "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if (home / _MARKER).is_file() and (tree / "wp-settings.php").is_file():
            return tree  # another run finished it meanwhile
        for stale in base.glob(".wordpress-%s.building-*" % rel.series):
            shutil.rmtree(stale, ignore_errors=True)
        build = Path(tempfile.mkdtemp(prefix=".wordpress-%s.building-" % rel.series, dir=base))
        t0 = time.monotonic()
        try:
            apt = build / "apt"
            for d in ("lists/partial", "cache/archives/partial", "debs"):
                (apt / d).mkdir(parents=True)
            (apt / "sources.list").write_text(
                "deb [signed-by=%s] http://deb.debian.org/debian %s main\n" % (_DEBIAN_KEYRING, rel.debian_suite))
            opts = ["-q", "-o", "Dir::Etc::sourcelist=%s" % (apt / "sources.list"),
                    "-o", "Dir::Etc::sourceparts=/dev/null", "-o", "Dir::State::Lists=%s" % (apt / "lists"),
                    "-o", "Dir::Cache=%s" % (apt / "cache"), "-o", "Debug::NoLocking=1"]
            for what, cmd, cwd in (
                ("apt-get update", ["apt-get", *opts, "update"], build),
                ("apt-get download", ["apt-get", *opts, "download", "wordpress", rel.theme_package, *_LINKED_DEBS],
                 apt / "debs"),
            ):
                res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
                if res.returncode != 0:
                    raise RuntimeError("WordPress %s: %s (Debian %s) failed:\n%s" % (
                        rel.series, what, rel.debian_suite, (res.stdout + res.stderr)[-3000:]))
            prefix = build / "prefix"
            prefix.mkdir()
            debs = sorted((apt / "debs").glob("*.deb"))
            for deb in debs:
                subprocess.run(["dpkg-deb", "-x", str(deb), str(prefix)], check=True)
            staged = build / "prefix" / "usr" / "share" / "wordpress"
            if not (staged / "wp-settings.php").is_file():
                raise RuntimeError("WordPress %s: no wp-settings.php in the unpacked wordpress" % rel.series)
            (build / _MARKER).write_text(json.dumps({
                "series": rel.series, "wp_version": _tree_version(staged), "suite": rel.debian_suite,
                "debs": [d.name for d in debs], "seconds": round(time.monotonic() - t0, 1),
                "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }, indent=2) + "\n")
            shutil.rmtree(apt / "lists", ignore_errors=True)  # 11 MB of package lists: not needed again
            if home.exists():
                trash = Path(tempfile.mkdtemp(prefix=".wordpress-%s.building-old-" % rel.series, dir=base))
                os.rename(home, trash / "old")
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(build, home)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return tree


# --------------------------------------------------------------------------
# helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no %s)" % path


def _mariadb_client(sock: Path, query: str, database: Optional[str] = None) -> str:
    cmd = ["mariadb", "--no-defaults", "-S", str(sock), "-u", "root", "-B", "-N"]
    if database:
        cmd.append(database)
    res = subprocess.run(cmd + ["-e", query], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("SQL failed (%s): %s" % (res.returncode, res.stderr.strip()))
    return res.stdout


def _socket_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(path))
        return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _pid_cmdline(pid: int) -> str:
    try:
        return Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _socket_path_for(root: Path) -> Path:
    """Unix socket paths are limited to ~107 bytes; fall back to a short dir."""
    sock = root / "db" / "mysqld.sock"
    if len(str(sock)) <= 100:
        return sock
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / ("wpdb-" + digest)
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "mysqld.sock"


def _group_alive(pgid: int) -> bool:
    """True if any non-zombie process is in process group pgid."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields: state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _kill_and_wait(pid: int, proc: Optional[subprocess.Popen], timeout: float, group: bool) -> None:
    """Stop pid and wait until it is gone; SIGKILL after timeout.

    group=True is for `php -S` with workers (a session leader): the whole
    process group gets SIGINT, on which the master reaps its workers before
    exiting (SIGTERM to the master alone would orphan them). Otherwise pid
    gets SIGTERM (mariadbd shuts down cleanly on it)."""

    def alive() -> bool:
        if group and _group_alive(pid):
            return True
        if proc is not None:
            return proc.poll() is None
        return _pid_alive(pid)

    def send(sig: int) -> None:
        try:
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_gone(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    if not alive():
        return
    send(signal.SIGINT if group else signal.SIGTERM)
    if not wait_gone(timeout if not group else min(timeout, 5)):
        send(signal.SIGTERM)
        wait_gone(timeout)
    if alive():
        send(signal.SIGKILL)
        wait_gone(10)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


# --------------------------------------------------------------------------
# files we write into the site

_ROUTER_PHP = r"""<?php
// Router for `php -S`: real files are served as they are, everything else
// goes through WordPress's index.php (pretty permalinks, /wp-json/...).
$root = getenv('WP_DOCROOT');
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH));
$file = $root . $path;
if ($path !== '/' && is_file($file)) { return false; }
if ($path !== '/' && is_dir($file) && is_file(rtrim($file, '/') . '/index.php')) {
    $index = rtrim($file, '/') . '/index.php';
    chdir(dirname($index));
    $_SERVER['SCRIPT_NAME'] = rtrim($path, '/') . '/index.php';
    $_SERVER['SCRIPT_FILENAME'] = $index;
    $_SERVER['PHP_SELF'] = $_SERVER['SCRIPT_NAME'];
    require $index;
    return true;
}
chdir($root);
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
require $root . '/index.php';
return true;
"""

# Installs WordPress if needed, ensures the two users, checks/creates their
# application passwords, prints JSON {"admin": pw, "author": pw}.
_SETUP_PHP = r"""<?php
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = '127.0.0.1';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
require getenv('WP_DOCROOT') . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/user.php';
$in = json_decode(getenv('WP_SETUP_JSON'), true);

if (!is_blog_installed()) {
    wp_install('Partner Mag (test)', $in['admin'], $in['admin'] . '@example.test', false, '', $in['admin_login_password']);
    // Start empty: drop the sample post, page, privacy-policy draft and comment.
    foreach (get_posts(array('post_type' => 'any', 'post_status' => 'any', 'numberposts' => -1, 'fields' => 'ids')) as $id) {
        wp_delete_post($id, true);
    }
    update_option('wp_page_for_privacy_policy', 0);
}
if (get_option('permalink_structure') !== '/%postname%/') {
    update_option('permalink_structure', '/%postname%/');
    update_option('rewrite_rules', '');
}
update_option('blogdescription', 'Local WordPress for syndicate tests');
update_option('timezone_string', 'UTC');
update_option('gmt_offset', 0);

function syn_ensure_user($login, $role, $pass) {
    $u = get_user_by('login', $login);
    if (!$u) {
        $id = wp_insert_user(array('user_login' => $login, 'user_pass' => $pass,
            'user_email' => $login . '@example.test', 'role' => $role, 'display_name' => ucfirst($login)));
        if (is_wp_error($id)) { fwrite(STDERR, $id->get_error_message() . "\n"); exit(2); }
        $u = get_user_by('id', $id);
    } elseif (!in_array($role, (array) $u->roles, true)) {
        $u->set_role($role);
    }
    return $u;
}
function syn_app_password($u, $plain) {
    if ($plain) {
        $bare = preg_replace('/[^a-z\d]/i', '', $plain);
        foreach (WP_Application_Passwords::get_user_application_passwords($u->ID) as $item) {
            // Since 6.8 application passwords are hashed with wp_fast_hash, not phpass.
            $ok = method_exists('WP_Application_Passwords', 'check_password')
                ? WP_Application_Passwords::check_password($bare, $item['password'])
                : wp_check_password($bare, $item['password'], $u->ID);
            if ($ok) {
                return $plain;
            }
        }
    }
    $r = WP_Application_Passwords::create_new_application_password($u->ID, array('name' => 'syndicate-tests'));
    if (is_wp_error($r)) { fwrite(STDERR, $r->get_error_message() . "\n"); exit(3); }
    return WP_Application_Passwords::chunk_password($r[0]);
}
$admin = syn_ensure_user($in['admin'], 'administrator', $in['admin_login_password']);
$author = syn_ensure_user($in['author'], 'author', $in['author_login_password']);
echo json_encode(array(
    'admin' => syn_app_password($admin, $in['admin_app_password']),
    'author' => syn_app_password($author, $in['author_app_password']),
    'wp_version' => get_bloginfo('version'),
)), "\n";
"""

# Must-use plugin: registers the canonical-URL meta key, nothing else.
_MU_PLUGIN_PHP = r"""<?php
/*
 * Plugin Name: syndicate test meta
 * Description: Registers post meta syndicate_canonical for REST (test harness).
 */
add_action('init', function () {
    register_post_meta('post', 'syndicate_canonical', array(
        'type'          => 'string',
        'single'        => true,
        'show_in_rest'  => true,
        'auth_callback' => function () { return current_user_can('edit_posts'); },
    ));
});
"""


# What an SEO plugin does with its canonical key (Yoast: _yoast_wpseo_canonical): for a post that has
# one, core's rel_canonical (which points at the post itself) is removed and the key's URL printed.
_CANONICAL_PLUGIN_PHP = r"""<?php
/*
 * Plugin Name: syndicate test canonical
 * Description: Prints the canonical URL from post meta syndicate_canonical (test harness).
 */
add_action('wp', function () {
    if (!is_singular()) { return; }
    $url = get_post_meta(get_queried_object_id(), 'syndicate_canonical', true);
    if (!is_string($url) || $url === '') { return; }
    remove_action('wp_head', 'rel_canonical');
    add_action('wp_head', function () use ($url) {
        echo '<link rel="canonical" href="' . esc_url($url) . '" />' . "\n";
    }, 1);
});
"""


def _wp_config(port: int, sock: Path) -> str:
    url = "http://127.0.0.1:%d" % port
    salts = "\n".join(
        "define('%s', 'syndicate-test-%s');" % (k, k.lower())
        for k in ("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
                  "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT")
    )
    return f"""<?php
// Written by tests/integration/wordpress_server.py on every start.
define('DB_NAME', '{DB_NAME}');
define('DB_USER', '{DB_USER}');
define('DB_PASSWORD', '{DB_PASSWORD}');
define('DB_HOST', 'localhost:{sock}');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
{salts}
$table_prefix = 'wp_';
define('WP_ENVIRONMENT_TYPE', 'local');   // Application Passwords over plain http
define('WP_HOME', '{url}');
define('WP_SITEURL', '{url}');
define('WP_CONTENT_DIR', __DIR__ . '/wp-content');
define('WP_CONTENT_URL', '{url}/wp-content');
define('WP_PLUGIN_DIR', __DIR__ . '/wp-content/plugins');
define('WPMU_PLUGIN_DIR', __DIR__ . '/wp-content/mu-plugins');
define('UPLOADS', 'wp-content/uploads');
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('DISALLOW_FILE_MODS', true);
define('FS_METHOD', 'direct');
define('WP_DEBUG', false);
if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');
require_once ABSPATH . 'wp-settings.php';
"""


def _copy_wordpress(src: Path, dest: Path) -> None:
    """Private, writable copy of Debian's WordPress tree ``src`` with every symlink dereferenced.

    Debian links WordPress's bundled libraries (getid3, PHPMailer, JS) to other packages'
    files, relatively in an unpacked .deb (``../../../php/getid3``): a copy that kept the
    links would point at nothing. wp-content is made a real directory with real copies of
    the themes (Debian points it at /var/lib) and empty plugins/uploads; Debian's
    wp-config.php (it reads /etc/wordpress) and .htaccess are left out, ours replace them."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)

    def skip(folder: str, names: list[str]) -> set[str]:
        # Links to nothing (.htaccess -> /etc/wordpress/htaccess on a machine without Debian's
        # wordpress) are left out here: copytree's own ignore_dangling_symlinks resolves a
        # relative link against the working directory, not the link's folder, and so would
        # drop every library link of the unpacked tree.
        dangling = {n for n in names if os.path.islink(os.path.join(folder, n))
                    and not os.path.exists(os.path.join(folder, n))}
        if Path(folder) == src:
            dangling |= {n for n in names if n in (".htaccess", "wp-config.php", "wp-content")}
        return dangling

    shutil.copytree(src, tmp, symlinks=False, ignore=skip)
    content = tmp / "wp-content"
    content.mkdir()
    themes_src = (src / "wp-content" / "themes").resolve()
    if themes_src.is_dir():
        shutil.copytree(themes_src, content / "themes", symlinks=False, ignore=skip)
    for sub in ("themes", "plugins", "mu-plugins", "uploads", "upgrade"):
        (content / sub).mkdir(exist_ok=True)
    tmp.rename(dest)


# --------------------------------------------------------------------------
# start / stop


def _php_supports_workers() -> bool:
    if os.name != "posix":
        return False
    out = subprocess.run(["php", "-r", "echo PHP_VERSION_ID;"], capture_output=True, text=True).stdout
    try:
        return int(out.strip()) >= 70400
    except ValueError:
        return False


def _stop_stale(root: Path) -> None:
    """Stop servers a previous run left running for this same root."""
    for name, group in (("php.pid", True), ("mariadbd.pid", False)):
        pid = _read_pid(root / name)
        if pid and _pid_alive(pid) and str(root) in _pid_cmdline(pid):
            _kill_and_wait(pid, None, timeout=30, group=group)
        (root / name).unlink(missing_ok=True)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("php -S exited with %s:\n%s" % (proc.returncode, _tail(log)))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    json.loads(r.read())
                    return
        except (urllib.error.URLError, OSError, ValueError) as e:  # not up yet
            last = repr(e)
        time.sleep(0.1)
    raise RuntimeError("WordPress did not answer %s within %.0fs (%s)\n%s" % (url, timeout, last, _tail(log)))


def start(root: Path | None = None, port: int | None = None, version: str = DEFAULT_SERIES) -> WordPressSite:
    """Start WordPress ``version`` (+ its MariaDB) under root and return the site.

    root defaults to a new temp dir. An installed datadir and WordPress copy
    under root are reused (fast path) when they are of the same version;
    otherwise they are created first.
    port: HTTP port on 127.0.0.1 (a free one if None; another is tried when a
    concurrent run takes it first)."""
    src = ensure_installed(version)
    root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="wp-syndicate-"))
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    _stop_stale(root)
    wanted_port = port
    timeout = start_timeout()
    dbdir = root / "db"
    datadir = dbdir / "data"
    sock = _socket_path_for(root)
    dbdir.mkdir(exist_ok=True)
    procs: list = []

    def fail(msg: str) -> RuntimeError:
        for p in reversed(procs):
            _kill_and_wait(p.pid, p, timeout=30, group=(p.args[0] == "php"))
        return RuntimeError(msg)

    try:
        # 1) MariaDB
        if not (datadir / "mysql").is_dir():
            shutil.rmtree(datadir, ignore_errors=True)
            res = subprocess.run(
                ["mariadb-install-db", "--no-defaults", "--datadir=%s" % datadir, "--user=root",
                 "--auth-root-authentication-method=socket", "--skip-test-db",
                 "--skip-name-resolve", *_MARIADB_TUNING[:4]],
                capture_output=True, text=True,
            )
            (dbdir / "install.log").write_text(res.stdout + res.stderr)
            if res.returncode != 0:
                shutil.rmtree(datadir, ignore_errors=True)
                raise RuntimeError("mariadb-install-db failed:\n" + (res.stdout + res.stderr)[-3000:])
        sock.unlink(missing_ok=True)
        db_log = dbdir / "error.log"
        # The socket only, no TCP port: nothing to collide with the other runs on this machine.
        mariadbd = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--datadir=%s" % datadir, "--socket=%s" % sock,
             "--pid-file=%s" % (dbdir / "mysqld.pid"), "--skip-networking",
             "--user=root", "--log-error=%s" % db_log, *_MARIADB_TUNING],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(mariadbd)
        (root / "mariadbd.pid").write_text("%d\n" % mariadbd.pid)
        deadline = time.monotonic() + timeout
        while not _socket_answers(sock):
            if mariadbd.poll() is not None:
                raise fail("mariadbd exited with %s:\n%s" % (mariadbd.returncode, _tail(db_log)))
            if time.monotonic() > deadline:
                raise fail("mariadbd did not open %s within %.0fs:\n%s" % (sock, timeout, _tail(db_log)))
            time.sleep(0.05)
        try:
            _mariadb_client(sock, (
                f"CREATE DATABASE IF NOT EXISTS {DB_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
                f"CREATE USER IF NOT EXISTS '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASSWORD}';"
                f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'localhost';"
            ))
        except RuntimeError as e:
            raise fail(str(e))

        # 2) WordPress files
        docroot = root / "wp"
        if not (docroot / "wp-settings.php").is_file() or _tree_version(docroot) != _tree_version(src):
            shutil.rmtree(docroot, ignore_errors=True)
            _copy_wordpress(src, docroot)
        port = wanted_port or _free_port()
        (docroot / "wp-config.php").write_text(_wp_config(port, sock))
        mu = docroot / "wp-content" / "mu-plugins"
        mu.mkdir(parents=True, exist_ok=True)
        (mu / "syndicate-test-meta.php").write_text(_MU_PLUGIN_PHP)
        (docroot / "wp-content" / "uploads").mkdir(parents=True, exist_ok=True)
        (root / "router.php").write_text(_ROUTER_PHP)
        (root / "setup.php").write_text(_SETUP_PHP)

        # 3) install / users / application passwords
        creds_file = root / "credentials.json"
        try:
            creds = json.loads(creds_file.read_text())
        except (OSError, ValueError):
            creds = {}
        setup_in = {
            "admin": ADMIN_USER,
            "author": AUTHOR_USER,
            "admin_login_password": "admin-login-pw",
            "author_login_password": "author-login-pw",
            "admin_app_password": creds.get("app_password", ""),
            "author_app_password": creds.get("author_app_password", ""),
        }
        php_ini = ["-d", "display_errors=stderr", "-d", "memory_limit=512M"]
        res = subprocess.run(
            ["php", *php_ini, str(root / "setup.php")],
            env=dict(os.environ, WP_DOCROOT=str(docroot), WP_SETUP_JSON=json.dumps(setup_in)),
            capture_output=True, text=True, cwd=str(docroot),
        )
        (root / "setup.log").write_text(res.stdout + res.stderr)
        out_lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
        if res.returncode != 0 or not out_lines:
            raise fail("WordPress setup failed (exit %s):\n%s" % (res.returncode, (res.stdout + res.stderr)[-3000:]))
        setup_out = json.loads(out_lines[-1])
        creds = {
            "username": ADMIN_USER,
            "app_password": setup_out["admin"],
            "author_username": AUTHOR_USER,
            "author_app_password": setup_out["author"],
            "wp_version": setup_out.get("wp_version"),
        }
        creds_file.write_text(json.dumps(creds, indent=2) + "\n")

        # 4) PHP built-in server. The free port was free when chosen: another run on this
        # machine may bind it first, then php exits at once and another port is tried.
        php_log = root / "php.log"
        env = dict(os.environ, WP_DOCROOT=str(docroot))
        if _php_supports_workers():
            env["PHP_CLI_SERVER_WORKERS"] = "4"
        attempts = 1 if wanted_port else 3
        for attempt in range(attempts):
            if attempt:
                port = _free_port()
                (docroot / "wp-config.php").write_text(_wp_config(port, sock))
            php_cmd = [
                "php",
                "-d", "upload_max_filesize=%s" % UPLOAD_LIMIT,
                "-d", "post_max_size=%s" % UPLOAD_LIMIT,
                "-d", "memory_limit=512M",
                "-d", "max_execution_time=300",
                "-d", "display_errors=0",
                "-d", "log_errors=1",
                "-d", "error_log=%s" % (root / "php-error.log"),
                "-S", "127.0.0.1:%d" % port,
                "-t", str(docroot),
                str(root / "router.php"),
            ]
            with open(php_log, "wb") as logf:
                php = subprocess.Popen(php_cmd, env=env, cwd=str(docroot), stdin=subprocess.DEVNULL,
                                       stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(php)
            (root / "php.pid").write_text("%d\n" % php.pid)
            url = "http://127.0.0.1:%d" % port
            try:
                _wait_http(url + "/wp-json/", php, timeout, php_log)
                break
            except RuntimeError as e:
                lost_port = php.poll() is not None and "Failed to listen" in _tail(php_log)
                if lost_port and attempt + 1 < attempts:
                    procs.remove(php)
                    continue
                raise fail(str(e))

    except BaseException:
        # Anything unexpected (OSError, KeyboardInterrupt...): leave nothing running.
        for p in reversed(procs):
            _kill_and_wait(p.pid, p, timeout=30, group=(p.args[0] == "php"))
        raise

    site = WordPressSite(
        url=url,
        username=creds["username"],
        app_password=creds["app_password"],
        author_username=creds["author_username"],
        author_app_password=creds["author_app_password"],
        root=root,
        version=creds["wp_version"],
        db_socket=sock,
        php_pid=php.pid,
        mariadbd_pid=mariadbd.pid,
        _procs=procs,
    )
    (root / "site.json").write_text(json.dumps(_site_info(site), indent=2) + "\n")
    return site


def _site_info(site: WordPressSite) -> dict:
    return {
        "url": site.url,
        "username": site.username,
        "app_password": site.app_password,
        "author_username": site.author_username,
        "author_app_password": site.author_app_password,
        "root": str(site.root),
        "version": site.version,
        "db_socket": str(site.db_socket),
        "php_pid": site.php_pid,
        "mariadbd_pid": site.mariadbd_pid,
    }


def stop(site: WordPressSite) -> None:
    """Stop php (and its workers) and mariadbd; wait until they have exited.
    mariadbd gets SIGTERM for a clean shutdown so the datadir can be reused."""
    procs = {p.pid: p for p in site._procs}
    root = Path(site.root)
    php_pid = site.php_pid or _read_pid(root / "php.pid")
    db_pid = site.mariadbd_pid or _read_pid(root / "mariadbd.pid")
    if php_pid:
        if php_pid in procs or str(root) in _pid_cmdline(php_pid):
            _kill_and_wait(php_pid, procs.get(php_pid), timeout=15, group=True)
        (root / "php.pid").unlink(missing_ok=True)
    if db_pid:
        if db_pid in procs or str(root) in _pid_cmdline(db_pid):
            _kill_and_wait(db_pid, procs.get(db_pid), timeout=60, group=False)
        (root / "mariadbd.pid").unlink(missing_ok=True)
    site._procs.clear()


def _stop_root(root: Path) -> None:
    root = Path(root).resolve()
    site = WordPressSite(url="", username="", app_password="", author_username="",
                         author_app_password="", root=root)
    stop(site)


# --------------------------------------------------------------------------
# CLI


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description="Local WordPress for syndicate integration tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("start", help="start (installing on first use); leaves servers running")
    sp.add_argument("--root", type=Path, default=None)
    sp.add_argument("--port", type=int, default=None)
    sp.add_argument("--version", default=DEFAULT_SERIES, choices=sorted(RELEASES))
    sp.add_argument("--print-canonical", action="store_true",
                    help="install the must-use plugin that prints syndicate_canonical (as Yoast does)")
    st = sub.add_parser("stop", help="stop the servers started for --root")
    st.add_argument("--root", type=Path, required=True)
    ins = sub.add_parser("install", help="install/fetch what the versions need (into the cache), start nothing")
    ins.add_argument("--version", action="append", choices=sorted(RELEASES),
                     help="repeatable; default: the versions under test ($SYNDICATE_TEST_WORDPRESS)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "install":
            for version in args.version or versions_under_test():
                t0 = time.monotonic()
                tree = ensure_installed(version)
                print("WordPress %s: %s (%.1fs)" % (_tree_version(tree), tree, time.monotonic() - t0), flush=True)
        elif args.cmd == "start":
            site = start(args.root, args.port, args.version)
            site.print_canonical(args.print_canonical)
            info = _site_info(site)
            print(json.dumps(info), flush=True)
            # Let the servers outlive us.
            site._procs.clear()
        else:
            _stop_root(args.root)
    except RuntimeError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
