# shellcheck shell=bash
# Sourced by the run-*-on-device.sh scripts, from the project root, with `out` set: loads the
# ONNX Runtime CUDA libraries (.ort-gpu), unpacks the binaries and models of .gpu-bench into
# $work, records the machine in $out/machine.txt and logs GPU utilisation each second to
# $out/gpu-utilisation.txt until the script exits.
mkdir -p "${out:?set out before sourcing}"
# device-setup.sh is written for a lenient shell (an `ls` of optional folders may fail).
set +eo pipefail
# shellcheck source=/dev/null
source .ort-gpu/device-setup.sh || exit 1
set -eo pipefail
work=${TMPDIR:-/tmp}/gpu-bench
mkdir -p "$work"
for packed in .gpu-bench/*.xz; do
  bin="$work/$(basename "$packed" .xz)"
  xz -dc "$packed" > "$bin" && chmod +x "$bin"
done
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
