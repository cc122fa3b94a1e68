#!/usr/bin/env bash
# Installs the Python package into the venv $1 from a wheel, the way a user does:
#
#   scripts/install-python.sh VENV            # CI's wheel (scripts/build-wheel.sh --ci): the dev
#                                             # profile, reusing what `cargo test` compiled
#   scripts/install-python.sh VENV --release  # the release wheel (dist/, manylinux_2_28)
#
# The wheel carries the `spillway` command; pip puts it in VENV/bin. Dependencies (numpy) are the
# venv's own business: --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: scripts/install-python.sh VENV [--release]}
if [ "${2:-}" = --release ]; then
  dir=${WHEEL_DIR:-dist}
  scripts/build-wheel.sh >/dev/null
else
  dir=target/wheels-ci
  WHEEL_DIR=$dir scripts/build-wheel.sh --ci >/dev/null
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' python/Cargo.toml | head -1)
wheel=$(ls -t "$dir"/spillway-"$version"-cp39-abi3-*.whl | head -1)
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel"
echo "installed $wheel into $venv" >&2
