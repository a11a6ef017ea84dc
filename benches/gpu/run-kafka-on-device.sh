#!/usr/bin/env bash
# Issue 19 on a GPU machine (an H200 host, 16 cores), in one call, from the project root with
# .ort-gpu and .gpu-bench carried there (benches/gpu/pack.sh makes both; bench_e2e is in
# .gpu-bench since issue 19). Everything runs on the embedded broker (64 partitions), in this
# order, and the headlines come last:
#   1. bare ONNX Runtime CUDA on the large MLP at batch 8192 (bench_gpu, its `bare ORT` row);
#   2. the Kafka pipeline (bench_e2e (b)) on CUDA with the same model and batch, threads "auto"
#      (2 sessions on CUDA, the rest of the cores decoding);
#   3. the demo model on the CPU provider: (b) with 1, 2, 4, 8 and 16 decode threads, and (c)/(b)
#      (drift on / off) with "auto".
# Writes the tables, JSON and a GPU utilisation log under $OUT (default /tmp/gpu-kafka-out).
# About 6 minutes: BENCH_EVENTS (800000, within the MockCluster's 5 MiB per partition) and
# BENCH_REPEATS (3) trade time for spread. BENCH_PROVIDER=cpu runs the same steps without a GPU
# (a dry run of the script, with small BENCH_EVENTS).
set -euo pipefail
out=${OUT:-/tmp/gpu-kafka-out}
# shellcheck source=benches/gpu/device-prelude.sh
source benches/gpu/device-prelude.sh
big="$work/mlp_16x2048x2048x2048x2.onnx"
events=${BENCH_EVENTS:-800000}
repeats=${BENCH_REPEATS:-3}
provider=${BENCH_PROVIDER:-cuda}

echo "## 1. bare ONNX Runtime ($provider), large MLP, batch 8192"
timeout 180 "$work/bench_gpu" --models "$big" --provider "$provider" --batches 8192 --seconds 2 \
  --repeats "$repeats" --inference-threads 2 --events "${BENCH_GPU_EVENTS:-1000000}" --json "$out/bare.json" | tee "$out/bare.md"

echo "## 2. the Kafka pipeline ($provider), large MLP, batch 8192"
DRIFTLINE__MODEL__PATH="$big" DRIFTLINE__BATCH__MAX_ROWS=8192 \
DRIFTLINE__RUNTIME__EXECUTION_PROVIDER="$provider" DRIFTLINE__RUNTIME__CUDA_REQUIRE=true \
  timeout 240 "$work/bench_e2e" --runs ab --events "$events" --repeats "$repeats" \
  --tansu-events 0 --decode-sweep "" --json "$out/kafka-cuda.json" | tee "$out/kafka-cuda.md"

echo "## 3. the demo model on the CPU provider: decode threads, drift on and off"
timeout 300 "$work/bench_e2e" --runs abc --events "$events" --repeats "$repeats" \
  --tansu-events 0 --decode-sweep 1,2,4,8,16 --json "$out/kafka-cpu.json" | tee "$out/kafka-cpu.md"

python3 - "$out" "$(nproc)" <<'PY' | tee "$out/headlines.txt"
import json, sys
out, cores = sys.argv[1], sys.argv[2]
bare = [r for r in json.load(open(f"{out}/bare.json")) if r["layout"] == "bare ORT"]
cuda = {r["name"]: r["median_events_per_s"] for r in json.load(open(f"{out}/kafka-cuda.json"))}
cpu = {r["name"]: r["median_events_per_s"] for r in json.load(open(f"{out}/kafka-cpu.json"))}
b = next(v for k, v in cuda.items() if k.startswith("(b) driftline, drift off, MockCluster"))
print(f"bare ORT rows/s: {bare[0]['median_rows_per_s']:.0f}; Kafka pipeline rows/s: {b:.0f}")
print(f"GPU Kafka pipeline / bare ORT: {b / bare[0]['median_rows_per_s']:.2f}")
for name, rate in cpu.items():
    if "decode threads" in name:
        print(f"{name}: {rate:.0f} events/s")
b_cpu = cpu["(b) driftline, drift off, MockCluster"]
c_cpu = cpu["(c) driftline, drift on, MockCluster"]
print(f"Drift on / off, {cores} cores: {c_cpu / b_cpu:.2f}")
PY
