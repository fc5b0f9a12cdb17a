#!/usr/bin/env bash
# The unit and protocol tests again on Node 24, the active LTS, after `npm test` ran every test on the machine's
# Node (run by `npm test` as its posttest step, so CI's one command covers both).
#
# Node 24 comes from the npm registry's `node@24` package (the only download CI may make besides Debian and npm
# packages), installed into .cache/node24 (gitignored) and reused while it is a v24 binary. Left out here, because
# the first run already covers them and they would double CI time without testing Node: test/e2e (Postfix and
# Dovecot), the Chromium tests, and the pack-and-install test (npm itself, not our code, is what runs there).
#
# Usage: scripts/test-node24.sh [test files…]   (default: the unit and protocol suites)
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=.cache/node24
NODE=${PREFIX}/node_modules/node/bin/node

is_node24() { [[ -x ${NODE} ]] && [[ $("${NODE}" --version 2>/dev/null) == v24.* ]]; }

if ! is_node24; then
  echo "test:node24: installing node@24 from the npm registry into ${PREFIX}"
  npm install --prefix "${PREFIX}" --no-save --no-package-lock --no-audit --no-fund node@24 >/dev/null
fi
is_node24 || { echo "test:node24: ${NODE} is not a Node 24 binary ($("${NODE}" --version 2>&1 || true))" >&2; exit 1; }

if [[ $# -gt 0 ]]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' -not -path 'test/e2e/*' -not -path 'test/packaging/pack-install.test.ts' -print | sort | while read -r f; do grep -q launchBrowser "$f" || echo "$f"; done)
fi
echo "test:node24: ${#files[@]} test files on Node $("${NODE}" --version) (${NODE})"
# The tests start children with process.execPath, so they run on Node 24 too.
exec "${NODE}" --import tsx --test --test-reporter=spec --test-timeout=300000 "${files[@]}"
