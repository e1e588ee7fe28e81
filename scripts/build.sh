#!/usr/bin/env bash
# Builds the worker into build/ (index.js + index_bg.wasm); wrangler's [build] command runs it.
#
#   bash scripts/build.sh [--conformance] [worker-build options…]
#
# `--conformance` makes the test-only build instead, into build-conformance/: the same worker
# with the cargo feature `conformance` (the route that runs the seams' conformance suites inside
# workerd, tests/test_conformance_worker.py). Nothing deploys it: wrangler.toml's `main` is
# build/index.js, which never has the route. Other arguments go to worker-build as they are
# (options it does not know, such as `--features x`, reach `cargo build`).
#
# The env vars point worker-build at locally installed tools so that it downloads nothing:
# wasm-bindgen from `cargo install wasm-bindgen-cli` (scripts/install-tools.sh), wasm-opt from
# npm binaryen@132 and esbuild from wrangler's dependencies (both via `npm ci`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/.bin/esbuild}"
# The wasm is built for size (the workspace's release profile is tuned for the native server's
# speed): whole-program LTO in one codegen unit makes it about a third smaller, and Workers
# bound the script's size. Opt-level "z" over "s" saves another 13 % (README "Tests and benchmarks").
# The variables only reach this build; the native one keeps the workspace's profile.
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}"
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-fat}"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}"
# No `name` section (function names for stack traces, about 360 KB of the wasm): a panic's
# message and location come from the panic hook, not from it.
export CARGO_PROFILE_RELEASE_STRIP="${CARGO_PROFILE_RELEASE_STRIP:-symbols}"
OUT=build
FEATURES=()
if [ "${1:-}" = "--conformance" ]; then
  shift
  OUT=build-conformance
  FEATURES=(--features conformance)
fi
# worker-build works on the crate in the current directory; the output goes to $OUT/ at the
# repository root, next to wrangler.toml.
cd "$ROOT/edge-worker"
exec worker-build --release --out-dir "../$OUT" "$@" "${FEATURES[@]}"
