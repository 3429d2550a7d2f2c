#!/bin/bash
# Agent CPU with N (1000) live workloads: N sessions, each a shell running
# /bin/true every 3 s; the agent with the ledger on, then with
# --no-ledger, its own CPU from /proc/<pid>/stat over 150 s after 40 s of
# warm-up. As root, with no other agent on the host (BENCHMARKS.md).
# usage: ASSAY=target/release/assay N=1000 scripts/ledger-live-cost.sh
A=${ASSAY:-target/release/assay}
N=${N:-1000}
pids=()
for i in $(seq 1 $N); do
  setsid sh -c 'while :; do /bin/true; sleep 3; done' >/dev/null 2>&1 &
  pids+=($!)
done
echo "started $N loops"
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
measure() { # $1 label, rest: extra args
  label=$1; shift
  rm -rf /tmp/lcost-state
  $A run --state-dir /tmp/lcost-state --metrics-listen 127.0.0.1:9477 "$@" >/dev/null 2>/tmp/lcost-agent-$label.log &
  ap=$!
  sleep 40
  c0=$(cpu $ap); t0=$(date +%s.%N)
  sleep 150
  c1=$(cpu $ap); t1=$(date +%s.%N)
  tck=$(getconf CLK_TCK)
  echo "$label: agent cpu $(echo "($c1-$c0)/$tck" | bc -l | cut -c1-6) s over $(echo "$t1-$t0" | bc -l | cut -c1-6) s = $(echo "100*($c1-$c0)/$tck/($t1-$t0)" | bc -l | cut -c1-5) % of a core; RSS $(grep VmRSS /proc/$ap/status)"
  curl -s http://127.0.0.1:9477/metrics | grep -E "^assay_ledger_|^assay_processes|^assay_cpu_seconds_total|tracked" | head -20
  kill -INT $ap; wait $ap
}
measure ledger
ls -la /tmp/lcost-state
sqlite3 /tmp/lcost-state/ledger.sqlite "SELECT count(DISTINCT workload), count(*), count(DISTINCT minute) FROM usage" 2>&1
measure noledger --no-ledger
for p in "${pids[@]}"; do kill $p 2>/dev/null; done
sleep 4
echo "left: $(for p in "${pids[@]}"; do [ -e /proc/$p ] && echo $p; done | wc -l)"
