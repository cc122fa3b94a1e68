#!/usr/bin/env bash
# Heavy tests left out of the default run (time and disk): writer memory on a 4 GiB file, ...
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace --all-targets -- --ignored --nocapture --skip child_writer --skip regenerate_golden
