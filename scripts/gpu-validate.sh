#!/usr/bin/env bash
# Validates the GPU sensors on a real NVIDIA GPU host (issue #6): the agent
# runs as root; a PyTorch training loop must come out ai-training, a CuPy
# hashing loop (one kernel compiled at run time by NVRTC, identical launches)
# pow-mining; NVML telemetry of each is recorded as a trace.
#
# Needs: root, the NVIDIA driver (libcuda, libnvidia-ml), python3 with torch
# and cupy installed (this script installs nothing: GPU hosts here have no
# network). Usage: scripts/gpu-validate.sh [OUT_DIR] (default target/gpu-validate)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/gpu-validate}
mkdir -p "$out"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
nvidia-smi -L >"$out/gpus.txt" || { echo "no NVIDIA GPU/driver" >&2; exit 2; }
python3 -c 'import torch, cupy' 2>"$out/python.txt" || { echo "needs python3 with torch and cupy" >&2; cat "$out/python.txt" >&2; exit 2; }
cargo xtask build >/dev/null
bin=target/debug/assay
[ -x target/release/assay ] && bin=target/release/assay

"$bin" --launch-window-ms 1000 --launch-period-ms 5000 >"$out/findings.jsonl" 2>"$out/agent.log" &
agent=$!
trap 'kill -INT $agent 2>/dev/null || true' EXIT
sleep 5

run_case() { # name, seconds, python code
  local name=$1 secs=$2 code=$3
  "$bin" gpu-record --out "$out/$name.trace.jsonl" --seconds "$secs" 2>>"$out/record.log" &
  local rec=$!
  timeout $((secs + 30)) python3 -c "$code" "$secs" >"$out/$name.out" 2>&1 &
  local pid=$!
  echo "$name pid $pid"
  echo "$pid" >"$out/$name.pid"
  wait "$pid" || true
  wait "$rec" || true
}

run_case training 120 '
import sys, time, torch, torch.nn as nn
dev = "cuda"
model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    x = torch.randn(128, 3, 64, 64).pin_memory().to(dev, non_blocking=True)
    y = torch.randint(0, 10, (128,)).to(dev)
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
torch.cuda.synchronize()
'

run_case hashing 120 '
import sys, time, cupy as cp
src = r"""
extern "C" __global__ void search(const unsigned int* header, unsigned int nonce0, unsigned int* found) {
  unsigned int n = nonce0 + blockIdx.x * blockDim.x + threadIdx.x;
  unsigned int h = header[0] ^ n;
  for (int r = 0; r < 4096; r++) { h ^= h << 13; h ^= h >> 17; h ^= h << 5; h += 0x9e3779b9u + header[r & 7]; }
  if (h < 0x10u) atomicExch(found, n);
}"""
kernel = cp.RawKernel(src, "search")
header = cp.arange(8, dtype=cp.uint32); found = cp.zeros(1, dtype=cp.uint32)
end = time.time() + float(sys.argv[1]); nonce = 0
while time.time() < end:
    kernel((4096,), (256,), (header, cp.uint32(nonce), found)); nonce += 4096 * 256
    if nonce % (64 * 4096 * 256) == 0: found.get()
cp.cuda.Device().synchronize()
'

sleep 6
kill -INT $agent; wait $agent || true
trap - EXIT
verdict() { # pid, class
  grep "\"pid\":$1," "$out/findings.jsonl" | grep -q "\"class\":\"$2\""
}
ok=0
verdict "$(cat "$out/training.pid")" ai-training && echo "training: ai-training (ok)" || { echo "training: NOT ai-training"; ok=1; }
verdict "$(cat "$out/hashing.pid")" pow-mining && echo "hashing: pow-mining (ok)" || { echo "hashing: NOT pow-mining"; ok=1; }
verdict "$(cat "$out/training.pid")" pow-mining && { echo "training: judged pow-mining (false positive)"; ok=1; }
echo "findings, agent log and NVML traces in $out"
exit $ok
