#!/bin/bash
# Kernel cost of each eBPF program of one or more agent builds, measured in
# turns on the same machine: per-program ns/run and runs/op from the
# kernel's BPF statistics (kernel.bpf_stats_enabled) while an assay-load
# workload runs, for each build in the order given (repeat builds to
# alternate them: old new old new).
#
#   sudo scripts/bpf-prog-cost.sh "rr-connect rr redis-c8" AGENT_BIN [AGENT_BIN...]
#
# Build a "before" binary from an older commit (git worktree + cargo build
# --release -p assay) to compare. Each agent runs with its defaults (the
# whole host) and no metrics listener; its programs are told apart from
# others' by program id (loaded after it started). Figures include the
# statistics' own two clock reads per run; `cargo xtask bench` also
# measures the empty-program floor at the same hooks.
set -euo pipefail
workloads=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
load=$root/target/release/assay-load
[ -x "$load" ] || { echo "build it first: cargo build --release -p assay-tests --bin assay-load" >&2; exit 2; }
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$stats_before' EXIT
snapshot() {
    bpftool -j prog show | python3 -c '
import json, sys
base = int(sys.argv[1]); out = {}
for p in sorted(json.load(sys.stdin), key=lambda p: -p["id"]):
    if p["id"] > base and p.get("name", "").startswith("assay"):
        out[p["name"]] = (p.get("run_time_ns", 0), p.get("run_cnt", 0))
print(json.dumps(out))' "$1"
}
for bin in "$@"; do
    echo "## $bin"
    base=$(bpftool -j prog show | python3 -c 'import json,sys; print(max([p["id"] for p in json.load(sys.stdin)] or [0]))')
    log=$(mktemp)
    "$bin" run --metrics-listen off >"$log" 2>&1 &
    agent=$!
    for _ in $(seq 100); do grep -q "agent ready" "$log" && break; sleep 0.2; done
    for w in $workloads; do
        a=$(snapshot "$base")
        ops=$("$load" "$w" 4 | awk '{print $2}')
        b=$(snapshot "$base")
        python3 - "$w" "$ops" "$a" "$b" <<'PY'
import json, sys
w, ops, a, b = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
for name in sorted(b):
    ns = b[name][0] - a.get(name, (0, 0))[0]
    runs = b[name][1] - a.get(name, (0, 0))[1]
    if runs > 0 and runs / ops > 0.5:
        print(f"| {w} | {name} | {runs / ops:.3f} | {ns / runs:.1f} |")
PY
    done
    kill -TERM "$agent"; wait "$agent" || true
    rm -f "$log"
done
