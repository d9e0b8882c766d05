#!/usr/bin/env bash
# Benchmark: per-step overhead against the floor of spawning `true`, heartbeat cost by plan
# size and state, and the runner's peak RSS while an agent prints 1 GiB. Builds in release
# mode itself and prints one side-by-side table; takes well under a minute.
#
#   bash benches/bench.sh            # RUNS=N sets how many heartbeats each median is taken over
#   SEQ_BENCH_BIN=/old/release bash benches/bench.sh    # the same table for other binaries
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-21}
cargo build --release --quiet --bins --example durable_replace
# SEQ_BENCH_BIN=<dir>: measure other binaries (an older build, for a before/after table).
BIN=${SEQ_BENCH_BIN:-$PWD/target/release}
FLOOR_TOOL=$PWD/target/release/examples/durable_replace
WORK=$(mktemp -d "${TMPDIR:-/tmp}/seq-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

now_ns() { date +%s%N; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e6 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# plan N [run-status-of-first-steps...]: a plan of N steps s1..sN on stdout.
plan() {
  awk -v n="$1" -v mode="${2:-fresh}" 'BEGIN {
    printf "{\"plan\":{\"steps\":{"
    for (i = 1; i <= n; i++) printf "%s\"s%d\":{\"title\":\"Step %d\",\"instruction\":\"do step %d of the plan\"}", (i > 1 ? "," : ""), i, i, i
    printf "}},\"stepQueue\":["
    for (i = 1; i <= n; i++) printf "%s\"s%d\"", (i > 1 ? "," : ""), i
    t = "2026-03-01T10:00:00.000Z"
    if (mode == "fresh") { printf "],\"currentStep\":0,\"stepRuns\":{},\"status\":\"IN_PROGRESS\"}\n"; exit }
    # done: every step DONE; inflight: all but the last DONE, the last IN_PROGRESS;
    # waiting: all but the last DONE, the last due after a year-long delay.
    last = (mode == "done") ? n : n - 1
    printf "],\"currentStep\":%d,\"stepRuns\":{", (mode == "done" ? n : n - 1)
    for (i = 1; i <= last; i++) printf "%s\"s%d\":{\"status\":\"DONE\",\"tries\":1,\"lastRunIso\":\"%s\",\"stdout\":\"ok\",\"startedIso\":\"%s\",\"finishedIso\":\"%s\",\"durationMs\":12,\"exitCode\":0,\"logFile\":\"state.json.seq/logs/s%d.1.log\"}", (i > 1 ? "," : ""), i, t, t, t, i
    if (mode == "inflight") printf ",\"s%d\":{\"status\":\"IN_PROGRESS\",\"tries\":1,\"lastRunIso\":\"%s\",\"startedIso\":\"%s\"}", n, t, t
    printf "}"
    if (mode == "waiting") printf ",\"stepDelayMinutes\":525600"
    if (mode == "done") printf ",\"status\":\"DONE\",\"finishedIso\":\"%s\",\"lastHeartbeatIso\":\"2026-03-01T11:00:00.000Z\"}\n", t
    else printf ",\"status\":\"IN_PROGRESS\"}\n"
  }'
}

# --- per-step overhead ---------------------------------------------------------------------
floor_ms() { # N: spawning `true` N times from a shell loop
  local t0 t1
  t0=$(now_ns)
  for ((i = 0; i < $1; i++)); do true_bin; done
  t1=$(now_ns)
  ms $((t1 - t0))
}
true_bin() { /usr/bin/true; }

steps_ms() { # N: a fresh N-step plan run to the end by seq-runner with agent `true`
  local dir=$WORK/steps$1 t0 t1
  mkdir -p "$dir"
  plan "$1" > "$dir/state.json"
  t0=$(now_ns)
  (cd "$dir" && STEP_AGENT_CMD=true "$BIN/seq-runner" state.json > /dev/null)
  t1=$(now_ns)
  grep -q '"status": "DONE"' "$dir/state.json" || { echo "plan $1 did not finish" >&2; exit 1; }
  ms $((t1 - t0))
}

# --- heartbeat cost ------------------------------------------------------------------------
heartbeat_ms() { # N MODE: median wall time of one `seq-check` on a plan in that state
  local dir=$WORK/hb$1$2 t0 t1
  mkdir -p "$dir"
  plan "$1" "$2" > "$dir/state.json"
  if [ "$2" = inflight ]; then
    # Hold the run lease from this (sub)shell, as a live runner would, and the step's try
    # lease, as its agent would.
    mkdir -p "$dir/state.json.seq/leases"
    exec 8> "$dir/state.json.seq/lease"
    flock -n 8
    exec 9> "$dir/state.json.seq/leases/s$1.lease"
    flock -n 9
  fi
  (cd "$dir" && STEP_AGENT_CMD=true STEP_RUNNER=/bin/true "$BIN/seq-check" -q state.json) # warm
  for ((r = 0; r < RUNS; r++)); do
    t0=$(now_ns)
    (cd "$dir" && STEP_AGENT_CMD=true STEP_RUNNER=/bin/true "$BIN/seq-check" -q state.json)
    t1=$(now_ns)
    echo $((t1 - t0))
  done | median | { read -r ns; ms "$ns"; }
  [ "$2" = inflight ] && exec 8>&- 9>&-
  return 0
}

heartbeat_floor_ms() { # the same measurement of `true`: what the harness and a process start cost
  for ((r = 0; r < RUNS; r++)); do
    t0=$(now_ns)
    (cd "$WORK" && /usr/bin/true)
    t1=$(now_ns)
    echo $((t1 - t0))
  done | median | { read -r ns; ms "$ns"; }
}

replace_floor_ms() { # N: one process start plus one durable replace of an in-flight N-step file
  local dir=$WORK/floor$1 t0 t1
  mkdir -p "$dir"
  plan "$1" inflight > "$dir/state.json"
  for ((r = 0; r < RUNS; r++)); do
    t0=$(now_ns)
    (cd "$dir" && "$FLOOR_TOOL" state.json)
    t1=$(now_ns)
    echo $((t1 - t0))
  done | median | { read -r ns; ms "$ns"; }
}

# --- workflows ---------------------------------------------------------------------------------
foreach_ms() { # N P: one forEach step over N items (agent `true`), P at a time, run to the end
  local dir=$WORK/each$1x$2 t0 t1
  mkdir -p "$dir"
  seq 1 "$1" > "$dir/list.txt"
  printf '{"plan":{"maxParallel":%d,"steps":{"each":{"instruction":"item {{item}}","forEach":{"from":"file:list.txt","maxItems":%d}}}},"stepQueue":["each"]}\n' "$2" "$1" > "$dir/state.json"
  t0=$(now_ns)
  (cd "$dir" && STEP_AGENT_CMD=true "$BIN/seq-runner" state.json > /dev/null)
  t1=$(now_ns)
  grep -q '"status": "DONE"' "$dir/state.json" || { echo "forEach $1x$2 did not finish" >&2; exit 1; }
  rm -rf "$dir"
  ms $((t1 - t0))
}

items_plan() { # N DIR: a forEach step with N items, all but the last DONE, the last in flight
  local n=$1 dir=$2 t="2026-03-01T10:00:00.000Z"
  mkdir -p "$dir/state.json.seq/items"
  awk -v n="$n" -v t="$t" 'BEGIN {
    printf "{\"plan\":{\"steps\":{\"each\":{\"instruction\":\"item {{item}}\",\"forEach\":{\"from\":\"file:list.txt\",\"maxItems\":%d}}}},\"stepQueue\":[\"each\"],\"currentStep\":0,", n
    printf "\"stepRuns\":{\"each\":{\"status\":\"PENDING\",\"tries\":0,\"lastRunIso\":\"%s\",\"startedIso\":\"%s\",\"items\":[", t, t
    for (i = 1; i <= n; i++) printf "%s\"file-%d.md\"", (i > 1 ? "," : ""), i
    printf "]}},\"status\":\"IN_PROGRESS\"}\n"
  }' > "$dir/state.json"
  awk -v n="$n" -v t="$t" 'BEGIN {
    printf "{\"step\":\"each\",\"expanded\":\"%s\",\"items\":%d}\n", t, n
    for (i = 1; i < n; i++) printf "{\"n\":%d,\"run\":{\"status\":\"DONE\",\"tries\":1,\"lastRunIso\":\"%s\",\"stdout\":\"ok\",\"startedIso\":\"%s\",\"finishedIso\":\"%s\",\"durationMs\":3,\"exitCode\":0}}\n", i, t, t, t
    printf "{\"n\":%d,\"run\":{\"status\":\"IN_PROGRESS\",\"tries\":1,\"lastRunIso\":\"%s\",\"startedIso\":\"%s\"}}\n", n, t, t
  }' > "$dir/state.json.seq/items/each.jsonl"
}

