#!/usr/bin/env bash
# Runs the GPU benchmark on the GPU machine, from the project root, with .ort-gpu and .gpu-bench
# carried there (benches/gpu/pack.sh makes both). Writes the table, the JSON, the card and a
# per-second GPU utilisation log under $OUT (default /tmp/gpu-bench-out).
set -euo pipefail
out=${OUT:-/tmp/gpu-bench-out}
mkdir -p "$out"
# device-setup.sh is written for a lenient shell (an `ls` of optional folders may fail).
set +eo pipefail
# shellcheck source=/dev/null
source .ort-gpu/device-setup.sh || exit 1
set -eo pipefail
work=${TMPDIR:-/tmp}/gpu-bench
mkdir -p "$work"
xz -dc .gpu-bench/bench_gpu.xz > "$work/bench_gpu" && chmod +x "$work/bench_gpu"
for model in .gpu-bench/models/*.onnx.xz; do
  xz -dc "$model" > "$work/$(basename "$model" .xz)"
done
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
  grep -m1 "model name" /proc/cpuinfo
  echo "cores: $(nproc)"
} | tee "$out/machine.txt"
nvidia-smi dmon -s u -d 1 > "$out/gpu-utilisation.txt" 2>&1 &
dmon=$!
trap 'kill $dmon 2>/dev/null || true' EXIT
timeout "${BENCH_GPU_TIMEOUT:-420}" "$work/bench_gpu" \
  --models "$work/mlp_16x64x2.onnx,$work/mlp_16x2048x2048x2048x2.onnx" \
  --batches "${BENCH_GPU_BATCHES:-1024,8192}" --seconds "${BENCH_GPU_SECONDS:-2}" \
  --repeats "${BENCH_GPU_REPEATS:-3}" --inference-threads "${BENCH_GPU_INFERENCE_THREADS:-2}" \
  --json "$out/gpu.json" "$@" | tee "$out/table.md"
