#!/usr/bin/env bash
# The heartbeat with a step in flight against its floor, measured in alternation (one heartbeat,
# then one durable replace of the same file, 101 times) so that both see the same moment of a
# noisy machine; prints both medians and their ratio.
#
#   bash benches/heartbeat_pairs.sh [STEPS]              # default 1000
#   bash benches/heartbeat_pairs.sh items [ITEMS]        # a forEach plan, no runner: default 10000
#   SEQ_BENCH_BIN=/old/release bash benches/heartbeat_pairs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bins --example durable_replace
BIN=${SEQ_BENCH_BIN:-$PWD/target/release}
FLOOR_TOOL=$PWD/target/release/examples/durable_replace
MODE=steps
if [ "${1:-}" = items ]; then MODE=items; shift; fi
N=${1:-$([ "$MODE" = items ] && echo 10000 || echo 1000)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/seq-pairs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

eval "$(sed -n '/^plan() {/,/^}/p' benches/bench.sh)"
eval "$(sed -n '/^items_plan() {/,/^}/p' benches/bench.sh)"
mkdir -p "$WORK/hb/state.json.seq/leases" "$WORK/floor"
if [ "$MODE" = items ]; then
  # No runner holds the plan (it crashed, or is between starts); the last item's agent lives.
  items_plan "$N" "$WORK/hb"
  exec 9> "$WORK/hb/state.json.seq/leases/each%5B$N%5D.lease"
  flock -n 9
  (cd "$WORK/hb" && STEP_AGENT_CMD=true STEP_RUNNER=/bin/true "$BIN/seq-check" -q state.json)
  # The floor replaces the file the heartbeat writes.
  cp "$WORK/hb/state.json" "$WORK/floor/state.json"
  WHAT="$N forEach items, no runner"
else
  plan "$N" inflight > "$WORK/hb/state.json"
  plan "$N" inflight > "$WORK/floor/state.json"
  # Hold the run lease, as a live runner would, and the step's try lease, as its agent would.
  exec 8> "$WORK/hb/state.json.seq/lease"
  flock -n 8
  exec 9> "$WORK/hb/state.json.seq/leases/s$N.lease"
  flock -n 9
  WHAT="$N steps, a step in flight"
fi

for ((r = 0; r < 101; r++)); do
  t0=$(date +%s%N)
  (cd "$WORK/hb" && STEP_AGENT_CMD=true STEP_RUNNER=/bin/true "$BIN/seq-check" -q state.json)
  t1=$(date +%s%N)
  echo $((t1 - t0)) >> "$WORK/hb.ns"
  t0=$(date +%s%N)
  (cd "$WORK/floor" && "$FLOOR_TOOL" state.json)
  t1=$(date +%s%N)
  echo $((t1 - t0)) >> "$WORK/floor.ns"
done
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1e6 }'; }
hb=$(median "$WORK/hb.ns")
fl=$(median "$WORK/floor.ns")
echo "$WHAT: heartbeat $hb ms, floor $fl ms, $(awk -v a="$hb" -v b="$fl" 'BEGIN { printf "%.2fx", a / b }')"