items_heartbeat_ms() { # N MODE: a heartbeat on that plan, a runner holding it (inflight) or not (idle)
  local dir=$WORK/ihb$1$2 t0 t1
  items_plan "$1" "$dir"
  if [ "$2" = inflight ]; then
    exec 8> "$dir/state.json.seq/lease"
    flock -n 8
  fi
  # Idle: the last item's try lease is held by this shell, so it is alive and nothing is due.
  mkdir -p "$dir/state.json.seq/leases"
  exec 9> "$dir/state.json.seq/leases/each%5B$1%5D.lease"
  flock -n 9
  (cd "$dir" && STEP_AGENT_CMD=true STEP_RUNNER=/bin/true "$BIN/seq-check" -q state.json) # warm
  for ((r = 0; r < RUNS; r++)); do
    t0=$(now_ns)
    (cd "$dir" && STEP_AGENT_CMD=true STEP_RUNNER=/bin/true "$BIN/seq-check" -q state.json)
    t1=$(now_ns)
    echo $((t1 - t0))
  done | median | { read -r ns; ms "$ns"; }
  exec 9>&-
  [ "$2" = inflight ] && exec 8>&-
  return 0
}

items_floor_ms() { # N: one process start plus one durable replace of that plan's state file
  local dir=$WORK/ifloor$1 t0 t1
  items_plan "$1" "$dir"
  for ((r = 0; r < RUNS; r++)); do
    t0=$(now_ns)
    (cd "$dir" && "$FLOOR_TOOL" state.json)
    t1=$(now_ns)
    echo $((t1 - t0))
  done | median | { read -r ns; ms "$ns"; }
}

