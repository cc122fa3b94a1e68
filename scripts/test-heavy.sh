#!/usr/bin/env bash
# Heavy tests left out of the default run (time and disk): the writer's memory on a 4 GiB file,
# 10,000 files under a 64-descriptor limit, 500 SIGKILLs of a running build, and 2,000 random
# universes through both decoders (the fast one against arrow-rs, byte for byte).
set -euo pipefail
cd "$(dirname "$0")/.."
# Skipped: a child process of another test, fixture writers, and tests of arrow-rs bugs (they fail
# until arrow-rs changes).
cargo test --release --workspace --all-targets -- --ignored --nocapture --skip child_writer --skip regenerate_golden --skip regenerate_decoder_seeds --skip arrow_rs_ignores
SPILLWAY_MANY_FILES=${SPILLWAY_MANY_FILES:-10000} SPILLWAY_KILL_ITERATIONS=${SPILLWAY_KILL_ITERATIONS:-500} \
  cargo test --release --test tests -- --nocapture many_tiny_files killed_builds
SPILLWAY_DECODER_CASES=${SPILLWAY_DECODER_CASES:-2000} \
  cargo test --release --test tests -- --nocapture decoders::fast_decoder_equals_arrow_rs
