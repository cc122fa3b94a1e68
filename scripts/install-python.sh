#!/usr/bin/env bash
# Installs the Python package (./python, maturin + PyO3) into the venv $1 with pip, the way a user
# does. Extra arguments go to maturin: scripts/test.sh passes `--profile dev`, which reuses the
# dependencies `cargo test` has just compiled (target/ is shared) instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(cd "${1:?usage: scripts/install-python.sh VENV [maturin build args]}" && pwd)
shift
# --no-build-isolation: maturin comes from the venv (requirements-test.txt), whose bin/ must be on
# PATH for pip's build hook to find it.
PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="$*" "$venv/bin/pip" install --quiet --disable-pip-version-check \
  --no-build-isolation --no-deps --force-reinstall ./python
