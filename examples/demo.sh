#!/usr/bin/env bash
# Runs an example plan end to end in a fresh temp workspace, with a bundled example agent.
#
#   examples/demo.sh            three steps that each write a file (the quick start)
#   examples/demo.sh failure    a failure, the retry prompt, and a blocker
#
# Builds the binaries first (release, into target/); SEQ_BIN_DIR=<dir> uses ready ones instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
example=${1:-quickstart}
case $example in
  quickstart) agent=scribe.sh ;;
  failure) agent=flaky.sh ;;
  *) echo "usage: examples/demo.sh [quickstart|failure]" >&2; exit 2 ;;
esac

bin=${SEQ_BIN_DIR:-}
if [ -z "$bin" ]; then
  echo "== building seq-check and seq-runner (first time: about a minute)"
  cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml"
  bin="${CARGO_TARGET_DIR:-$root/target}/release"
fi
bin=$(cd "$bin" && pwd)

workspace=$(mktemp -d "${TMPDIR:-/tmp}/seq-demo.XXXXXX")
cp "$root/examples/$example/state.json" "$workspace/state.json"
export STEP_AGENT_CMD="$root/examples/agents/$agent"
export STEP_MAX_RETRIES=3

echo "== workspace: $workspace"
echo "== STEP_AGENT_CMD=$STEP_AGENT_CMD"
echo "== seq-check --wait state.json"
cd "$workspace"
status=0
"$bin/seq-check" --wait state.json || status=$?

echo
echo "== seq-check exited $status (0: done, 1: blocked and needs a person)"
echo "== files the agent wrote:"
find . -path ./state.json.seq -prune -o -type f ! -name state.json -print | sort
if [ "$example" = failure ]; then
  echo "== the prompt of fetch's second attempt (the retry prompt), from its log:"
  sed -n 's/^attempt 2 got the retry prompt: //p' state.json.seq/logs/fetch.2.log
  echo "== blockers recorded in state.json:"
  grep -A3 '"blockers"' state.json
fi
if [ -x "$bin/seqctl" ]; then
  echo "== seqctl status"
  "$bin/seqctl" status --state state.json || true
fi
exit "$status"
