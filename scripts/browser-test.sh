#!/usr/bin/env bash
# The dashboard's browser test (tests/browser) in Debian's headless Chromium, against the
# stack at ORDERS_API_URL (default http://127.0.0.1:3000; start one with `make run`).
#
# Installs what is missing: the `chromium` Debian package (playwright-core drives the
# system browser; it never downloads one) and the locked npm dependencies.
# Screenshots: $ORDERS_ARTIFACTS, default .local/artifacts/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export ORDERS_API_URL="${ORDERS_API_URL:-http://127.0.0.1:3000}"

say() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required"

if [ ! -x /usr/bin/chromium ]; then
  say "installing Debian chromium"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine: refresh them only then.
  $sudo apt-get install -y --no-install-recommends chromium >/dev/null \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends chromium >/dev/null; }
fi

# Sign-in is on: the test's own API calls use these (the page signs in through the issuer).
[ -x target/debug/orders-admin ] || cargo build --quiet -p orders-admin
ORDERS_TOKEN="$(target/debug/orders-admin token --staff)"
ORDERS_CUSTOMER_TOKEN="$(target/debug/orders-admin token --customer "bt-customer-$$")"
export ORDERS_TOKEN ORDERS_CUSTOMER_TOKEN

cd tests/browser
say "npm ci (tests/browser)"
npm ci --no-audit --no-fund --loglevel=error

curl -s -o /dev/null --max-time 5 "$ORDERS_API_URL/health" \
  || die "no API answers at $ORDERS_API_URL (start the stack: make run)"
say "browser test against $ORDERS_API_URL"
node --test dashboard.test.mjs
