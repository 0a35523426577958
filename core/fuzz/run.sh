#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 20) over its committed corpus,
# one after the other; fails on the first crash, hang (10 s per input), or allocation past
# 512 MB (libFuzzer's malloc limit under AddressSanitizer). New corpus entries go to a scratch
# directory, so a run leaves the committed corpora as they are. Needs a nightly toolchain and
# cargo-fuzz (`cargo install --locked cargo-fuzz`); tests/run-all.sh calls it with 20 s.
#
#   core/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
flags=(+nightly fuzz)
build=(-O --debug-assertions)

start=$(date +%s)
cargo "${flags[@]}" build "${build[@]}"
echo "fuzz: built in $(( $(date +%s) - start )) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo "${flags[@]}" list); do
  mkdir -p "corpus/$target" "$scratch/$target"
  echo "fuzz: $target for ${seconds} s"
  # The scratch directory first: libFuzzer writes what it finds into the first directory.
  dict=()
  [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
  cargo "${flags[@]}" run "${build[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
    "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 2>"$scratch/$target.log" || {
    tail -n 60 "$scratch/$target.log" >&2
    echo "fuzz: $target failed; the input is under core/fuzz/artifacts/$target/" >&2
    exit 1
  }
  grep -E '^stat::number_of_executed_units' "$scratch/$target.log" | sed "s/^/fuzz: $target /"
done
echo "fuzz: every target ran ${seconds} s without a crash ($(( $(date +%s) - start )) s in all)"
