#!/usr/bin/env bash
# Installs what building and running the worker needs: the wasm32 target, worker-build and
# wasm-bindgen-cli (compiled into ~/.cargo/bin once; a version check skips them afterwards),
# the npm packages (wrangler, binaryen's wasm-opt) from package-lock.json; and, for the tests,
# promtool from Debian's `prometheus` (tests/test_metrics.py) and Debian's chromium
# (tests/test_console.py) when they are missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS_ROOT="${TOOLS_ROOT:-$HOME/.cargo}"
WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock, or the generated glue will not load.
BINDGEN_VERSION="$(grep -A1 '^name = "wasm-bindgen"$' "$ROOT/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"

rustup target add wasm32-unknown-unknown >/dev/null

have() { "$TOOLS_ROOT/bin/$1" --version 2>/dev/null | grep -qwF "$2"; }

if ! have worker-build "$WORKER_BUILD_VERSION"; then
  cargo install --root "$TOOLS_ROOT" worker-build --version "$WORKER_BUILD_VERSION" --locked
fi
if ! have wasm-bindgen "$BINDGEN_VERSION"; then
  # No --locked: its lockfile pins a webpki-roots the registry index here lacks.
  cargo install --root "$TOOLS_ROOT" wasm-bindgen-cli --version "$BINDGEN_VERSION"
fi

# promtool checks the /metrics exposition (format and lint) in the tests.
if ! command -v promtool >/dev/null 2>&1 && [ "${SKIP_APT:-}" != 1 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
  else
    echo "promtool is missing: install Prometheus (its promtool) for tests/test_metrics.py" >&2
  fi
fi

# The console's browser tests (tests/test_console.py) drive Debian's Chromium through
# Playwright, which cannot download a browser of its own here.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi

if [ "${SKIP_NPM:-}" != 1 ]; then
  cd "$ROOT"
  # Reinstall only when the lockfile changed since the last install (marker kept beside it).
  if [ ! -x node_modules/.bin/wrangler ] || ! cmp -s package-lock.json node_modules/.installed-package-lock.json; then
    npm ci --no-audit --no-fund
    cp package-lock.json node_modules/.installed-package-lock.json
  fi
fi
