#!/usr/bin/env bash
# seq-mcp's start-up time (spawn to the answer to tools/list) and peak memory, release build.
# Builds it (feature mcp) and the client that measures it (benches/mcp_session.rs).
#
#   bash benches/mcp.sh            # RUNS=N: how many start-ups the median is taken over
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-51}
cargo build --release --quiet --features mcp --bin seq-mcp --bin seq-runner --bin seq-check \
  --example mcp_session
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/seq-mcp-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "seq-mcp: $(stat -c %s "$BIN/seq-mcp") bytes; seq-check: $(stat -c %s "$BIN/seq-check") bytes"
"$BIN/examples/mcp_session" "$BIN/seq-mcp" "$BIN/seq-check" "$RUNS" "$WORK"
