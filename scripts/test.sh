#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, integration, property, golden, crash, interop, doc
# tests), the numpy reader's pytest suite, and the Python package's, run from its wheel (built once,
# installed into the venv, tested with no cargo on PATH: the `spillway` command is the wheel's).
# Python test dependencies go into a venv under target/ (PyPI), so a fresh machine needs nothing
# but cargo and python3. Heavy tests: scripts/test-heavy.sh; PyTorch's: scripts/test-torch.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/venv
if ! "$venv/bin/python" -c 'import numpy, pytest, pyarrow, polars, duckdb, pandas, lightgbm, xgboost, ray, moto, azure.storage.blob, mypy' 2>/dev/null; then
  echo "setting up $venv (scripts/requirements-test.txt)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
fi
# Azurite, Azure's blob emulator (npm), for the az:// test of python/tests/test_object_storage.py;
# without npm that test is reported as skipped, with the reason.
if command -v npm >/dev/null && [ ! -x target/azurite/node_modules/.bin/azurite-blob ]; then
  npm install --prefix target/azurite --no-audit --no-fund --silent azurite@3.37.0 \
    || echo "azurite could not be installed: the az:// test will be skipped" >&2
fi
export SPILLWAY_PYTHON="$PWD/$venv/bin/python"
export SPILLWAY_REQUIRE_PYTHON=1   # a missing numpy is a failure here, not a skipped check
export SPILLWAY_REQUIRE_RAY=1      # likewise Ray (python/tests/test_ray.py)

# A test that cannot run here says why: each skip is logged, listed at the end, and a reason not in
# .ci/allowed-skips.txt fails the run.
export SPILLWAY_SKIP_LOG="$PWD/target/test-skips.log"
rm -f "$SPILLWAY_SKIP_LOG"

# Benches are compiled by .ci/run (clippy --all-targets), not run here: they generate large inputs.
cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc
# Every fuzz seed and finding through the real binary under `ulimit -v` 2 GiB: exit 0, or exit 1
# naming the file; never an abort, an OOM kill or a panic (scripts/fuzz_limits.py; the 256 MiB
# cgroup run needs root and is made by hand, see docs/book/operations.md).
python3 scripts/fuzz_limits.py --no-cgroup --bin target/debug/spillway > target/fuzz-limits.json
"$SPILLWAY_PYTHON" -m pytest -q spill/python/tests
scripts/install-python.sh "$venv"
# From here on, only the installed wheel: no cargo, no target/debug/spillway.
env -u SPILLWAY_BIN PATH="$PWD/$venv/bin:/usr/local/bin:/usr/bin:/bin" bash -c '
  ! command -v cargo >/dev/null || { echo "cargo is on PATH" >&2; exit 1; }
  [ "$(command -v spillway)" = "$PWD/target/venv/bin/spillway" ]
  python -m pytest -q python/tests'
python3 scripts/skips.py "$SPILLWAY_SKIP_LOG" --allow .ci/allowed-skips.txt
