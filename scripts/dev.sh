#!/usr/bin/env bash
# Runs the worker locally under `wrangler dev`, with local KV and Durable Object state in
# .wrangler/state:
#
#   bash scripts/dev.sh [wrangler dev arguments…]      e.g. --var YESCAPTCHA_API_KEY:your-key
#
# Installs the tools first (scripts/install-tools.sh: the wasm target, worker-build and
# wasm-bindgen-cli once, and `npm ci`). On the first run it writes .dev.vars with a random
# development API_KEY and ADMIN_PASSWORD and prints them. PORT (default 8787) picks the port.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh

if [ ! -e .dev.vars ]; then
  rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
  api_key="sk-dev-$(rand 16)"
  admin_password="$(rand 12)"
  umask 077
  cat > .dev.vars <<VARS
# Local development secrets for \`wrangler dev\` (git-ignored). Delete this file for new ones.
API_KEY=$api_key
ADMIN_USERNAME=admin
ADMIN_PASSWORD=$admin_password
VARS
  echo "Created .dev.vars with development credentials:"
  echo "  API_KEY=$api_key"
  echo "  ADMIN_USERNAME=admin"
  echo "  ADMIN_PASSWORD=$admin_password"
else
  echo "Using the credentials in .dev.vars"
fi

unset CLOUDFLARE_API_TOKEN
export WRANGLER_SEND_METRICS=false
exec npx wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" "$@"
