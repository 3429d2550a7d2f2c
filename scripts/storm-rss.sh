#!/bin/bash
# The agent's resident memory through a loopback connection storm, per
# agent build given (repeat builds to alternate them: old new old new):
# idle RSS once it is ready, anonymous memory every second of the storm,
# the peak, and where the memory is at the end (heap, thread arenas,
# BPF maps, the binary).
#
#   sudo scripts/storm-rss.sh SECONDS AGENT_BIN [AGENT_BIN...]
#
# The storm is `assay-load rr-connect SECONDS`: a new loopback connection
# per request, both ends on this host, as fast as two cores allow (about
# 6 000 connections and 20 000 ring records a second here). The agent runs
# with its defaults (the whole host) and no metrics listener.
set -euo pipefail
secs=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
load=$root/target/release/assay-load
[ -x "$load" ] || { echo "build it first: cargo build --release -p assay-tests --bin assay-load" >&2; exit 2; }
log=$(mktemp)
agent=
# An agent left running would watch the whole host: whatever ends this
# script (an error, a closed pipe, ^C) stops it first.
trap '[ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null; rm -f "$log"' EXIT
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
for bin in "$@"; do
    "$bin" run --metrics-listen off >/dev/null 2>"$log" &
    agent=$!
    for _ in $(seq 150); do grep -q "agent ready" "$log" && break; sleep 0.2; done
    grep -q "agent ready" "$log" || { echo "$bin: not ready" >&2; kill "$agent"; exit 1; }
    idle=$(kib "$agent" VmRSS)
    "$load" rr-connect "$secs" >/dev/null &
    storm=$!
    peak=0 anon=""
    while kill -0 "$storm" 2>/dev/null; do
        rss=$(kib "$agent" VmRSS)
        (( rss > peak )) && peak=$rss
        anon="$anon $(( $(kib "$agent" RssAnon) / 1024 ))"
        sleep 1
    done
    echo "$bin: idle $(( idle / 1024 )) MiB, storm peak $(( peak / 1024 )) MiB"
    echo "  anonymous MiB, each second:$anon"
    echo "  at the end, RSS by mapping (MiB):"
    awk '/^[0-9a-f]+-/ { name = ($6 == "" ? "[anon]" : $6) } /^Rss:/ { rss[name] += $2 }
         END { for (n in rss) if (rss[n] >= 1024) printf "    %6.1f %s\n", rss[n] / 1024, n }' \
        "/proc/$agent/smaps" | sort -rn
    kill -TERM "$agent"
    wait "$agent" || true
    agent=
done
