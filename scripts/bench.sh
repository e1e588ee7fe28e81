#!/usr/bin/env bash
# Benchmark (not a test): builds what it needs, then prints requests/s and CPU per image for
# the native server and for the worker under `wrangler dev`, against the loopback fake.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bash scripts/install-tools.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r tests/requirements.txt
# Two builds: the fake's feature must never reach the server binary.
cargo build --release -p flow2api-examples --bin flow2api-server
cargo build --release -p flow2api-examples --features fake --bin flow2api-fake-upstream
bash scripts/build.sh
exec .venv/bin/python scripts/bench.py "$@"
