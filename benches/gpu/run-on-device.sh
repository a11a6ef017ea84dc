#!/usr/bin/env bash
# Runs the GPU benchmark on the GPU machine, from the project root, with .ort-gpu and .gpu-bench
# carried there (benches/gpu/pack.sh makes both). Writes the table, the JSON, the card and a
# per-second GPU utilisation log under $OUT (default /tmp/gpu-bench-out).
set -euo pipefail
out=${OUT:-/tmp/gpu-bench-out}
# shellcheck source=benches/gpu/device-prelude.sh
source benches/gpu/device-prelude.sh
timeout "${BENCH_GPU_TIMEOUT:-420}" "$work/bench_gpu" \
  --models "$work/mlp_16x64x2.onnx,$work/mlp_16x2048x2048x2048x2.onnx" \
  --batches "${BENCH_GPU_BATCHES:-1024,8192}" --seconds "${BENCH_GPU_SECONDS:-2}" \
  --repeats "${BENCH_GPU_REPEATS:-3}" --inference-threads "${BENCH_GPU_INFERENCE_THREADS:-2}" \
  --json "$out/gpu.json" "$@" | tee "$out/table.md"
