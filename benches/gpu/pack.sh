#!/usr/bin/env bash
# Packs the GPU benchmark for a lent GPU machine (BENCHMARKS.md, "GPU"), run here from the
# project root: the ONNX Runtime CUDA libraries into .ort-gpu (once; ../shared/gpu), and into
# .gpu-bench the stripped, xz-compressed bench_gpu and bench_e2e binaries and the two MLPs of
# models/make_gpu_models.py. Both folders are git-ignored; carry them to the device and run
# benches/gpu/run-on-device.sh (operators in process) or benches/gpu/run-kafka-on-device.sh
# (the Kafka pipeline, issue 19) there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ ! -s .ort-gpu/libonnxruntime_providers_cuda.so.xz ]; then
  bash ../shared/gpu/prepare-ort-gpu.sh .ort-gpu
fi
cargo build --release -q -p driftline-benches --bin bench_gpu --bin bench_e2e
rm -rf .gpu-bench && mkdir -p .gpu-bench
.venv/bin/python models/make_gpu_models.py .gpu-bench/models
xz -9 -T2 .gpu-bench/models/*.onnx
target=${CARGO_TARGET_DIR:-target}
for bin in bench_gpu bench_e2e; do
  strip -o ".gpu-bench/$bin" "$target/release/$bin"
  xz -9 -T2 ".gpu-bench/$bin"
done
du -sh .ort-gpu .gpu-bench
