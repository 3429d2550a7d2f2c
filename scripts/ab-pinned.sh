#!/bin/bash
# Two agent builds against the same workload alone, pinned, in one run:
# each round runs the workload alone, with build A, alone, with build B
# (workload on CPU 0, agent on CPU 1, as `cargo xtask bench --pin`), with
# the kernel's BPF statistics off. Prints each build's median slowdown and
# per-pair range. `cargo xtask bench` compares one build with no agent;
# this compares two builds (a change and its base) under the same drift.
#
#   sudo scripts/ab-pinned.sh WORKLOAD ROUNDS SECS AGENT_A AGENT_B
#
# Build the base from an older commit (git worktree + cargo build
# --release -p assay) and copy each binary aside. Per-program costs of the
# same builds: scripts/bpf-prog-cost.sh.
set -euo pipefail
[ $# -eq 5 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
workload=$1 rounds=$2 secs=$3 agent_a=$4 agent_b=$5
root=$(cd "$(dirname "$0")/.." && pwd)
load=$root/target/release/assay-load
[ -x "$load" ] || { echo "build it first: cargo build --release -p assay-tests --bin assay-load" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "needs two CPUs" >&2; exit 2; }
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=0
log=$(mktemp)
agent_pid=
cleanup() {
    [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    sysctl -qw kernel.bpf_stats_enabled="$stats_before"
    rm -f "$log"
}
trap cleanup EXIT
alone() { taskset -c 0 "$load" "$workload" "$secs" | awk '{ printf "%.3f", $2 / $4 }'; }
beside() {
    taskset -c 1 "$1" --format native --metrics-listen off >/dev/null 2>"$log" &
    agent_pid=$!
    for _ in $(seq 300); do grep -q "agent ready" "$log" && break; sleep 0.1; done
    grep -q "agent ready" "$log" || { echo "$1 did not start:" >&2; tail -5 "$log" >&2; exit 1; }
    alone
    kill -TERM "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
    agent_pid=
}
ratios_a=() ratios_b=()
for _ in $(seq "$rounds"); do
    n=$(alone); a=$(beside "$agent_a"); ratios_a+=("$(echo "$a $n" | awk '{ print $1 / $2 }')")
    n=$(alone); b=$(beside "$agent_b"); ratios_b+=("$(echo "$b $n" | awk '{ print $1 / $2 }')")
done
python3 - "$workload" "$agent_a" "${ratios_a[*]}" "$agent_b" "${ratios_b[*]}" <<'PY'
import statistics, sys
workload = sys.argv[1]
for agent, ratios in ((sys.argv[2], sys.argv[3]), (sys.argv[4], sys.argv[5])):
    r = [float(x) for x in ratios.split()]
    m = statistics.median(r)
    print(f"{workload}\t{agent}\tmedian ratio {m:.4f}\tslowdown {100 * (1 - m):+.2f} %\tper-pair {min(r):.3f}-{max(r):.3f}")
PY
