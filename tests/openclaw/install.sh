#!/usr/bin/env bash
# Installs the pinned OpenClaw tool chain the end-to-end test (`cargo test --test openclaw`) runs
# against, into an npm prefix: DIR/bin/node, DIR/bin/openclaw, DIR/bin/clawhub, DIR/bin/mcporter.
#
#   tests/openclaw/install.sh [DIR]     DIR defaults to ${CARGO_TARGET_DIR:-target}/openclaw-tools
#
# Idempotent: when DIR already holds the pinned versions it changes nothing and uses no network.
# openclaw 2026.9.6 needs Node >= 24.16; the npm package `node` brings one, so the machine's own
# Node (any version npm runs on) is enough to start.
set -euo pipefail
cd "$(dirname "$0")/../.."

NODE_VERSION=24.21.0
OPENCLAW_VERSION=2026.9.6
CLAWHUB_VERSION=0.23.3
MCPORTER_VERSION=0.12.3

dir=${1:-${CARGO_TARGET_DIR:-target}/openclaw-tools}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# The version an installed package declares, or nothing.
installed() {
  local manifest="$dir/lib/node_modules/$1/package.json"
  [ -f "$manifest" ] || return 0
  sed -n 's/^  "version": "\(.*\)",\{0,1\}$/\1/p' "$manifest" | head -n 1
}

pinned() {
  [ "$(installed node)" = "$NODE_VERSION" ] &&
    [ "$(installed openclaw)" = "$OPENCLAW_VERSION" ] &&
    [ "$(installed clawhub)" = "$CLAWHUB_VERSION" ] &&
    [ "$(installed mcporter)" = "$MCPORTER_VERSION" ] &&
    [ -x "$dir/bin/node" ] && [ -x "$dir/bin/openclaw" ] && [ -x "$dir/bin/clawhub" ]
}

if pinned; then
  echo "openclaw tools: pinned versions already in $dir"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "openclaw tools: npm not found; cannot install into $dir" >&2
  exit 1
fi

start=$(date +%s)
export npm_config_prefix="$dir" npm_config_audit=false npm_config_fund=false \
  npm_config_update_notifier=false npm_config_loglevel=error
echo "openclaw tools: installing node@$NODE_VERSION into $dir"
npm install -g "node@$NODE_VERSION"
# Everything after runs on that Node: openclaw's engines field refuses older ones.
export PATH="$dir/bin:$PATH"
echo "openclaw tools: installing openclaw@$OPENCLAW_VERSION clawhub@$CLAWHUB_VERSION mcporter@$MCPORTER_VERSION"
npm install -g "openclaw@$OPENCLAW_VERSION" "clawhub@$CLAWHUB_VERSION" "mcporter@$MCPORTER_VERSION"

if ! pinned; then
  echo "openclaw tools: the install in $dir does not hold the pinned versions:" \
    "node $(installed node), openclaw $(installed openclaw), clawhub $(installed clawhub)," \
    "mcporter $(installed mcporter)" >&2
  exit 1
fi
echo "openclaw tools: installed in $dir in $(( $(date +%s) - start )) s ($("$dir/bin/node" --version))"
