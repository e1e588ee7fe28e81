#!/usr/bin/env bash
# Builds the worker into build/ (index.js + index_bg.wasm); wrangler's [build] command runs it.
# The env vars point worker-build at locally installed tools so that it downloads nothing:
# wasm-bindgen from `cargo install wasm-bindgen-cli` (scripts/install-tools.sh), wasm-opt from
# npm binaryen@132 and esbuild from wrangler's dependencies (both via `npm ci`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/.bin/esbuild}"
# worker-build works on the crate in the current directory; the output goes to build/ at the
# repository root, next to wrangler.toml (`main = "build/index.js"`).
cd "$ROOT/edge-worker"
exec worker-build --release --out-dir ../build "$@"
