#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 900), starting from the committed seeds: the spill
# format's parsers (spill/fuzz: open_bytes, metadata) and the parquet path (fuzz: parquet_file, a
# whole build on arbitrary bytes; hybrid, the fast decoder's RLE / bit-packed decoding; decoders, the
# fast decoder against arrow-rs, byte for byte; pages, page headers and codecs; cs_files, count and
# plan files; manifest, a dataset's dataset.json).
#   scripts/fuzz.sh [SECONDS] [spill|root] [--parallel]
# The second argument runs one crate's targets only; --parallel runs all targets at once (each
# single-threaded; 2 cores carry the 8 targets, at a slower rate each).
# Every run is under -rss_limit_mb=512 -malloc_limit_mb=512: spillway is for memory-limited machines,
# so a single allocation above 512 MiB on fuzz-sized inputs is a finding (issue 27).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on the stable toolchain (RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its -Z flags). SANITIZER=none skips AddressSanitizer where its runtime is missing.
# A crash leaves its input in <crate>/fuzz/artifacts/<target>/; add it to seeds/ once fixed, and
# run scripts/fuzz_limits.py over seeds, corpora and findings.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-900}
only=${2:-}
parallel=${3:-}
[ "$only" = --parallel ] && { parallel=--parallel; only=""; }
export RUSTC_BOOTSTRAP=1
sanitizer=${SANITIZER:-address}
host=$(rustc -vV | sed -n 's/^host: //p')
logs=target/fuzz-logs
mkdir -p "$logs"
run_target() { # DIR TARGET
  (
    cd "$1"
    mkdir -p "fuzz/corpus/$2"
    cp -n fuzz/seeds/"$2"/* "fuzz/corpus/$2/" 2>/dev/null || true
    echo "== $1: $2 for ${secs}s" >&2
    # The binary `cargo fuzz build` made, run directly: concurrent `cargo fuzz run`s rebuild the
    # crate over and over (seen: 7 minutes of builds before a target started).
    mkdir -p "fuzz/artifacts/$2"
    "fuzz/target/$host/release/$2" -artifact_prefix="fuzz/artifacts/$2/" \
      -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=512 -print_final_stats=1 \
      "fuzz/corpus/$2" >"$OLDPWD/$logs/${2}.log" 2>&1 || echo "== $1: $2 FAILED (see $logs/${2}.log)" >&2
    grep -E '^(Done|stat::number_of_executed_units|SUMMARY)|panicked|ERROR|==[0-9]+==' \
      "$OLDPWD/$logs/${2}.log" | head -n 20 || true
  )
}
fuzz_crate() { # DIR: the crate whose fuzz/ folder holds the targets
  (cd "$1" && cargo fuzz build --fuzz-dir fuzz -O --sanitizer "$sanitizer")
  for target in $(cd "$1" && cargo fuzz list --fuzz-dir fuzz); do
    if [ "$parallel" = --parallel ]; then
      run_target "$1" "$target" &
    else
      run_target "$1" "$target"
    fi
  done
}
[ "$only" = root ] || fuzz_crate spill
[ "$only" = spill ] || fuzz_crate .
wait