# --- memory ------------------------------------------------------------------------------------
rss_1gib() { # the runner's peak RSS (KiB) while its agent prints 1 GiB
  local dir=$WORK/rss
  mkdir -p "$dir"
  plan 1 > "$dir/state.json"
  printf '#!/bin/sh\nhead -c 1073741824 /dev/zero\n' > "$dir/agent.sh"
  chmod +x "$dir/agent.sh"
  if [ -x /usr/bin/time ]; then
    (cd "$dir" && STEP_AGENT_CMD=./agent.sh /usr/bin/time -f '%M' -o "$dir/rss" "$BIN/seq-runner" state.json > /dev/null)
    cat "$dir/rss"
  else
    # Fallback: sample VmHWM of the runner while it runs.
    (cd "$dir" && STEP_AGENT_CMD=./agent.sh "$BIN/seq-runner" state.json > /dev/null) &
    local pid=$! peak=0 hwm
    while kill -0 "$pid" 2>/dev/null; do
      hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
      sleep 0.05
    done
    echo "$peak"
  fi
}

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), temp dir on $(df -T "$WORK" | awk 'NR == 2 { print $2 }')"
echo

printf '%-34s %12s %12s %10s %9s\n' "per-step overhead (agent: true)" "seq-runner" "floor" "ratio" "goal"
for n in 100 1000; do
  # Median of three: a whole-plan run is at the mercy of the disk's writeback of earlier runs.
  s=$(for k in 1 2 3; do steps_ms "$n"; echo; rm -rf "$WORK/steps$n"; done | sort -n | sed -n 2p)
  f=$(for k in 1 2 3; do floor_ms "$n"; echo; done | sort -n | sed -n 2p)
  goal=$([ "$n" = 100 ] && echo "<= 2x" || echo "<= 3x")
  printf '%-34s %9s ms %9s ms %9sx %9s\n' "$n steps" "$s" "$f" "$(awk -v a="$s" -v b="$f" 'BEGIN { printf "%.1f", a / b }')" "$goal"
  printf '%-34s %9s ms %9s ms\n' "  per step" "$(awk -v a="$s" -v n="$n" 'BEGIN { printf "%.3f", a / n }')" "$(awk -v a="$f" -v n="$n" 'BEGIN { printf "%.3f", a / n }')"
