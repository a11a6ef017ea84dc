#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target for FUZZ_SECONDS (default 200: 10 minutes for the
# three), seeded from the poison corpus, the configs and a profile. A crash is copied into
# fuzz/regressions/<target>/, which tests/tests/fuzz_regressions.rs replays in `make test`, and
# the script fails. Needs nightly Rust (for the sanitizer) and cargo-fuzz (installed by make).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-200}"
declare -A seeds=(
  [decode]="tests/poison"
  [config]="configs"
  [profile]="fuzz/seeds/profile"
)
failed=()
for target in decode config profile; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  echo "== fuzz $target for ${seconds}s"
  if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "${seeds[$target]}" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$target")
    cp fuzz/artifacts/"$target"/* "fuzz/regressions/$target/" 2>/dev/null || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]}; inputs copied to fuzz/regressions/ (replayed by make test)"
  exit 1
fi
echo "fuzz: 0 crashes in ${seconds}s per target"
