#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, integration, property, golden, crash, interop), the
# numpy reader's pytest suite, and the Python package's (built with pip + maturin into the venv).
# Python test dependencies go into a venv under target/ (PyPI), so a fresh machine needs nothing
# but cargo and python3. Heavy tests: scripts/test-heavy.sh; PyTorch's: scripts/test-torch.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/venv
if ! "$venv/bin/python" -c 'import numpy, pytest, pyarrow, polars, duckdb, pandas, maturin, lightgbm, xgboost, ray, moto, azure.storage.blob' 2>/dev/null; then
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

# Benches are compiled by .ci/run (cargo bench --no-run), not run here: they generate large inputs.
cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc
"$SPILLWAY_PYTHON" -m pytest -q spill/python/tests
scripts/install-python.sh "$venv" --profile dev
"$SPILLWAY_PYTHON" -m pytest -q python/tests
