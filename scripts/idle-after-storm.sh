#!/bin/bash
# The agent's CPU, from the scheduler's own accounting (nanoseconds, summed
# over its threads: finer than the 10 ms ticks `cargo xtask bench` reads),
# idle for 10 s, during a 6 s rr-connect storm, and idle for 20 s after it,
# with its flow table full. Agent on CPU 1, load on CPU 0.
#
#   sudo scripts/idle-after-storm.sh AGENT [AGENT ...]
#
# Each agent binary in turn; give a base and a change, twice or three
# times, to compare them under the same drift.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
load=$root/target/release/assay-load
[ -x "$load" ] || { echo "build it first: cargo build --release -p assay-tests --bin assay-load" >&2; exit 2; }
log=$(mktemp)
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -f "$log"
}
trap cleanup EXIT
for agent in "$@"; do
    taskset -c 1 "$agent" --format native --metrics-listen off >/dev/null 2>"$log" &
    pid=$!
    for _ in $(seq 300); do grep -q "agent ready" "$log" && break; sleep 0.1; done
    grep -q "agent ready" "$log" || { echo "$agent did not start:" >&2; tail -5 "$log" >&2; exit 1; }
    cpu_ns() {
        local sum=0 f
        for f in /proc/$pid/task/*/schedstat; do sum=$((sum + $(cut -d' ' -f1 "$f"))); done
        echo $sum
    }
    sleep 3; a=$(cpu_ns); sleep 10; b=$(cpu_ns)
    out=$(taskset -c 0 "$load" rr-connect 6); c=$(cpu_ns)
    sleep 2; d=$(cpu_ns); sleep 20; e=$(cpu_ns)
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    pid=
    awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" -v e="$e" -v agent="$agent" -v out="$out" 'BEGIN {
        printf "%s: idle %.3f %%, storm %.2f %% (%s), idle after %.3f %% of a core\n",
            agent, (b-a)/1e8, (c-b)/6e7, out, (e-d)/2e8 }'
done
