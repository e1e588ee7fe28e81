#!/usr/bin/env bash
# The one command that installs everything and runs every check and test on a fresh machine:
#
#   bash scripts/test.sh
#
# Steps (it stops at the first failure): install the build tools and npm packages, create the
# Python venv for the end-to-end tests, rustfmt, clippy (host and wasm32), cargo test, a few
# seconds of each fuzz target, build the native binaries and the worker, then run the Python
# end-to-end tests (tests/), which start the fake upstream, the native server and
# `wrangler dev` on loopback ports by themselves.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

STEP=0
step() {
  STEP=$((STEP + 1))
  printf '\n==== [%d] %s ====\n' "$STEP" "$*"
}

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export WRANGLER_SEND_METRICS=false

step "Install tools (rustup components, wasm target, worker-build, wasm-bindgen-cli, npm packages)"
rustup component add rustfmt clippy >/dev/null
bash scripts/install-tools.sh

step "Python venv for the end-to-end tests (.venv, tests/requirements.txt)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Reinstall only when the pinned list changed since the last install.
if ! cmp -s tests/requirements.txt .venv/.installed-requirements.txt; then
  .venv/bin/python -m pip install --disable-pip-version-check --no-input -q -r tests/requirements.txt
  cp tests/requirements.txt .venv/.installed-requirements.txt
fi

step "cargo fmt --check"
cargo fmt --all -- --check
# The fuzz crate is a workspace of its own.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "cargo clippy (host, all targets, all features)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo clippy (wasm32: SDK and worker, and the worker's test-only conformance build)"
cargo clippy -p flow2api-sdk -p edge-worker --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p edge-worker --features conformance --target wasm32-unknown-unknown -- -D warnings

step "cargo doc (SDK, warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p flow2api-sdk --no-deps --all-features

step "Module layering: no SDK module imports a later layer (scripts/module-graph.py)"
python3 scripts/module-graph.py

step "Packaging: the SDK's wasm32 tree has no native dependency; cargo package -p flow2api-sdk"
native_deps="$(cargo tree -p flow2api-sdk --target wasm32-unknown-unknown -e normal --prefix none \
  | grep -E '^(tokio|reqwest|hyper|hyper-util|rusqlite|libsqlite3-sys) ' || true)"
if [ -n "$native_deps" ]; then
  printf 'the SDK built for wasm32 depends on:\n%s\n' "$native_deps" >&2
  exit 1
fi
# --allow-dirty: a working copy may hold uncommitted edits; CI's clone holds none.
cargo package -p flow2api-sdk --allow-dirty --quiet

step "cargo test"

cargo test --workspace --all-features

step "Fuzz targets, a few seconds each (scripts/fuzz.sh)"
bash scripts/fuzz.sh 3

step "Build the native server and the fake upstream (release)"
# Two builds: the fake's feature must never reach the server binary.
cargo build --release -p flow2api-examples --bin flow2api-server
cargo build --release -p flow2api-examples --features fake --bin flow2api-fake-upstream

step "Build the worker (worker-build --release)"
# The deployable worker, into build/. Its test-only conformance build (build-conformance/) is
# made by tests/test_conformance_worker.py itself.
bash scripts/build.sh

step "End-to-end tests (pytest: fake upstream + native server + wrangler dev)"
.venv/bin/python -m pytest tests -v