done
echo

printf '%-40s %10s %10s %10s %12s\n' "heartbeat, median of $RUNS (ms)" "10" "1,000" "10,000" "goal"
declare -A inflight
for mode in done inflight waiting; do
  a=$(heartbeat_ms 10 "$mode")
  b=$(heartbeat_ms 1000 "$mode")
  c=$(heartbeat_ms 10000 "$mode")
  [ "$mode" = inflight ] && inflight=([10]=$a [1000]=$b [10000]=$c)
  goal=$([ "$mode" = inflight ] && echo "<= 2x @1k" || echo "")
  printf '%-40s %10s %10s %10s %12s\n' "$mode" "$a" "$b" "$c" "$goal"
done
fa=$(replace_floor_ms 10); fb=$(replace_floor_ms 1000); fc=$(replace_floor_ms 10000)
printf '%-40s %10s %10s %10s\n' "floor: start + durable replace of the file" "$fa" "$fb" "$fc"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
printf '%-40s %10s %10s %10s\n' "  in flight against its floor" "$(ratio "${inflight[10]}" "$fa")" "$(ratio "${inflight[1000]}" "$fb")" "$(ratio "${inflight[10000]}" "$fc")"
f=$(heartbeat_floor_ms)
printf '%-40s %10s %10s %10s\n' "floor: \`true\`, measured the same way" "$f" "$f" "$f"
echo

if [ -z "${SEQ_BENCH_BIN:-}" ]; then # workflows: this version's binaries only
  n=1000
  one=$(for k in 1 2 3; do foreach_ms "$n" 1; echo; done | sort -n | sed -n 2p)
  eight=$(for k in 1 2 3; do foreach_ms "$n" 8; echo; done | sort -n | sed -n 2p)
  f=$(for k in 1 2 3; do floor_ms "$n"; echo; done | sort -n | sed -n 2p)
  printf '%-34s %12s %12s %10s %9s\n' "forEach, $n items (agent: true)" "seq-runner" "floor" "ratio" "goal"
  printf '%-34s %9s ms %9s ms %9sx %9s\n' "maxParallel 1" "$one" "$f" "$(awk -v a="$one" -v b="$f" 'BEGIN { printf "%.1f", a / b }')" "<= 3x"
  printf '%-34s %9s ms %9s ms\n' "  per item" "$(awk -v a="$one" -v n="$n" 'BEGIN { printf "%.3f", a / n }')" "$(awk -v a="$f" -v n="$n" 'BEGIN { printf "%.3f", a / n }')"
  printf '%-34s %9s ms %12s %10s %9s\n' "maxParallel 8" "$eight" "" "" "< mP 1"
  echo
  printf '%-40s %10s %10s %12s\n' "heartbeat on a forEach plan (ms)" "1,000" "10,000" "goal"
  ia=$(items_heartbeat_ms 1000 inflight); ib=$(items_heartbeat_ms 10000 inflight)
  printf '%-40s %10s %10s %12s\n' "runner holds the plan" "$ia" "$ib" "<= 3x @10k"
  ja=$(items_heartbeat_ms 1000 idle); jb=$(items_heartbeat_ms 10000 idle)
  printf '%-40s %10s %10s\n' "no runner (items read, one in flight)" "$ja" "$jb"
  ga=$(items_floor_ms 1000); gb=$(items_floor_ms 10000)
  printf '%-40s %10s %10s\n' "floor: start + durable replace of the file" "$ga" "$gb"
  printf '%-40s %10s %10s\n' "  runner holds it, against its floor" "$(ratio "$ia" "$ga")" "$(ratio "$ib" "$gb")"
  printf '%-40s %10s %10s\n' "  no runner, against its floor" "$(ratio "$ja" "$ga")" "$(ratio "$jb" "$gb")"
  echo
fi

kib=$(rss_1gib)
printf '%-34s %10s %10s\n' "runner peak RSS, agent prints 1 GiB" "$(awk -v k="$kib" 'BEGIN { printf "%.1f MiB", k / 1024 }')" "< 16 MiB"
