#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), starting from the committed seeds: the spill
# format's parsers (spill/fuzz: open_bytes, metadata) and the parquet path (fuzz: parquet_file, a
# whole build on arbitrary bytes; hybrid, the fast decoder's RLE / bit-packed decoding; decoders, the
# fast decoder against arrow-rs, byte for byte; cs_files, count and plan files; manifest, a dataset's
# dataset.json).
#   scripts/fuzz.sh [SECONDS] [spill|root]     # the second argument runs one crate's targets only
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (`rustup toolchain install nightly`).
# A crash leaves its input in <crate>/fuzz/artifacts/<target>/; add it to seeds/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
only=${2:-}
fuzz_crate() { # DIR: the crate whose fuzz/ folder holds the targets
  (
    cd "$1"
    for target in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
      mkdir -p "fuzz/corpus/$target"
      cp -n fuzz/seeds/"$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
      echo "== $1: $target for ${secs}s" >&2
      cargo +nightly fuzz run "$target" --fuzz-dir fuzz -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 |
        grep -E '^(Done|==|SUMMARY)|panicked|ERROR' || true
    done
  )
}
[ "$only" = root ] || fuzz_crate spill
[ "$only" = spill ] || fuzz_crate .
