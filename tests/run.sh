#!/usr/bin/env bash
# The whole test suite, from a fresh machine: a virtual environment with the package and its test
# dependencies, Debian's Chromium for the preview test and PostgreSQL for the shared store, then pytest. The real WordPress and Ghost of
# tests/integration are installed and started by their harnesses on first use (installs are cached
# in $SYNDICATE_TEST_CACHE, default ~/.cache/syndicate-tests, keyed by version, under a lock) and
# stopped when the session ends.
#
# Which CMS versions the integration tests run against (each test once per version, e.g. [wp7.1]):
#   SYNDICATE_TEST_WORDPRESS  comma-separated, default "6.1,7.1" (6.1: Debian stable's; 7.1: current)
#   SYNDICATE_TEST_GHOST      comma-separated, default "6.65" (current); "6.65,5.130" adds Ghost 5
# Run with no arguments (the whole suite, as CI does), the CMSs under test are installed in the
# background while the unit tests run; the integration tests wait for them (the install lock).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
phase() { echo "[run.sh] $1 at $((SECONDS - t0))s"; }

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v 'is ignored' || true
.venv/bin/python -c 'import syndicate, pytest, responses' # the install worked
# As pip does for a regular install: an editable one under PYTHONDONTWRITEBYTECODE would otherwise
# recompile every module on every start of the CLI (the tests start it hundreds of times).
.venv/bin/python -m compileall -q syndicate >/dev/null

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the preview test…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
     fonts-dejavu-core >/dev/null) || echo "chromium could not be installed: the browser test will be skipped"
fi
# The PostgreSQL state store's tests start a private cluster of Debian's postgresql (tests/pg_server.py).
# Where it can be installed it must be had: its tests then fail rather than skip.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if .venv/bin/python tests/pg_server.py install >/dev/null; then
    export SYNDICATE_REQUIRE_POSTGRES=1
  else
    echo "postgresql could not be installed: the PostgreSQL store's tests will be skipped"
  fi
fi
phase "environment ready"

# Background installs of the CMSs under test (whole suite only). Each harness takes its install lock,
# so a test that needs the CMS waits for it rather than installing it twice; a failed background
# install is retried by the test session, which then reports the failure itself.
preinstall_pids=()
if [ "$#" -eq 0 ]; then
  cache=${SYNDICATE_TEST_CACHE:-$HOME/.cache/syndicate-tests}
  mkdir -p "$cache"
  for cms in wordpress ghost; do
    .venv/bin/python "tests/integration/${cms}_server.py" install >"$cache/preinstall-$cms.$$.log" 2>&1 &
    preinstall_pids+=("$!")
  done
  echo "[run.sh] installing WordPress ${SYNDICATE_TEST_WORDPRESS-6.1,7.1} and Ghost ${SYNDICATE_TEST_GHOST-6.65}" \
       "in the background (logs: $cache/preinstall-*.$$.log)"
fi
stop_preinstalls() {
  local pid cms=(wordpress ghost) i=0 rc
  for pid in "${preinstall_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true # the session ended without needing it (e.g. stopped early)
      wait "$pid" 2>/dev/null || true
    else
      rc=0; wait "$pid" 2>/dev/null || rc=$?
      [ "$rc" -eq 0 ] || { echo "[run.sh] the background install of ${cms[$i]} failed (exit $rc):"; \
                           tail -20 "$cache/preinstall-${cms[$i]}.$$.log"; }
    fi
    i=$((i + 1))
  done
  rm -f "${cache:-/nonexistent}"/preinstall-*."$$".log
}
trap stop_preinstalls EXIT

set +e
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 0 ] && [ "${SYNDICATE_REQUIRE_POSTGRES:-}" = 1 ] && [ "$#" -eq 0 ]; then
  # Every test that opens the example's store, again on a PostgreSQL state store: the store URL is
  # a test parameter (tests/conftest.py's example; the other tests are deselected there).
  phase "pytest again on the PostgreSQL store"
  SYNDICATE_TEST_STORE=postgresql .venv/bin/python -m pytest -m "not integration" tests
  status=$?
fi
set -e
phase "pytest finished (exit $status)"
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
