#!/usr/bin/env bash
# The whole test suite, from a fresh machine: a virtual environment with the package and its test
# dependencies, Debian's Chromium for the preview test and PostgreSQL for the shared store, then
# pytest. The real WordPress and Ghost of tests/integration are installed and started by their
# harnesses on first use (Ghost's install is cached in ~/.cache/syndicate-tests, keyed by version)
# and stopped when the session ends.
set -euo pipefail
cd "$(dirname "$0")/.."

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

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
